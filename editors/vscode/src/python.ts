/**
 * The Python extension's active environment, through its public API, when it is installed.
 *
 * Typed locally with only what is used (`environments.getActiveEnvironmentPath`,
 * `resolveEnvironment`, `onDidChangeActiveEnvironmentPath`), so the extension needs no
 * dependency on the Python extension's npm package and works without it.
 */
import * as vscode from "vscode";

interface EnvironmentPath {
  id: string;
  path: string;
}

interface ResolvedEnvironment {
  executable: { uri?: vscode.Uri };
}

interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(env: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

const PYTHON_EXTENSION = "ms-python.python";

export class PythonEnvironments implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.emitter.event;
  private api: PythonApi | undefined;
  private subscription: vscode.Disposable | undefined;

  /** Activate the Python extension if installed; never throws. */
  async init(log: (message: string) => void): Promise<void> {
    const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
    if (!ext) return;
    try {
      this.api = ext.isActive ? ext.exports : await ext.activate();
      this.subscription = this.api?.environments?.onDidChangeActiveEnvironmentPath(() => this.emitter.fire());
    } catch (err) {
      log(`The Python extension did not activate (${String(err)}); using amorsize.interpreter or python3 on PATH.`);
      this.api = undefined;
    }
  }

  /** The active environment's executable for `resource`, or undefined. */
  async activeInterpreter(resource: vscode.Uri | undefined): Promise<string | undefined> {
    const envs = this.api?.environments;
    if (!envs) return undefined;
    const envPath = envs.getActiveEnvironmentPath(resource);
    const resolved = await envs.resolveEnvironment(envPath);
    return resolved?.executable.uri?.fsPath;
  }

  dispose(): void {
    this.subscription?.dispose();
    this.emitter.dispose();
  }
}
