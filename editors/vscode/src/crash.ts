/**
 * Restart policy for a crashing server, and the log tail shown when it gives up.
 *
 * vscode-languageclient's default handler restarts at once, four times, then shows a bare
 * "crashed 5 times"; users then cannot tell an import error from a segfault. Here each
 * restart waits longer (so a crash loop cannot eat the CPU), and when the policy gives up
 * the message carries the last lines the server wrote to stderr.
 */

export interface CrashPolicyOptions {
  /** Crashes within `windowMs` after which we stop restarting. */
  maxCrashes: number;
  windowMs: number;
  /** Delay before the first restart; doubled per recent crash, capped at `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_CRASH_POLICY: CrashPolicyOptions = {
  maxCrashes: 5,
  windowMs: 3 * 60 * 1000,
  baseDelayMs: 1000,
  maxDelayMs: 16000,
};

export type CrashDecision = { restart: true; delayMs: number; recent: number } | { restart: false; recent: number };

export class CrashPolicy {
  private crashes: number[] = [];

  constructor(private readonly options: CrashPolicyOptions = DEFAULT_CRASH_POLICY) {}

  /** Record a crash at `now` and decide: restart after a delay, or give up. */
  onCrash(now: number): CrashDecision {
    this.crashes = this.crashes.filter((t) => now - t < this.options.windowMs);
    this.crashes.push(now);
    const recent = this.crashes.length;
    if (recent >= this.options.maxCrashes) return { restart: false, recent };
    const delayMs = Math.min(this.options.baseDelayMs * 2 ** (recent - 1), this.options.maxDelayMs);
    return { restart: true, delayMs, recent };
  }

  /** A deliberate restart (command, interpreter change) starts the count afresh. */
  reset(): void {
    this.crashes = [];
  }
}

/** Keeps the last `capacity` lines written by the server (stderr), for the crash message. */
export class LogTail {
  private lines: string[] = [];
  private partial = "";

  constructor(private readonly capacity = 200) {}

  append(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.push(line);
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** The last `n` non-blank lines, the unterminated one included. */
  last(n: number): string[] {
    const all = this.partial === "" ? this.lines : [...this.lines, this.partial];
    return all.filter((l) => l.trim() !== "").slice(-n);
  }

  clear(): void {
    this.lines = [];
    this.partial = "";
  }
}

/** The message shown when the policy gives up: the count, the window, and the log tail. */
export function crashMessage(recent: number, windowMs: number, tail: string[]): string {
  const minutes = Math.round(windowMs / 60000);
  const head = `The amorsize language server stopped ${recent} times in ${minutes} minutes and will not be restarted.`;
  if (tail.length === 0) return `${head} It wrote nothing to stderr; see the amorsize output channel.`;
  return `${head} Its last output:\n${tail.join("\n")}`;
}
