/**
 * Which Python runs the language server, and whether `amorsize_lsp` is importable there.
 *
 * No `vscode` import: the Python extension is reached through a callback, so the order
 * (setting, Python extension, `python3` on PATH) is tested with Node's test runner.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export type InterpreterSource = "amorsize.interpreter" | "Python extension" | "PATH";

export interface ResolvedInterpreter {
  executable: string;
  source: InterpreterSource;
}

export interface ResolveInputs {
  /** `amorsize.interpreter`, already expanded; "" when unset. */
  setting: string;
  /** The Python extension's active environment for the folder, or undefined when it is
   * not installed, has none selected, or fails. */
  pythonExtension: () => Promise<string | undefined>;
  /** `PATH` to search for `python3`. */
  envPath: string | undefined;
  /** Where relative settings resolve (the workspace folder). */
  cwd?: string;
}

/** First match of `name` among the directories of `envPath` that is an executable file. */
export function findOnPath(name: string, envPath: string | undefined): string | undefined {
  if (!envPath) return undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, name);
    try {
      const st = fs.statSync(candidate);
      if (st.isFile()) {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      }
    } catch {
      // Not here, or not executable: keep looking.
    }
  }
  return undefined;
}

/**
 * Resolve in the order. An explicit setting wins even when the file is missing,
 * so the user gets an error about *their* setting rather than a silent fallback.
 */
export async function resolveInterpreter(inputs: ResolveInputs): Promise<ResolvedInterpreter | undefined> {
  if (inputs.setting !== "") {
    const exe =
      inputs.cwd !== undefined && !path.isAbsolute(inputs.setting) && inputs.setting.includes(path.sep)
        ? path.resolve(inputs.cwd, inputs.setting)
        : inputs.setting;
    return { executable: exe, source: "amorsize.interpreter" };
  }
  let fromExtension: string | undefined;
  try {
    fromExtension = await inputs.pythonExtension();
  } catch {
    fromExtension = undefined;
  }
  if (fromExtension) return { executable: fromExtension, source: "Python extension" };
  const onPath = findOnPath("python3", inputs.envPath);
  if (onPath) return { executable: onPath, source: "PATH" };
  return undefined;
}

/** The server's command line: `amorsize.path` when set, else `<python> -m amorsize_lsp`. */
export function serverCommand(
  pathSetting: string[],
  interpreter: ResolvedInterpreter | undefined,
): { command: string; args: string[]; via: "amorsize.path" | "interpreter" } | undefined {
  if (pathSetting.length > 0) {
    return { command: pathSetting[0], args: pathSetting.slice(1), via: "amorsize.path" };
  }
  if (!interpreter) return undefined;
  return { command: interpreter.executable, args: ["-m", "amorsize_lsp"], via: "interpreter" };
}

export type ProbeResult =
  | { kind: "ok"; version: string }
  | { kind: "missing"; detail: string }
  | { kind: "broken"; detail: string };

const PROBE = [
  "import sys",
  "try:",
  "    import amorsize_lsp",
  "except ModuleNotFoundError as e:",
  "    if e.name and e.name.split('.')[0] == 'amorsize_lsp':",
  "        print('missing'); sys.exit(0)",
  "    raise",
  "print('ok', getattr(amorsize_lsp, '__version__', '?'))",
].join("\n");

/**
 * Ask `python` whether it can import `amorsize_lsp`. "missing" is the one case where
 * offering `pip install` is right; anything else (the file is not a Python, the package
 * is broken) is reported with its stderr.
 */
export function probeModule(
  python: string,
  timeoutMs = 15000,
  env?: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<ProbeResult> {
  // Probe from the folder the server will run in: `python -m` imports from there too.
  return new Promise((resolve) => {
    execFile(python, ["-c", PROBE], { timeout: timeoutMs, env: env ?? process.env, cwd }, (error, stdout, stderr) => {
      const out = String(stdout).trim();
      if (!error && out === "missing") {
        resolve({ kind: "missing", detail: `No module named 'amorsize_lsp' in ${python}` });
      } else if (!error && out.startsWith("ok")) {
        resolve({ kind: "ok", version: out.slice(3).trim() });
      } else {
        const why = (error as NodeJS.ErrnoException | null)?.code === "ENOENT"
          ? `${python} does not exist or is not executable`
          : lastLines(String(stderr) || String(error?.message ?? ""), 5);
        resolve({ kind: "broken", detail: why });
      }
    });
  });
}

/** The last `n` non-empty lines of `text`. */
export function lastLines(text: string, n: number): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.slice(-n).join("\n");
}
