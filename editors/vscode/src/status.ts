/**
 * The status bar's view of `amorsize.showStatus` (a server command).
 *
 * Pure and defensive: the result comes from another process and may be older or newer
 * than this extension, so unknown shapes give "unknown", never an exception.
 */

export interface StatusView {
  /** The server's word for the daemon ("up", "down", ...), or "unknown". */
  daemon: string;
  /** Measured call sites in the daemon's store, or undefined when the server did not say. */
  measured: number | undefined;
  /** Call sites in the open files whose advice is measured (or recorded), when known. */
  measuredOpen?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function pick(obj: Record<string, unknown>, keys: string[]): unknown {
  for (const k of keys) if (k in obj && obj[k] !== undefined && obj[k] !== null) return obj[k];
  return undefined;
}

function count(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.floor(v);
  if (Array.isArray(v)) return v.length;
  return undefined;
}

// amorsize.showStatus answers `measured_profiles` (the store) and `measured_call_sites_open`;
// the other spellings keep older or newer servers readable.
const MEASURED_KEYS = ["measured_profiles", "measuredCallSites", "measured_call_sites", "measured", "callSitesMeasured"];
const OPEN_KEYS = ["measured_call_sites_open", "measuredCallSitesOpen"];

/** Read the daemon's state and the number of measured call sites from a status result. */
export function parseStatus(result: unknown): StatusView {
  if (!isObject(result)) return { daemon: "unknown", measured: undefined };
  let daemon = "unknown";
  const d = pick(result, ["daemon", "daemonState", "daemon_state"]);
  if (typeof d === "string") daemon = d;
  else if (isObject(d)) {
    const st = pick(d, ["state", "status"]);
    if (typeof st === "string") daemon = st;
    else if (typeof d.running === "boolean") daemon = d.running ? "running" : "stopped";
    else if (typeof d.connected === "boolean") daemon = d.connected ? "running" : "unreachable";
  } else if (typeof d === "boolean") daemon = d ? "running" : "stopped";
  let measured = count(pick(result, MEASURED_KEYS));
  if (measured === undefined) {
    const callSites = pick(result, ["callSites", "call_sites"]);
    if (isObject(callSites)) measured = count(pick(callSites, ["measured", ...MEASURED_KEYS]));
  }
  if (measured === undefined && isObject(d)) measured = count(pick(d, MEASURED_KEYS));
  const measuredOpen = count(pick(result, OPEN_KEYS));
  return measuredOpen === undefined ? { daemon, measured } : { daemon, measured, measuredOpen };
}

/** Status bar text, with a codicon: `$(pulse) amorsize: daemon running · 3 measured`. */
export function statusText(view: StatusView): string {
  const up = view.daemon === "up" || view.daemon === "running";
  const icon = up ? "$(pulse)" : view.daemon === "unknown" ? "$(question)" : "$(circle-slash)";
  const measured = view.measured === undefined ? "" : ` · ${view.measured} measured`;
  return `${icon} amorsize: daemon ${view.daemon}${measured}`;
}

/** Tooltip: what the two numbers mean. */
export function statusTooltip(view: StatusView): string {
  const parts = [`amorsize daemon: ${view.daemon}.`];
  if (view.measured !== undefined) parts.push(`${view.measured} measured call sites in the store.`);
  if (view.measuredOpen !== undefined) parts.push(`${view.measuredOpen} call sites in open files use a measurement.`);
  parts.push("Click for details.");
  return parts.join(" ");
}
