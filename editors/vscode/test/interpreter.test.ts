import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { findOnPath, lastLines, probeModule, resolveInterpreter, serverCommand } from "../src/interpreter";

let tmp: string;
let realPython: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "amorsize-vscode-test-"));
  const found = findOnPath("python3", process.env.PATH);
  assert.ok(found, "these tests need python3 on PATH");
  realPython = found;
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function script(file: string, body: string, mode = 0o755): string {
  fs.writeFileSync(file, body);
  fs.chmodSync(file, mode);
  return file;
}

test("amorsize.interpreter wins, without asking the Python extension", async () => {
  let asked = false;
  const r = await resolveInterpreter({
    setting: "/opt/py/bin/python",
    pythonExtension: async () => {
      asked = true;
      return "/ext/python";
    },
    envPath: process.env.PATH,
  });
  assert.deepEqual(r, { executable: "/opt/py/bin/python", source: "amorsize.interpreter" });
  assert.equal(asked, false);
});

test("a relative amorsize.interpreter resolves against the workspace folder", async () => {
  const r = await resolveInterpreter({ setting: ".venv/bin/python", pythonExtension: async () => undefined, envPath: "", cwd: "/w" });
  assert.equal(r?.executable, "/w/.venv/bin/python");
});

test("the Python extension's environment comes second", async () => {
  const r = await resolveInterpreter({ setting: "", pythonExtension: async () => "/ext/python", envPath: process.env.PATH });
  assert.deepEqual(r, { executable: "/ext/python", source: "Python extension" });
});

test("python3 on PATH comes last, also when the Python extension fails", async () => {
  const bin = dir("bin-last");
  const py = script(path.join(bin, "python3"), "#!/bin/sh\n");
  for (const ext of [async () => undefined, async () => { throw new Error("API changed"); }]) {
    const r = await resolveInterpreter({ setting: "", pythonExtension: ext, envPath: [dir("empty"), bin].join(path.delimiter) });
    assert.deepEqual(r, { executable: py, source: "PATH" });
  }
});

test("nothing anywhere resolves to undefined", async () => {
  const r = await resolveInterpreter({ setting: "", pythonExtension: async () => undefined, envPath: dir("none") });
  assert.equal(r, undefined);
});

test("findOnPath skips non-executable files and directories", () => {
  const a = dir("a");
  const b = dir("b");
  const c = dir("c");
  script(path.join(a, "python3"), "#!/bin/sh\n", 0o644);
  fs.mkdirSync(path.join(b, "python3"));
  const good = script(path.join(c, "python3"), "#!/bin/sh\n");
  assert.equal(findOnPath("python3", [a, b, c].join(path.delimiter)), good);
  assert.equal(findOnPath("python3", [a, b].join(path.delimiter)), undefined);
  assert.equal(findOnPath("python3", undefined), undefined);
});

test("serverCommand: amorsize.path replaces `python -m amorsize_lsp`", () => {
  const interp = { executable: "/py", source: "PATH" as const };
  assert.deepEqual(serverCommand([], interp), { command: "/py", args: ["-m", "amorsize_lsp"], via: "interpreter" });
  assert.deepEqual(serverCommand(["/bin/amorsize-lsp", "--x"], interp), { command: "/bin/amorsize-lsp", args: ["--x"], via: "amorsize.path" });
  assert.deepEqual(serverCommand(["/bin/amorsize-lsp"], undefined)?.command, "/bin/amorsize-lsp");
  assert.equal(serverCommand([], undefined), undefined);
});

// probeModule runs a real Python. The wrappers pin what it can import: -I -S hides
// site-packages and PYTHONPATH (so amorsize_lsp is missing whatever is installed),
// -S with PYTHONPATH sees only the package written here.
test("probeModule: a Python without amorsize_lsp is 'missing'", async () => {
  const py = script(path.join(dir("isolated"), "python"), `#!/bin/sh\nexec ${realPython} -I -S "$@"\n`);
  const r = await probeModule(py);
  assert.equal(r.kind, "missing");
});

test("probeModule: an importable amorsize_lsp is 'ok' with its version", async () => {
  const site = dir("site-ok");
  fs.mkdirSync(path.join(site, "amorsize_lsp"));
  fs.writeFileSync(path.join(site, "amorsize_lsp", "__init__.py"), "__version__ = '9.8.7'\n");
  const py = script(path.join(dir("ok"), "python"), `#!/bin/sh\nPYTHONPATH=${site} exec ${realPython} -S "$@"\n`);
  assert.deepEqual(await probeModule(py), { kind: "ok", version: "9.8.7" });
});

test("probeModule: a broken install is 'broken' with its error, not an install offer", async () => {
  const site = dir("site-broken");
  fs.mkdirSync(path.join(site, "amorsize_lsp"));
  fs.writeFileSync(path.join(site, "amorsize_lsp", "__init__.py"), "import pygls_that_is_not_there\n");
  const py = script(path.join(dir("broken"), "python"), `#!/bin/sh\nPYTHONPATH=${site} exec ${realPython} -S "$@"\n`);
  const r = await probeModule(py);
  assert.equal(r.kind, "broken");
  assert.match(r.kind === "broken" ? r.detail : "", /pygls_that_is_not_there/);
});

test("probeModule: a missing executable is 'broken' and says so", async () => {
  const r = await probeModule(path.join(tmp, "no", "such", "python"));
  assert.equal(r.kind, "broken");
  assert.match(r.kind === "broken" ? r.detail : "", /does not exist/);
});

test("lastLines keeps the last non-blank lines", () => {
  assert.equal(lastLines("a\n\nb\r\nc\n\n", 2), "b\nc");
});
