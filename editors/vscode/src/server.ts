/**
 * Runs the amorsize language server: resolves the interpreter, checks that `amorsize_lsp`
 * is importable, starts the client, answers workspace/configuration per folder, sends
 * setting and trust changes live, and restarts a crashed server with backoff.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as os from "node:os";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  State,
} from "vscode-languageclient/node";
import { CrashPolicy, DEFAULT_CRASH_POLICY, LogTail, crashMessage } from "./crash";
import { ResolvedInterpreter, probeModule, resolveInterpreter, serverCommand } from "./interpreter";
import { PythonEnvironments } from "./python";
import {
  ExtensionSettings,
  ServerSettings,
  expandPath,
  launchChanged,
  readSettings,
  toServerSettings,
} from "./settings";
import { StatusView, parseStatus, statusText, statusTooltip } from "./status";

export const SERVER_SAMPLE = "amorsize.sampleCallSite";
export const SERVER_STATUS = "amorsize.showStatus";
const STATUS_POLL_MS = 30000;

export class ServerManager implements vscode.Disposable {
  readonly output: vscode.OutputChannel;
  readonly tail = new LogTail();
  client: LanguageClient | undefined;
  private process: ChildProcess | undefined;
  private readonly policy = new CrashPolicy();
  private readonly statusItem: vscode.StatusBarItem;
  private launchSettings: ExtensionSettings | undefined;
  private launchInterpreter: string | undefined;
  /** The folder whose settings chose the server's command line. */
  private launchFolder: vscode.WorkspaceFolder | undefined;
  private generation = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly readyListeners: Array<(client: LanguageClient) => void> = [];
  lastStatus: StatusView | undefined;
  /** Why the last start did not run a server, or undefined when it did. */
  startProblem: "no python" | "module missing" | "import failed" | "crashed" | undefined;

  constructor(private readonly python: PythonEnvironments) {
    this.output = vscode.window.createOutputChannel("amorsize");
    this.statusItem = vscode.window.createStatusBarItem("amorsize.status", vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = "amorsize";
    this.statusItem.command = "amorsize.showDaemonStatus";
    this.setStatus("$(loading~spin) amorsize: starting", "Starting the amorsize language server");
    this.statusItem.show();
    this.disposables.push(
      this.output,
      this.statusItem,
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.log("Workspace trusted: sampling may now run (no restart).");
        void this.sendConfiguration();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.sendConfiguration()),
      this.python.onDidChange(() => this.onInterpreterMaybeChanged("the Python extension's environment changed")),
    );
  }

  /** The running server's process id (the e2e kills it to check the crash restart). */
  get serverPid(): number | undefined {
    return this.process?.pid;
  }

  /** Called with the running client each time a server becomes ready (used by the e2e). */
  onReady(listener: (client: LanguageClient) => void): void {
    this.readyListeners.push(listener);
  }

  log(message: string): void {
    this.output.appendLine(`[client ${new Date().toISOString()}] ${message}`);
  }

  private setStatus(text: string, tooltip: string): void {
    this.statusItem.text = text;
    this.statusItem.tooltip = tooltip;
  }

  /** Serialise start/stop/restart so that a settings change during a start cannot race it. */
  private serial(task: () => Promise<void>): Promise<void> {
    this.busy = this.busy.then(task, task);
    return this.busy;
  }

  start(): Promise<void> {
    return this.serial(() => this.doStart());
  }

  /** A deliberate restart: the crash count starts afresh. */
  restart(reason: string): Promise<void> {
    this.policy.reset();
    return this.serial(async () => {
      this.log(`Restarting the server: ${reason}.`);
      await this.doStop();
      await this.doStart();
    });
  }

  stop(): Promise<void> {
    return this.serial(() => this.doStop());
  }

  private folderFor(uri: vscode.Uri | undefined): vscode.WorkspaceFolder | undefined {
    if (uri) {
      const f = vscode.workspace.getWorkspaceFolder(uri);
      if (f) return f;
    }
    return vscode.workspace.workspaceFolders?.[0];
  }

  /** Settings for one folder (or the first folder), with problems shown once in the log. */
  settingsFor(folder: vscode.WorkspaceFolder | undefined): ExtensionSettings {
    const cfg = vscode.workspace.getConfiguration("amorsize", folder?.uri);
    const { settings, problems } = readSettings((key) => cfg.get(key));
    for (const p of problems) this.log(p.message);
    settings.interpreter = expandPath(settings.interpreter, os.homedir(), folder?.uri.fsPath);
    settings.path = settings.path.map((a) => expandPath(a, os.homedir(), folder?.uri.fsPath));
    return settings;
  }

  /** The interpreter for a folder: the server's launch Python for the first folder, and each
   * folder's own Python for sampling (a multi-root workspace is not forced onto one). */
  async interpreterFor(folder: vscode.WorkspaceFolder | undefined, s: ExtensionSettings): Promise<ResolvedInterpreter | undefined> {
    return resolveInterpreter({
      setting: s.interpreter,
      pythonExtension: () => this.python.activeInterpreter(folder?.uri),
      envPath: process.env.PATH,
      cwd: folder?.uri.fsPath,
    });
  }

  async serverSettingsFor(uri: vscode.Uri | undefined): Promise<ServerSettings> {
    const folder = this.folderFor(uri);
    const s = this.settingsFor(folder);
    const interp = await this.interpreterFor(folder, s);
    return toServerSettings(s, vscode.workspace.isTrusted, interp?.executable ?? this.launchInterpreter ?? "");
  }

  private async doStart(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const folder = this.folderFor(vscode.window.activeTextEditor?.document.uri);
    const settings = this.settingsFor(folder);
    const interp = await this.interpreterFor(folder, settings);
    const cmd = serverCommand(settings.path, interp);
    this.launchSettings = settings;
    this.launchInterpreter = interp?.executable;
    this.launchFolder = folder;
    this.startProblem = undefined;
    if (!cmd) {
      this.startProblem = "no python";
      this.setStatus("$(error) amorsize: no Python", "No Python interpreter found");
      const msg =
        "amorsize: no Python interpreter found (amorsize.interpreter is empty, the Python extension gave none, and python3 is not on PATH). Set amorsize.interpreter or amorsize.path.";
      this.log(msg);
      void this.offerSettings(msg);
      return;
    }
    if (cmd.via === "interpreter" && interp) {
      this.log(`Interpreter: ${interp.executable} (from ${interp.source}).`);
      const probe = await probeModule(interp.executable, undefined, undefined, folder?.uri.fsPath ?? os.homedir());
      if (probe.kind === "missing") {
        this.startProblem = "module missing";
        this.setStatus("$(error) amorsize: not installed", `amorsize_lsp is not installed in ${interp.executable}`);
        void this.offerInstall(interp);
        return;
      }
      if (probe.kind === "broken") {
        this.startProblem = "import failed";
        this.setStatus("$(error) amorsize: cannot start", probe.detail);
        const msg = `amorsize: cannot import amorsize_lsp with ${interp.executable} (from ${interp.source}):\n${probe.detail}`;
        this.log(msg);
        void this.offerSettings(msg);
        return;
      }
      this.log(`amorsize_lsp ${probe.version} found.`);
    }
    const gen = ++this.generation;
    const initial = toServerSettings(settings, vscode.workspace.isTrusted, interp?.executable ?? "");
    const client = new LanguageClient("amorsize", "amorsize", () => this.spawnServer(cmd.command, cmd.args, folder, gen), this.clientOptions(initial, gen));
    this.client = client;
    this.tail.clear();
    this.log(`Starting: ${[cmd.command, ...cmd.args].join(" ")}`);
    this.setStatus("$(loading~spin) amorsize: starting", "Starting the amorsize language server");
    try {
      await client.start();
    } catch (err) {
      this.log(`The server failed to start: ${String(err)}`);
      this.onServerClosed(gen);
      return;
    }
    if (gen !== this.generation) return;
    this.log("Server running.");
    for (const l of this.readyListeners) l(client);
    void this.refreshStatus();
    this.statusTimer = setInterval(() => void this.refreshStatus(), STATUS_POLL_MS);
  }

  private spawnServer(command: string, args: string[], folder: vscode.WorkspaceFolder | undefined, gen: number): Promise<ChildProcess> {
    const child = spawn(command, args, {
      cwd: folder?.uri.fsPath ?? os.homedir(),
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
      stdio: "pipe",
    });
    return new Promise((resolve, reject) => {
      child.once("error", (err) => {
        this.log(`Cannot run ${command}: ${err.message}`);
        reject(err);
      });
      child.once("spawn", () => {
        if (gen === this.generation) this.process = child;
        child.stderr?.on("data", (d: Buffer) => this.tail.append(d.toString("utf8")));
        child.once("exit", (code, signal) => {
          this.log(`Server process ${child.pid} exited (${signal ? `signal ${signal}` : `code ${code}`}).`);
          // A dead process is restarted even when the client saw a write error first
          // (it then shuts down without calling the close handler); a stop we asked
          // for has moved the generation on, so it is not restarted.
          this.onServerClosed(gen);
        });
        resolve(child);
      });
    });
  }

  private clientOptions(initial: ServerSettings, gen: number): LanguageClientOptions {
    return {
      documentSelector: [
        { scheme: "file", language: "python" },
        { scheme: "untitled", language: "python" },
      ],
      outputChannel: this.output,
      initializationOptions: initial,
      errorHandler: {
        error: (_error, _message, count) => ({ action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => {
          this.onServerClosed(gen);
          // We restart it ourselves, with backoff (the line after this one says when).
          return { action: CloseAction.DoNotRestart, handled: true, message: "The amorsize server stopped." };
        },
      },
      middleware: {
        workspace: {
          configuration: async (params, token, next) => {
            const base = await next(params, token);
            if (!Array.isArray(base)) return base;
            return Promise.all(
              params.items.map(async (item, i) =>
                item.section === "amorsize"
                  ? this.serverSettingsFor(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
                  : base[i],
              ),
            );
          },
        },
        executeCommand: async (command, args, next) => {
          if (command === SERVER_SAMPLE) await saveDocumentsIn(args);
          const result = await next(command, args);
          if (command === SERVER_SAMPLE) void this.refreshStatus();
          return result;
        },
      },
    };
  }

  /** The connection closed without our asking (a crash, or a failed start). */
  private onServerClosed(gen: number): void {
    if (gen !== this.generation) return;
    this.generation++; // later callbacks for this server are ignored
    if (this.statusTimer) clearInterval(this.statusTimer);
    const decision = this.policy.onCrash(Date.now());
    const tail = this.tail.last(20);
    if (tail.length > 0) this.log(`The server stopped. Its last output:\n${tail.join("\n")}`);
    if (decision.restart) {
      const secs = Math.round(decision.delayMs / 1000);
      this.log(`Restarting in ${secs} s (crash ${decision.recent} of ${DEFAULT_CRASH_POLICY.maxCrashes} allowed in ${DEFAULT_CRASH_POLICY.windowMs / 60000} minutes).`);
      this.setStatus(`$(warning) amorsize: restarting in ${secs}s`, "The language server stopped; restarting with backoff");
      this.restartTimer = setTimeout(() => {
        void this.serial(async () => {
          await this.doStop();
          await this.doStart();
        });
      }, decision.delayMs);
    } else {
      this.startProblem = "crashed";
      this.setStatus("$(error) amorsize: stopped", "The language server crashed repeatedly; see the output");
      const msg = crashMessage(decision.recent, DEFAULT_CRASH_POLICY.windowMs, this.tail.last(8));
      void vscode.window.showErrorMessage(msg, "Show Output", "Restart Server").then((choice) => {
        if (choice === "Show Output") this.output.show(true);
        if (choice === "Restart Server") void this.restart("requested after repeated crashes");
      });
    }
  }

  private async doStop(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    const client = this.client;
    const child = this.process;
    this.client = undefined;
    this.process = undefined;
    this.generation++;
    if (client) {
      try {
        if (client.state !== State.Stopped) await client.stop(3000);
      } catch (err) {
        this.log(`Stopping the server: ${String(err)}`);
      }
    }
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          resolve();
        }, 2000);
        child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Send the settings (and trust) to the running server; the server may also pull them. */
  async sendConfiguration(): Promise<void> {
    const client = this.client;
    if (!client || client.state !== State.Running) return;
    const settings = await this.serverSettingsFor(undefined);
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { amorsize: settings } });
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration("amorsize")) return;
    const now = this.settingsFor(this.launchFolder ?? this.folderFor(undefined));
    if (this.launchSettings && launchChanged(this.launchSettings, now)) {
      void this.restart("amorsize.interpreter or amorsize.path changed");
    } else if (this.client) {
      void this.sendConfiguration();
    } else {
      void this.start();
    }
  }

  private async onInterpreterMaybeChanged(reason: string): Promise<void> {
    const folder = this.launchFolder ?? this.folderFor(undefined);
    const s = this.settingsFor(folder);
    const interp = await this.interpreterFor(folder, s);
    if (s.path.length === 0 && interp?.executable !== this.launchInterpreter) {
      await this.restart(`${reason} (${this.launchInterpreter ?? "none"} -> ${interp?.executable ?? "none"})`);
    } else {
      await this.sendConfiguration();
    }
  }

  /** Ask the server for `amorsize.showStatus` and update the status bar. */
  async refreshStatus(): Promise<unknown> {
    const client = this.client;
    if (!client || client.state !== State.Running) return undefined;
    try {
      const result = await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_STATUS, arguments: [] });
      const view = parseStatus(result);
      this.lastStatus = view;
      this.setStatus(statusText(view), statusTooltip(view));
      return result;
    } catch (err) {
      this.setStatus("$(check) amorsize", `Server running; status unavailable: ${String(err)}`);
      return undefined;
    }
  }

  private async offerInstall(interp: ResolvedInterpreter): Promise<void> {
    const msg = `amorsize: the Python at ${interp.executable} (from ${interp.source}) has no amorsize_lsp module. Install it there with pip, or point amorsize.path at an amorsize-lsp executable.`;
    this.log(msg);
    const choice = await vscode.window.showErrorMessage(msg, "Install", "Use amorsize.path");
    if (choice === "Use amorsize.path") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "amorsize.path");
    } else if (choice === "Install") {
      const ok = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Installing amorsize-lsp into ${interp.executable}` },
        () => this.pipInstall(interp.executable),
      );
      if (ok) await this.restart("amorsize-lsp was installed");
      else {
        const again = await vscode.window.showErrorMessage(
          `amorsize: pip install amorsize-lsp failed with ${interp.executable}:\n${this.tail.last(6).join("\n")}`,
          "Show Output",
          "Use amorsize.path",
        );
        if (again === "Show Output") this.output.show(true);
        if (again === "Use amorsize.path") await vscode.commands.executeCommand("workbench.action.openSettings", "amorsize.path");
      }
    }
  }

  private pipInstall(python: string): Promise<boolean> {
    this.tail.clear();
    this.log(`Running: ${python} -m pip install amorsize-lsp`);
    return new Promise((resolve) => {
      const child = spawn(python, ["-m", "pip", "install", "amorsize-lsp"], { stdio: "pipe" });
      const write = (d: Buffer) => {
        const text = d.toString("utf8");
        this.output.append(text);
        this.tail.append(text);
      };
      child.stdout.on("data", write);
      child.stderr.on("data", write);
      child.once("error", (err) => {
        this.tail.append(`${err.message}\n`);
        resolve(false);
      });
      child.once("exit", (code) => resolve(code === 0));
    });
  }

  private async offerSettings(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", "amorsize.");
    if (choice === "Show Output") this.output.show(true);
  }

  dispose(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    for (const d of this.disposables) d.dispose();
  }
}

/** Save the dirty documents a sample command names: the file on disk is what runs. */
async function saveDocumentsIn(args: unknown[]): Promise<void> {
  const uris = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === "string" && v.startsWith("file:")) uris.add(v);
    else if (v && typeof v === "object") for (const x of Object.values(v)) if (typeof x === "string" && x.startsWith("file:")) uris.add(x);
  };
  for (const a of args ?? []) visit(a);
  for (const doc of vscode.workspace.textDocuments) {
    if (doc.isDirty && uris.has(doc.uri.toString())) await doc.save();
  }
}

