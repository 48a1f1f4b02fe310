/** Entry point: commands, the server manager, and the e2e hook (only when its env var is set). */
import * as vscode from "vscode";
import { runE2E } from "./e2e";
import { PythonEnvironments } from "./python";
import { SERVER_SAMPLE, SERVER_STATUS, ServerManager } from "./server";

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const python = new PythonEnvironments();
  manager = new ServerManager(python);
  const m = manager;
  context.subscriptions.push(
    python,
    m,
    vscode.commands.registerCommand("amorsize.restartServer", () => m.restart("requested by the user")),
    vscode.commands.registerCommand("amorsize.showOutput", () => m.output.show(true)),
    vscode.commands.registerCommand("amorsize.showDaemonStatus", () => showDaemonStatus(m)),
    vscode.commands.registerCommand("amorsize.sampleCallSiteAtCursor", () => sampleAtCursor(m)),
  );
  const report = process.env.AMORSIZE_E2E_REPORT;
  if (report) m.onReady(() => void runE2E(m, report));
  await python.init((msg) => m.log(msg));
  await m.start();
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
}

async function showDaemonStatus(m: ServerManager): Promise<void> {
  if (!m.client) {
    const choice = await vscode.window.showWarningMessage("amorsize: the language server is not running.", "Show Output", "Restart Server");
    if (choice === "Show Output") m.output.show(true);
    if (choice === "Restart Server") await m.restart("requested from the status command");
    return;
  }
  const result = await m.refreshStatus();
  if (result === undefined) {
    void vscode.window.showWarningMessage(`amorsize: the server did not answer ${SERVER_STATUS}; see the output.`, "Show Output").then((c) => {
      if (c) m.output.show(true);
    });
    return;
  }
  m.log(`${SERVER_STATUS}:\n${JSON.stringify(result, null, 2)}`);
  const view = m.lastStatus;
  const measured = view?.measured === undefined ? "" : `, ${view.measured} call sites measured`;
  const choice = await vscode.window.showInformationMessage(
    `amorsize: daemon ${view?.daemon ?? "unknown"}${measured}.`,
    "Show Details",
    "Restart Daemon",
  );
  if (choice === "Show Details") m.output.show(true);
  if (choice === "Restart Daemon") {
    await vscode.commands.executeCommand("amorsize.restartDaemon");
    await m.refreshStatus();
  }
}

/**
 * Sample the call site under the cursor. The server's code lens already carries the
 * arguments `amorsize.sampleCallSite` needs, so take the lens of the call at (or just
 * above) the cursor rather than guessing the argument shape here.
 */
async function sampleAtCursor(m: ServerManager): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== "python") {
    void vscode.window.showWarningMessage("amorsize: open a Python file and put the cursor on a pool-map call to sample it.");
    return;
  }
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage("amorsize: sampling runs your code, so it is off in an untrusted workspace. Trust the workspace to sample.");
    return;
  }
  if (!m.client) {
    void vscode.window.showWarningMessage("amorsize: the language server is not running; see the output.");
    return;
  }
  const doc = editor.document;
  const lenses =
    (await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", doc.uri, 50)) ?? [];
  const line = editor.selection.active.line;
  const sampleLenses = lenses.filter((l) => l.command?.command === SERVER_SAMPLE);
  const lens =
    sampleLenses.find((l) => l.range.start.line <= line && line <= l.range.end.line) ??
    sampleLenses.filter((l) => l.range.start.line <= line).sort((a, b) => b.range.start.line - a.range.start.line)[0];
  if (!lens?.command) {
    const why = m.settingsFor(vscode.workspace.getWorkspaceFolder(doc.uri)).samplingEnabled
      ? "no pool-map call site at or above the cursor"
      : "sampling is off (set amorsize.sampling.enabled)";
    void vscode.window.showWarningMessage(`amorsize: nothing to sample: ${why}.`);
    return;
  }
  if (doc.isDirty) await doc.save();
  await vscode.commands.executeCommand(lens.command.command, ...(lens.command.arguments ?? []));
}
