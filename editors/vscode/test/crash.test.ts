import assert from "node:assert/strict";
import { test } from "node:test";
import { CrashPolicy, CrashPolicyOptions, LogTail, crashMessage } from "../src/crash";

const opts: CrashPolicyOptions = { maxCrashes: 5, windowMs: 180000, baseDelayMs: 1000, maxDelayMs: 4000 };

test("restarts back off exponentially, capped, then give up at maxCrashes", () => {
  const p = new CrashPolicy(opts);
  const decisions = Array.from({ length: opts.maxCrashes }, (_, i) => p.onCrash(i * 10));
  const delays = decisions.filter((d) => d.restart).map((d) => (d.restart ? d.delayMs : -1));
  assert.equal(delays.length, opts.maxCrashes - 1);
  for (let i = 0; i < delays.length; i++) {
    assert.equal(delays[i], Math.min(opts.baseDelayMs * 2 ** i, opts.maxDelayMs));
  }
  const last = decisions[decisions.length - 1];
  assert.equal(last.restart, false);
  assert.equal(last.recent, opts.maxCrashes);
});

test("crashes older than the window are forgotten", () => {
  const p = new CrashPolicy(opts);
  for (let i = 0; i < opts.maxCrashes - 1; i++) p.onCrash(i);
  const later = p.onCrash(opts.windowMs + 10);
  assert.equal(later.restart, true);
  assert.equal(later.recent, 1);
});

test("a deliberate restart resets the count", () => {
  const p = new CrashPolicy(opts);
  for (let i = 0; i < opts.maxCrashes - 1; i++) p.onCrash(i);
  p.reset();
  assert.deepEqual(p.onCrash(100), { restart: true, delayMs: opts.baseDelayMs, recent: 1 });
});

test("LogTail keeps the last lines across chunk boundaries", () => {
  const t = new LogTail(3);
  t.append("one\ntw");
  t.append("o\nthree\n\nfour\nfi");
  assert.deepEqual(t.last(10), ["three", "four", "fi"]);
  assert.deepEqual(t.last(2), ["four", "fi"]);
  t.append("ve\n");
  assert.deepEqual(t.last(1), ["five"]);
  t.clear();
  assert.deepEqual(t.last(5), []);
});

test("the give-up message carries the log tail, or says there was none", () => {
  const tail = ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'pygls'"];
  const msg = crashMessage(5, 180000, tail);
  assert.match(msg, /5 times in 3 minutes/);
  for (const line of tail) assert.ok(msg.includes(line));
  assert.match(crashMessage(5, 180000, []), /wrote nothing to stderr/);
});
