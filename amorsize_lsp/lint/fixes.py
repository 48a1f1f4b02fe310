"""Writing fixes back: ``--fix`` writes, ``--diff`` shows, ``--add-noqa`` suppresses.

Nothing is written unless the new text parses with libcst; files are replaced
atomically, keeping their encoding, line endings and permissions.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TextIO

from amorsize_lsp.analysis.model import apply_edits
from amorsize_lsp.rules.noqa import suppression_edit


def source_parses(text: str) -> bool:
    """Whether ``text`` parses (libcst loads only when there is something to write)."""
    from amorsize_lsp.analysis.edits import source_parses as parses

    return parses(text)


def write_text_atomically(path: Path, text: str, encoding: str) -> None:
    data = text.encode(encoding)
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_fixes(result, encodings: dict[str, str]) -> list[str]:
    """Write every fixed file; returns problems (each a full message) for stderr."""
    problems: list[str] = []
    for report in result.reports:
        if report.fixed_text is None:
            continue
        if not source_parses(report.fixed_text):
            problems.append(f"{report.path}: fixes not written: the fixed file would not parse")
            continue
        try:
            write_text_atomically(
                Path(report.path), report.fixed_text, encodings.get(report.path, "utf-8")
            )
        except OSError as exc:
            problems.append(f"{report.path}: cannot write fixes: {exc.strerror or exc}")
            report.findings = []  # nothing was changed; do not claim fixes
            report.fixed.clear()
    return problems


def render_diff(result, out: TextIO) -> bool:
    """Print a unified diff of every file that fixes would change; True if any."""
    changed = False
    for report in result.reports:
        if report.fixed_text is None or report.original is None:
            continue
        changed = True
        out.writelines(
            difflib.unified_diff(
                report.original.splitlines(keepends=True),
                report.fixed_text.splitlines(keepends=True),
                fromfile=report.path,
                tofile=report.path,
            )
        )
        out.write("\n")
    return changed


def add_noqa(result, encodings: dict[str, str]) -> tuple[int, list[str]]:
    """Add ``# noqa: CODE`` for every remaining finding; (directives added, problems)."""
    added = 0
    problems: list[str] = []
    for report in result.reports:
        if not report.findings:
            continue
        path = Path(report.path)
        encoding = encodings.get(report.path, "utf-8")
        try:
            text = path.read_bytes().decode(encoding)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{report.path}: cannot add noqa: {exc}")
            continue
        by_line: dict[int, list[str]] = defaultdict(list)
        for finding in report.findings:
            by_line[finding.line].append(finding.code)
        new_text = text
        count = 0
        for line in sorted(by_line, reverse=True):
            for code in sorted(set(by_line[line])):
                edit = suppression_edit(new_text, line, code)
                if edit is None:
                    problems.append(
                        f"{report.path}:{line}: cannot add `# noqa: {code}` (the line ends "
                        "inside a string or continues with a backslash)"
                    )
                    continue
                new_text = apply_edits(new_text, [edit])
                count += 1
        if new_text == text:
            continue
        if not source_parses(new_text):
            problems.append(f"{report.path}: noqa comments not added: the result would not parse")
            continue
        write_text_atomically(path, new_text, encoding)
        added += count
    return added, problems
