/**
 * End-to-end self check, run only when `AMORSIZE_E2E_REPORT` names a file
 * (by `scripts/e2e.sh`, inside code-server). It goes through VS Code's own provider
 * commands, so what it sees is what the editor shows: diagnostics in the document,
 * inlay hints from the provider, and a quick fix applied to the buffer. It writes a JSON
 * report; the script fails unless `ok` is true.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import { SERVER_SAMPLE, ServerManager } from "./server";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const TIMEOUT_MS = Number(process.env.AMORSIZE_E2E_TIMEOUT_MS ?? 90000);
let started = false;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function poll<T>(what: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await sleep(250);
  }
}

function amorsizeDiagnostics(uri: vscode.Uri): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(uri).filter((d) => d.source === "amorsize");
}

function codeOf(d: vscode.Diagnostic): string {
  const c = d.code;
  if (typeof c === "object" && c !== null) return String(c.value);
  return String(c ?? "");
}

function hintLabel(h: vscode.InlayHint): string {
  return typeof h.label === "string" ? h.label : h.label.map((p) => p.value).join("");
}

async function inlayHints(doc: vscode.TextDocument): Promise<string[]> {
  const range = new vscode.Range(0, 0, doc.lineCount, 0);
  const hints = (await vscode.commands.executeCommand<vscode.InlayHint[]>("vscode.executeInlayHintProvider", doc.uri, range)) ?? [];
  // Only the server's hints: they name their provenance.
  return hints.map(hintLabel).filter((l) => /(measured|recorded|predicted|shared)/.test(l));
}

export async function runE2E(m: ServerManager, reportPath: string): Promise<void> {
  if (started) return;
  started = true;
  const checks: Check[] = [];
  const t0 = Date.now();
  const report: Record<string, unknown> = { checks };
  try {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) throw new Error("no workspace folder is open");
    const rel = process.env.AMORSIZE_E2E_FILE ?? "word_count.py";
    const uri = vscode.Uri.joinPath(folder.uri, rel);
    const doc = await vscode.workspace.openTextDocument(uri);
    const editor = await vscode.window.showTextDocument(doc, { preview: false });
    report.file = uri.fsPath;

    // 1. Diagnostics published by the server reach the document.
    const diags = await poll(() => {
      const d = amorsizeDiagnostics(uri);
      return d.length > 0 ? d : undefined;
    }, TIMEOUT_MS);
    report.diagnostics = (diags ?? []).map((d) => ({ code: codeOf(d), line: d.range.start.line + 1, message: d.message }));
    checks.push({
      name: "diagnostics",
      ok: (diags?.length ?? 0) > 0,
      detail: diags ? diags.map((d) => `${codeOf(d)}@${d.range.start.line + 1}`).join(", ") : "none within the timeout",
    });

    // 2. A quick fix of an amorsize diagnostic, applied to the buffer, and re-analysed.
    const fixable = amorsizeDiagnostics(uri);
    let fixed: Check = { name: "quick fix", ok: false, detail: "no amorsize quick fix offered" };
    const seen: string[] = [];
    for (const d of fixable) {
      const actions =
        (await vscode.commands.executeCommand<vscode.CodeAction[]>("vscode.executeCodeActionProvider", uri, d.range, vscode.CodeActionKind.QuickFix.value, 10)) ?? [];
      const ours = actions.find(
        (a) =>
          a.kind?.value.startsWith("quickfix") &&
          !a.title.startsWith("Suppress") &&
          // VS Code's API command drops the action's diagnostics, so the server's title
          // (which names the rule) identifies our fix when they are missing.
          ((a.diagnostics ?? []).some((x) => x.source === "amorsize" && codeOf(x) === codeOf(d)) || a.title.includes(codeOf(d))) &&
          a.edit !== undefined,
      );
      seen.push(
        ...actions.map((a) => `${codeOf(d)}: "${a.title}" kind=${a.kind?.value} edit=${a.edit !== undefined} diags=${(a.diagnostics ?? []).map(codeOf).join("+")}`),
      );
      if (!ours?.edit) continue;
      const before = doc.getText();
      const code = codeOf(d);
      const countBefore = amorsizeDiagnostics(uri).filter((x) => codeOf(x) === code).length;
      const applied = await vscode.workspace.applyEdit(ours.edit);
      const after = doc.getText();
      const reanalysed = await poll(() => {
        const n = amorsizeDiagnostics(uri).filter((x) => codeOf(x) === code).length;
        return n < countBefore ? n : undefined;
      }, TIMEOUT_MS);
      fixed = {
        name: "quick fix",
        ok: applied && after !== before && reanalysed !== undefined,
        detail: `${ours.title} (${code}, line ${d.range.start.line + 1}): applied=${applied}, text changed=${after !== before}, ${code} findings ${countBefore} -> ${reanalysed ?? "unchanged"}`,
      };
      report.quickFix = { title: ours.title, code, changedLines: changedLines(before, after) };
      break;
    }
    if (!fixed.ok) report.codeActionsSeen = seen;
    checks.push(fixed);

    // 3. An inlay hint from the provider, in this file or another example. When none is
    // known yet and sampling is allowed, sample calls through the server's code lenses
    // (as a user would click them) until one succeeds, and ask again.
    const files = [uri, ...(await vscode.workspace.findFiles("*.py")).filter((u) => u.toString() !== uri.toString())];
    let hint: { file: vscode.Uri; labels: string[] } | undefined;
    for (const f of files) {
      const d = await vscode.workspace.openTextDocument(f);
      const labels = await poll(async () => {
        const h = await inlayHints(d);
        return h.length > 0 ? h : undefined;
      }, f === uri ? 10000 : 3000);
      if (labels) {
        hint = { file: f, labels };
        break;
      }
    }
    const sampleErrors: string[] = [];
    const pragma = process.env.AMORSIZE_E2E_SAMPLE; // "file.py|<expr>": the items a user would name
    if (!hint && pragma) {
      const [rel2, expr] = [pragma.slice(0, pragma.indexOf("|")), pragma.slice(pragma.indexOf("|") + 1)];
      const f = vscode.Uri.joinPath(folder.uri, rel2);
      try {
        hint = await sampleWithPragma(f, expr, report);
      } catch (err) {
        sampleErrors.push(`${rel2}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (sampleErrors.length > 0) report.sampleErrors = sampleErrors;
    if (!hint) {
      // Every hint any provider gave, to tell "no hint" from "a hint we did not recognise".
      report.allHints = [];
      for (const f of files) {
        const d = await vscode.workspace.openTextDocument(f);
        const all = (await vscode.commands.executeCommand<vscode.InlayHint[]>("vscode.executeInlayHintProvider", f, new vscode.Range(0, 0, d.lineCount, 0))) ?? [];
        (report.allHints as string[]).push(...all.map((h) => `${vscode.workspace.asRelativePath(f)}:${h.position.line + 1}: ${hintLabel(h)}`));
      }
    }
    report.inlayHints = hint ? { file: vscode.workspace.asRelativePath(hint.file), labels: hint.labels } : [];
    checks.push({
      name: "inlay hint",
      ok: hint !== undefined,
      detail: hint ? `${vscode.workspace.asRelativePath(hint.file)}: ${hint.labels.join(" | ")}` : `none (sampling: ${sampleErrors.length} failed)`,
    });

    // 4. A crash is restarted (with backoff) and the new server publishes again.
    const pid = m.serverPid;
    if (pid === undefined) {
      checks.push({ name: "crash restart", ok: false, detail: "no server process" });
    } else {
      const t = Date.now();
      process.kill(pid, "SIGKILL");
      const restarted = await poll(() => {
        const p = m.serverPid;
        return p !== undefined && p !== pid && m.client?.isRunning() ? p : undefined;
      }, 60000);
      const republished = restarted === undefined ? undefined : await poll(() => {
        const d = amorsizeDiagnostics(uri);
        return d.length > 0 ? d.length : undefined;
      }, TIMEOUT_MS);
      checks.push({
        name: "crash restart",
        ok: restarted !== undefined && republished !== undefined,
        detail: `killed server ${pid}; new server ${restarted ?? "none"} after ${Date.now() - t} ms; ${republished ?? 0} diagnostics republished`,
      });
    }

    // 5. A settings change reaches the running server without a restart.
    const present = amorsizeDiagnostics(uri).map(codeOf);
    if (present.length === 0) {
      checks.push({ name: "settings change", ok: false, detail: "no diagnostic left to ignore" });
    } else {
      const code = present[0];
      const pidBefore = m.serverPid;
      const cfg = vscode.workspace.getConfiguration("amorsize");
      await cfg.update("lint.ignore", [code], vscode.ConfigurationTarget.Global);
      const gone = await poll(() => (amorsizeDiagnostics(uri).some((d) => codeOf(d) === code) ? undefined : true), TIMEOUT_MS);
      await cfg.update("lint.ignore", undefined, vscode.ConfigurationTarget.Global);
      const back = await poll(() => (amorsizeDiagnostics(uri).some((d) => codeOf(d) === code) ? true : undefined), TIMEOUT_MS);
      checks.push({
        name: "settings change",
        ok: gone === true && back === true && m.serverPid === pidBefore,
        detail: `amorsize.lint.ignore=[${code}]: ${code} ${gone ? "gone" : "still shown"}; reset: ${back ? "back" : "missing"}; server pid ${pidBefore} -> ${m.serverPid} (no restart expected)`,
      });
    }

    // 6. Changing the interpreter restarts the server; one without amorsize_lsp is
    // detected before any start (the user is offered Install / amorsize.path).
    const bare = process.env.AMORSIZE_E2E_BARE_PYTHON;
    if (bare) {
      const cfg = vscode.workspace.getConfiguration("amorsize");
      const original = cfg.inspect<string>("interpreter")?.globalValue;
      const pidBefore = m.serverPid;
      await cfg.update("interpreter", bare, vscode.ConfigurationTarget.Global);
      const missing = await poll(() => (m.startProblem === "module missing" && m.serverPid === undefined ? true : undefined), TIMEOUT_MS);
      await cfg.update("interpreter", original, vscode.ConfigurationTarget.Global);
      const back = await poll(() => {
        const p = m.serverPid;
        return p !== undefined && m.client?.isRunning() && amorsizeDiagnostics(uri).length > 0 ? p : undefined;
      }, TIMEOUT_MS);
      checks.push({
        name: "interpreter change",
        ok: missing === true && back !== undefined && back !== pidBefore,
        detail: `amorsize.interpreter=${bare}: ${missing ? "amorsize_lsp reported missing, no server" : `not detected (problem: ${m.startProblem ?? "none"})`}; restored: server ${pidBefore} -> ${back ?? "none"}`,
      });
    }

    // For the screenshot: the file with the hint (else the fixed one), its first finding in
    // view, no notifications, and the status bar refreshed.
    const shown = hint && hint.file.toString() !== uri.toString()
      ? await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(hint.file), { preview: false })
      : editor;
    await vscode.window.showTextDocument(shown.document, { preview: false });
    const first = amorsizeDiagnostics(shown.document.uri)[0];
    if (first) shown.revealRange(first.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    await vscode.commands.executeCommand("notifications.clearAll");
    await m.refreshStatus();
    report.status = m.lastStatus ?? null;
    // 7. The status bar's numbers come from amorsize.showStatus: a daemon state, and the
    // sample above counted as a measured call site.
    const st = m.lastStatus;
    checks.push({
      name: "status bar",
      ok: st !== undefined && st.daemon !== "unknown" && (st.measured ?? 0) >= (report.sampleState === "done" ? 1 : 0),
      detail: st ? `daemon ${st.daemon}, measured ${st.measured ?? "?"}, open measured ${st.measuredOpen ?? "?"}` : "no status",
    });
  } catch (err) {
    checks.push({ name: "exception", ok: false, detail: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
  report.ok = checks.length > 0 && checks.every((c) => c.ok);
  report.elapsedMs = Date.now() - t0;
  const tmp = `${reportPath}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(report, null, 2));
  fs.renameSync(tmp, reportPath);
  m.log(`e2e report written to ${reportPath}: ok=${String(report.ok)}`);
}

/**
 * What a user does when the items are local to a function: name sample items with the
 * `# amorsize: sample=<expr>` pragma on the call line, save, click "Sample this call",
 * and read the hint.
 */
async function sampleWithPragma(
  f: vscode.Uri,
  expr: string,
  report: Record<string, unknown>,
): Promise<{ file: vscode.Uri; labels: string[] } | undefined> {
  const doc = await vscode.workspace.openTextDocument(f);
  await vscode.window.showTextDocument(doc, { preview: false });
  const lensesOf = async () =>
    ((await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", f, 50)) ?? []).filter(
      (l) => l.command?.command === SERVER_SAMPLE,
    );
  const lenses = await poll(async () => {
    const l = await lensesOf();
    return l.length > 0 ? l : undefined;
  }, 20000);
  if (!lenses) throw new Error("no 'Sample this call' code lens (is sampling enabled and the workspace trusted?)");
  const line = lenses[0].range.start.line;
  // The lens may sit above the call; the pragma goes on the call's first line.
  const callLine = doc.lineAt(line).text.trim() === "" ? line + 1 : line;
  const edit = new vscode.WorkspaceEdit();
  edit.insert(f, doc.lineAt(callLine).range.end, `  # amorsize: sample=${expr}`);
  if (!(await vscode.workspace.applyEdit(edit))) throw new Error("could not insert the sample pragma");
  await doc.save();
  // Ask for the lens again: the server re-analysed the edited text.
  const again = await poll(async () => {
    const l = (await lensesOf()).find((x) => x.range.start.line === line);
    return l;
  }, 20000);
  if (!again?.command) throw new Error("the code lens disappeared after the pragma was added");
  const t0 = Date.now();
  const result = await vscode.commands.executeCommand<Record<string, unknown> | undefined>(SERVER_SAMPLE, ...(again.command.arguments ?? []));
  report.sampled = `${vscode.workspace.asRelativePath(f)}:${callLine + 1}`;
  report.sampleState = result?.state ?? null;
  report.sampleMs = Date.now() - t0;
  const labels = await poll(async () => {
    const h = await inlayHints(doc);
    return h.length > 0 ? h : undefined;
  }, TIMEOUT_MS);
  report.hintAfterSampleMs = Date.now() - t0 - (report.sampleMs as number);
  return labels ? { file: f, labels } : undefined;
}

function changedLines(before: string, after: string): { before: string[]; after: string[] } {
  const a = before.split("\n");
  const b = after.split("\n");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  let j = 0;
  while (j < a.length - i && j < b.length - i && a[a.length - 1 - j] === b[b.length - 1 - j]) j++;
  return { before: a.slice(i, a.length - j), after: b.slice(i, b.length - j) };
}
