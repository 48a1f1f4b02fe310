import assert from "node:assert/strict";
import { test } from "node:test";
import { parseStatus, statusText, statusTooltip } from "../src/status";

test("daemon state and measured count from the usual shapes", () => {
  assert.deepEqual(parseStatus({ daemon: "running", measuredCallSites: 3 }), { daemon: "running", measured: 3 });
  assert.deepEqual(parseStatus({ daemon: { state: "unreachable" }, measured: [1, 2] }), { daemon: "unreachable", measured: 2 });
  assert.deepEqual(parseStatus({ daemon: { running: false }, callSites: { measured: 4 } }), { daemon: "stopped", measured: 4 });
  assert.deepEqual(parseStatus({ daemon: { connected: true, measured_call_sites: 7 } }), { daemon: "running", measured: 7 });
});

test("the shape amorsize.showStatus answers", () => {
  const result = {
    server: { version: "0.1.0", pid: 1 },
    daemon: { state: "up", socket: "/run/amorsize/daemon.sock", error: null },
    measured_profiles: 12,
    measured_call_sites_open: 2,
    documents: 3,
  };
  const view = parseStatus(result);
  assert.deepEqual(view, { daemon: "up", measured: 12, measuredOpen: 2 });
  assert.equal(statusText(view), "$(pulse) amorsize: daemon up · 12 measured");
  assert.match(statusTooltip(view), /12 measured call sites in the store\. 2 call sites in open files/);
  assert.deepEqual(parseStatus({ ...result, daemon: { state: "down" }, measured_profiles: null }), {
    daemon: "down",
    measured: undefined,
    measuredOpen: 2,
  });
});

test("unknown shapes give 'unknown', never an exception", () => {
  for (const v of [null, undefined, 3, "x", [], { daemon: 5 }, { measured: -1 }, { measured: "3" }]) {
    const view = parseStatus(v);
    assert.equal(typeof view.daemon, "string");
    assert.equal(view.measured, undefined);
  }
});

test("status text names the state and the count", () => {
  assert.equal(statusText({ daemon: "running", measured: 3 }), "$(pulse) amorsize: daemon running · 3 measured");
  assert.equal(statusText({ daemon: "stopped", measured: undefined }), "$(circle-slash) amorsize: daemon stopped");
});
