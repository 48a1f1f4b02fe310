"""``github``: GitHub Actions workflow commands, shown as annotations on the diff.

``::warning file=…,line=…,col=…,endLine=…,endColumn=…,title=…::message``; findings
whose severity is ``error`` (AMZ002, AMZ003) and E999 use ``::error`` so that they
stand out in the pull request.
"""

from __future__ import annotations

from typing import TextIO

from amorsize_lsp.rules.model import Severity

from .common import E999, OutputOptions


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level, code, path, line, col, end_line, end_col, message) -> str:
    props = ",".join(
        [
            f"file={_prop(path)}",
            f"line={line}",
            f"col={col}",
            f"endLine={end_line}",
            f"endColumn={end_col}",
            f"title={_prop(f'amorsize-lint ({code})')}",
        ]
    )
    return f"::{level} {props}::{_data(f'{path}:{line}:{col}: {code} {message}')}\n"


#: Workflow command per severity.
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def write_github(result, out: TextIO, options: OutputOptions) -> None:
    entries = []
    for f in result.findings:
        s = f.span
        level = _LEVELS[f.severity]
        entries.append(
            (
                (f.path, s.line, s.column, f.code),
                _command(
                    level,
                    f.code,
                    f.path,
                    s.line,
                    s.column + 1,
                    s.end_line,
                    s.end_column + 1,
                    f.message,
                ),
            )
        )
    for e in result.errors:
        entries.append(
            (
                (e.path, e.line, e.column, E999),
                _command(
                    "error", E999, e.path, e.line, e.column + 1, e.line, e.column + 1, e.message
                ),
            )
        )
    for _, line in sorted(entries, key=lambda x: x[0]):
        out.write(line)
