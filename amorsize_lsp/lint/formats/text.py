"""``text`` and ``concise``: ruff's concise lines, ``path:line:col: CODE message``.

``text`` adds ``[*]`` to findings that ``--fix`` would fix and a summary line;
``concise`` prints the bare lines only, for grep and editors' quickfix lists.
"""

from __future__ import annotations

from typing import TextIO

from .common import E999, OutputOptions, fix_available, hidden_unsafe

_BOLD, _RED, _CYAN, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[36m", "\x1b[0m"


def _paint(text: str, style: str, options: OutputOptions) -> str:
    return f"{style}{text}{_RESET}" if options.color else text


def _location(path: str, line: int, column: int, options: OutputOptions) -> str:
    colon = _paint(":", _CYAN, options)
    return f"{_paint(path, _BOLD, options)}{colon}{line}{colon}{column}{colon}"


def _lines(result, options: OutputOptions, marks: bool) -> list[tuple[tuple, str]]:
    entries: list[tuple[tuple, str]] = []
    for finding in result.findings:
        span = finding.span
        code = _paint(finding.code, _BOLD + _RED, options)
        mark = ""
        if marks and fix_available(finding, options):
            mark = _paint("[*]", _CYAN, options) + " "
        where = _location(finding.path, span.line, span.column + 1, options)
        entries.append(
            (
                (finding.path, span.line, span.column, finding.code),
                f"{where} {code} {mark}{finding.message}",
            )
        )
    for error in result.errors:
        code = _paint(E999, _BOLD + _RED, options)
        where = _location(error.path, error.line, error.column + 1, options)
        entries.append(
            ((error.path, error.line, error.column, E999), f"{where} {code} {error.message}")
        )
    entries.sort(key=lambda e: e[0])
    return entries


def write_concise(result, out: TextIO, options: OutputOptions) -> None:
    for _, line in _lines(result, options, marks=False):
        out.write(line + "\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def write_text(result, out: TextIO, options: OutputOptions) -> None:
    for _, line in _lines(result, options, marks=True):
        out.write(line + "\n")
    findings = result.findings
    remaining = len(findings) + len(result.errors)
    fixed = sum(result.fixed.values())
    if remaining == 0 and fixed == 0:
        out.write(_paint("All checks passed!", _BOLD, options) + "\n")
        return
    if options.fix_mode or fixed:
        total = remaining + fixed
        out.write(f"Found {_plural(total, 'problem')} ({fixed} fixed, {remaining} remaining).\n")
    else:
        out.write(f"Found {_plural(remaining, 'problem')}.\n")
    fixable = sum(1 for f in findings if fix_available(f, options))
    hidden = sum(1 for f in findings if hidden_unsafe(f, options))
    if not (fixable or hidden):
        return
    noun = "fix" if hidden == 1 else "fixes"
    hint = f"{hidden} unsafe {noun} available with `--fix --unsafe-fixes`"
    if options.fix_mode and not fixable:
        # Right after fixing, say what is left to do, not that nothing is fixable.
        verb = "has" if hidden == 1 else "have"
        which = "problem" if hidden == 1 else "problems"
        out.write(
            f"{hidden} remaining {which} {verb} an unsafe fix: apply with "
            "`--fix --unsafe-fixes` after review.\n"
        )
        return
    if fixable and hidden:
        out.write(f"{_paint('[*]', _CYAN, options)} {fixable} fixable with `--fix` ({hint}).\n")
    elif fixable:
        flag = "`--fix --unsafe-fixes`" if options.unsafe_fixes else "`--fix`"
        out.write(f"{_paint('[*]', _CYAN, options)} {fixable} fixable with {flag}.\n")
    else:
        out.write(f"No fixes available ({hint}).\n")
