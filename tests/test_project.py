"""Project-wide gates: part boundaries, ruff, and the README's two commands."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "amorsize_lsp"

#: part -> parts it must never import (the developers' guide: data flows one way). A part is
#: a folder of the package, or a top-level module of it (``check`` is the seam every
#: client shares; ``config`` is the shared configuration).
FORBIDDEN = {
    "analysis": {"engine", "daemon", "lsp", "lint", "rules", "check", "config"},
    "engine": {"daemon", "lsp", "lint", "rules", "check", "config"},
    "rules": {"daemon", "lsp", "lint", "check", "config"},
    "check": {"daemon", "lsp", "lint", "config"},
    "config": {"daemon", "lsp", "lint"},
    "daemon": {"rules", "lint", "lsp", "check", "config"},
    "lint": {"lsp"},
}


def _files_of(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{part}.py"]


def _imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                own = path.relative_to(PACKAGE).parts
                base = own[: max(len(own) - node.level, 0)]
                names = [".".join(("amorsize_lsp", *base, node.module or ""))]
            else:
                names = [node.module or ""]
        for name in names:
            bits = name.split(".")
            if bits[0] == "amorsize_lsp" and len(bits) > 1:
                parts.add(bits[1])
    return parts


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_boundaries(part: str) -> None:
    files = _files_of(part)
    assert files and all(f.is_file() for f in files), f"{part} has no source"
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imported_parts(p) & FORBIDDEN[part])
        for p in files
        if _imported_parts(p) & FORBIDDEN[part]
    }
    assert offenders == {}


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extra")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_clean(command: list[str]) -> None:
    proc = subprocess.run(
        ["ruff", *command, "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick, flags=re.S)
    assert len(commands) == 2
    assert "amorsize-lint examples/" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci


def test_console_scripts_exist() -> None:
    for module in (
        "amorsize_lsp.lint.cli",
        "amorsize_lsp.lsp.__main__",
        "amorsize_lsp.daemon.__main__",
    ):
        proc = subprocess.run(
            [sys.executable, "-c", f"import {module} as m; assert callable(m.main)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
