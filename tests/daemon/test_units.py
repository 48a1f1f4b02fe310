"""The service units in daemon/ name the real console script and flags that exist."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amorsize_lsp.daemon.__main__ import build_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "daemon" / "amorsize-daemon.service"
PLIST = ROOT / "daemon" / "com.amorsize.daemon.plist"
README = ROOT / "daemon" / "README.md"


def _console_script() -> tuple[str, str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    [(name, target)] = [(k, v) for k, v in scripts.items() if "daemon" in k]
    return name, target


def _check_argv(argv: list[str]) -> None:
    name, target = _console_script()
    assert Path(argv[0]).name == name
    assert target == "amorsize_lsp.daemon.__main__:main"
    args = build_parser().parse_args(argv[1:])  # SystemExit on an unknown flag
    assert args.command_name == "serve" and args.foreground
    assert args.idle_timeout == 0


def _exec_start() -> list[str]:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text())
    return shlex.split(cp["Service"]["ExecStart"])


def test_systemd_unit_runs_the_console_script_with_real_flags() -> None:
    _check_argv(_exec_start())


def test_launchd_plist_runs_the_console_script_with_real_flags() -> None:
    with PLIST.open("rb") as fh:
        plist = plistlib.load(fh)
    assert plist["Label"] == PLIST.stem
    _check_argv(plist["ProgramArguments"])
    assert plist["Umask"] == 0o077


def test_readme_names_the_unit_files_and_commands() -> None:
    text = README.read_text()
    for needle in (
        UNIT.name,
        PLIST.name,
        "amorsize-daemon status",
        "amorsize-daemon stop",
        "systemctl --user enable --now amorsize-daemon",
        "launchctl bootout",
    ):
        assert needle in text, needle


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("amorsize-daemon")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    argv = _exec_start()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(argv[0], str(script)))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
