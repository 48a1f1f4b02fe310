"""Run the real ``amorsize-lint`` entry point in-process and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

from amorsize_lsp.lint.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str


def lint(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    old_cwd = Path.cwd()
    saved = {k: os.environ.get(k) for k in (env or {})}
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Run(code, out.getvalue(), err.getvalue())


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


#: A file with one finding of each kind the fix tests need.
BAD_EXECUTOR = """\
from concurrent.futures import ProcessPoolExecutor


def work(x):
    return x * 2


def main(items):
    with ProcessPoolExecutor() as executor:
        return list(executor.map(work, range(4096)))
"""

CLEAN = """\
from concurrent.futures import ProcessPoolExecutor


def work(x):
    return x * 2


def main(items):
    with ProcessPoolExecutor() as executor:
        return list(executor.map(work, items, chunksize=32))
"""

UNRELATED = "import os\n\nprint(os.getcwd())\n"
