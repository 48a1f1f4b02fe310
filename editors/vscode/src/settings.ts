/**
 * The extension's settings and how they map onto the language server's pinned keys.
 *
 * Pure: no `vscode` import, so Node's test runner checks the mapping without VS Code.
 * The server reads nested objects (`{"sampling": {"enabled": true}}`), which is also
 * what `workspace.getConfiguration("amorsize")` hands back for dotted keys.
 */

export type LogLevel = "error" | "warning" | "info" | "debug";

/** What the user configured, normalised (`amorsize.*`, one workspace folder). */
export interface ExtensionSettings {
  lintSelect: string[];
  lintIgnore: string[];
  inlayHintsEnabled: boolean;
  samplingEnabled: boolean;
  samplingBudgetSeconds: number;
  interpreter: string;
  path: string[];
  logLevel: LogLevel;
  debounceMs: number;
  daemonAutoStart: boolean;
}

/** The server's pinned settings (issue 8), as sent in initializationOptions,
 * workspace/configuration answers and didChangeConfiguration. */
export interface ServerSettings {
  trusted: boolean;
  sampling: { enabled: boolean; budgetSeconds: number };
  diagnostics: { debounceMs: number };
  lint: { select: string[]; ignore: string[] };
  inlayHints: { enabled: boolean };
  interpreter: string;
  daemon: { autoStart: boolean };
  logLevel: LogLevel;
}

/** Defaults; `test/settings.test.ts` checks they equal package.json's. */
export const DEFAULTS: ExtensionSettings = {
  lintSelect: [],
  lintIgnore: [],
  inlayHintsEnabled: true,
  samplingEnabled: false,
  samplingBudgetSeconds: 2,
  interpreter: "",
  path: [],
  logLevel: "warning",
  debounceMs: 150,
  daemonAutoStart: true,
};

/** `amorsize.<key>` for each field, the single source of the setting names. */
export const SETTING_KEYS: Record<keyof ExtensionSettings, string> = {
  lintSelect: "lint.select",
  lintIgnore: "lint.ignore",
  inlayHintsEnabled: "inlayHints.enabled",
  samplingEnabled: "sampling.enabled",
  samplingBudgetSeconds: "sampling.budgetSeconds",
  interpreter: "interpreter",
  path: "path",
  logLevel: "logLevel",
  debounceMs: "diagnostics.debounceMs",
  daemonAutoStart: "daemon.autoStart",
};

/** Client-only settings that never reach the server. */
export const CLIENT_ONLY_KEYS = ["path", "trace.server"];

const LOG_LEVELS: readonly LogLevel[] = ["error", "warning", "info", "debug"];

/** A problem with one setting, shown to the user once per change. */
export interface SettingProblem {
  key: string;
  message: string;
}

function stringList(value: unknown, key: string, problems: SettingProblem[]): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value.trim() === "" ? [] : [value.trim()];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return value.map((v: string) => v.trim()).filter((v) => v !== "");
  }
  problems.push({ key, message: `amorsize.${key} must be a list of strings; using the default.` });
  return undefined;
}

function bool(value: unknown, key: string, problems: SettingProblem[]): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  problems.push({ key, message: `amorsize.${key} must be true or false; using the default.` });
  return undefined;
}

function num(
  value: unknown,
  key: string,
  min: number,
  max: number,
  problems: SettingProblem[],
  integer = false,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value))) {
    return value;
  }
  const what = integer ? "a whole number" : "a number";
  problems.push({
    key,
    message: `amorsize.${key} must be ${what} from ${min} to ${max} (got ${JSON.stringify(value)}); using the default.`,
  });
  return undefined;
}

/**
 * Read and validate the settings through `get("lint.select")` etc. Wrong types fall back
 * to the default and are reported, so one bad value never stops the server.
 */
export function readSettings(get: (key: string) => unknown): {
  settings: ExtensionSettings;
  problems: SettingProblem[];
} {
  const p: SettingProblem[] = [];
  const k = SETTING_KEYS;
  const interp = get(k.interpreter);
  let interpreter: string | undefined;
  if (typeof interp === "string") interpreter = interp.trim();
  else if (Array.isArray(interp) && interp.length > 0 && typeof interp[0] === "string") {
    // The Python tools template used a list; accept its first element.
    interpreter = interp[0].trim();
  } else if (interp !== undefined && interp !== null && !(Array.isArray(interp) && interp.length === 0)) {
    p.push({ key: k.interpreter, message: "amorsize.interpreter must be a path to a Python executable; ignoring it." });
  }
  const level = get(k.logLevel);
  let logLevel: LogLevel | undefined;
  if (typeof level === "string" && (LOG_LEVELS as readonly string[]).includes(level.toLowerCase())) {
    logLevel = level.toLowerCase() as LogLevel;
  } else if (level !== undefined && level !== null) {
    p.push({ key: k.logLevel, message: `amorsize.logLevel must be one of ${LOG_LEVELS.join(", ")}; using "${DEFAULTS.logLevel}".` });
  }
  const settings: ExtensionSettings = {
    lintSelect: stringList(get(k.lintSelect), k.lintSelect, p) ?? DEFAULTS.lintSelect,
    lintIgnore: stringList(get(k.lintIgnore), k.lintIgnore, p) ?? DEFAULTS.lintIgnore,
    inlayHintsEnabled: bool(get(k.inlayHintsEnabled), k.inlayHintsEnabled, p) ?? DEFAULTS.inlayHintsEnabled,
    samplingEnabled: bool(get(k.samplingEnabled), k.samplingEnabled, p) ?? DEFAULTS.samplingEnabled,
    samplingBudgetSeconds:
      num(get(k.samplingBudgetSeconds), k.samplingBudgetSeconds, 0.1, 60, p) ?? DEFAULTS.samplingBudgetSeconds,
    interpreter: interpreter ?? DEFAULTS.interpreter,
    path: stringList(get(k.path), k.path, p) ?? DEFAULTS.path,
    logLevel: logLevel ?? DEFAULTS.logLevel,
    debounceMs: num(get(k.debounceMs), k.debounceMs, 0, 300, p, true) ?? DEFAULTS.debounceMs,
    daemonAutoStart: bool(get(k.daemonAutoStart), k.daemonAutoStart, p) ?? DEFAULTS.daemonAutoStart,
  };
  return { settings, problems: p };
}

/**
 * Map onto the server's pinned keys. `trusted` is the workspace trust; sampling is sent
 * off in an untrusted workspace whatever the setting says (the server refuses it too).
 * `interpreter` is the resolved Python that runs user code, not the raw setting.
 */
export function toServerSettings(s: ExtensionSettings, trusted: boolean, interpreter: string): ServerSettings {
  return {
    trusted,
    sampling: { enabled: trusted && s.samplingEnabled, budgetSeconds: s.samplingBudgetSeconds },
    diagnostics: { debounceMs: s.debounceMs },
    lint: { select: [...s.lintSelect], ignore: [...s.lintIgnore] },
    inlayHints: { enabled: s.inlayHintsEnabled },
    interpreter,
    daemon: { autoStart: s.daemonAutoStart },
    logLevel: s.logLevel,
  };
}

/** The server process's command line changes only with these; everything else is sent live. */
export function launchChanged(before: ExtensionSettings, after: ExtensionSettings): boolean {
  return before.interpreter !== after.interpreter || before.path.join("\0") !== after.path.join("\0");
}

/** Expand `~` and `${workspaceFolder}` (and `${userHome}`) in a path setting. */
export function expandPath(value: string, home: string, workspaceFolder: string | undefined): string {
  let out = value;
  if (out === "~" || out.startsWith("~/")) out = home + out.slice(1);
  out = out.split("${userHome}").join(home);
  if (workspaceFolder !== undefined) out = out.split("${workspaceFolder}").join(workspaceFolder);
  return out;
}
