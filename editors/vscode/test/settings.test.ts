import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  CLIENT_ONLY_KEYS,
  DEFAULTS,
  ExtensionSettings,
  SETTING_KEYS,
  expandPath,
  launchChanged,
  readSettings,
  toServerSettings,
} from "../src/settings";

// esbuild bundles this file into out/test/, two levels below the package.
const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const contributed: Record<string, { default: unknown; markdownDescription?: string; description?: string }> =
  pkg.contributes.configuration.properties;

/** The server's pinned keys from issue 8, as dotted paths. */
const PINNED = [
  "trusted",
  "sampling.enabled",
  "sampling.budgetSeconds",
  "diagnostics.debounceMs",
  "lint.select",
  "lint.ignore",
  "inlayHints.enabled",
  "interpreter",
  "daemon.autoStart",
  "logLevel",
];

function flatten(obj: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, key));
    else out[key] = v;
  }
  return out;
}

test("every setting the code reads is contributed in package.json with the same default and a description", () => {
  for (const [field, key] of Object.entries(SETTING_KEYS)) {
    const prop = contributed[`amorsize.${key}`];
    assert.ok(prop, `amorsize.${key} is not contributed`);
    assert.deepEqual(prop.default, DEFAULTS[field as keyof ExtensionSettings], `default of amorsize.${key}`);
    assert.ok((prop.markdownDescription ?? prop.description ?? "").length > 20, `amorsize.${key} has no description`);
  }
});

test("every contributed setting is read by the code or is client-only", () => {
  const known = new Set([...Object.values(SETTING_KEYS), ...CLIENT_ONLY_KEYS].map((k) => `amorsize.${k}`));
  for (const key of Object.keys(contributed)) assert.ok(known.has(key), `${key} is contributed but never used`);
  assert.ok(contributed["amorsize.trace.server"], "amorsize.trace.server drives the client's protocol trace");
});

test("the mapping sends exactly the server's pinned keys", () => {
  const sent = flatten(toServerSettings(DEFAULTS, true, "/usr/bin/python3") as unknown as Record<string, unknown>);
  assert.deepEqual(Object.keys(sent).sort(), [...PINNED].sort());
  for (const key of CLIENT_ONLY_KEYS) assert.ok(!(key in sent), `${key} is client-only`);
});

test("values reach the server under their pinned keys", () => {
  const values: Record<string, unknown> = {
    "lint.select": ["AMZ001", "AMZ1"],
    "lint.ignore": ["AMZ006"],
    "inlayHints.enabled": false,
    "sampling.enabled": true,
    "sampling.budgetSeconds": 2.5,
    interpreter: "/opt/py/bin/python",
    path: ["/opt/bin/amorsize-lsp", "--verbose"],
    logLevel: "debug",
    "diagnostics.debounceMs": 0,
    "daemon.autoStart": false,
  };
  const { settings, problems } = readSettings((k) => values[k]);
  assert.deepEqual(problems, []);
  const sent = flatten(toServerSettings(settings, true, "/resolved/python") as unknown as Record<string, unknown>);
  for (const [key, value] of Object.entries(values)) {
    if (key === "path" || key === "interpreter") continue;
    assert.deepEqual(sent[key], value, key);
  }
  assert.equal(sent.interpreter, "/resolved/python", "the resolved interpreter is sent, not the raw setting");
  assert.equal(sent.trusted, true);
  assert.deepEqual(settings.path, values.path);
});

test("an untrusted workspace is told trusted=false and sampling off, whatever the setting", () => {
  const { settings } = readSettings((k) => (k === "sampling.enabled" ? true : undefined));
  const untrusted = toServerSettings(settings, false, "python3");
  assert.equal(untrusted.trusted, false);
  assert.equal(untrusted.sampling.enabled, false);
  const trusted = toServerSettings(settings, true, "python3");
  assert.equal(trusted.trusted, true);
  assert.equal(trusted.sampling.enabled, true);
});

test("nothing configured gives the defaults and no problems", () => {
  const { settings, problems } = readSettings(() => undefined);
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(problems, []);
});

test("wrong types fall back to the default, one problem per bad key", () => {
  const bad: Record<string, unknown> = {
    "lint.select": 3,
    "inlayHints.enabled": "yes",
    "sampling.budgetSeconds": -1,
    "diagnostics.debounceMs": 12.5,
    logLevel: "loud",
    interpreter: 42,
  };
  const { settings, problems } = readSettings((k) => bad[k]);
  assert.deepEqual(problems.map((p) => p.key).sort(), Object.keys(bad).sort());
  assert.deepEqual(settings, DEFAULTS);
  for (const p of problems) assert.match(p.message, new RegExp(`amorsize\\.${p.key.replace(".", "\\.")}`));
});

test("a string is accepted where a list is expected, and the old list form of interpreter", () => {
  const { settings } = readSettings((k) => ({ "lint.select": " AMZ001 ", interpreter: ["/x/python"] } as Record<string, unknown>)[k]);
  assert.deepEqual(settings.lintSelect, ["AMZ001"]);
  assert.equal(settings.interpreter, "/x/python");
});

test("only the interpreter and amorsize.path change the server's command line", () => {
  const changed: Record<keyof ExtensionSettings, unknown> = {
    lintSelect: ["AMZ002"],
    lintIgnore: ["AMZ001"],
    inlayHintsEnabled: false,
    samplingEnabled: true,
    samplingBudgetSeconds: 3,
    interpreter: "/other/python",
    path: ["/bin/amorsize-lsp"],
    logLevel: "debug",
    debounceMs: 0,
    daemonAutoStart: false,
  };
  for (const [field, value] of Object.entries(changed)) {
    const after = { ...DEFAULTS, [field]: value } as ExtensionSettings;
    assert.equal(launchChanged(DEFAULTS, after), field === "interpreter" || field === "path", field);
  }
});

test("~, ${userHome} and ${workspaceFolder} expand in paths", () => {
  assert.equal(expandPath("~/venv/bin/python", "/home/u", "/w"), "/home/u/venv/bin/python");
  assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/home/u", "/w"), "/w/.venv/bin/python");
  assert.equal(expandPath("${userHome}/py", "/home/u", undefined), "/home/u/py");
  assert.equal(expandPath("~user/py", "/home/u", "/w"), "~user/py");
});
