"""``# noqa`` suppressions: reading them, applying them, and the edit that adds one.

A finding is suppressed by a ``# noqa`` comment on its reported line (the first line
of its range): a bare ``# noqa`` suppresses everything on the line, ``# noqa: AMZ001,
AMZ002`` only the listed codes (separated by commas and/or spaces, like ruff).
Comments are found with the tokenizer, so ``"# noqa"`` inside a string does not count.

A comment line ``# amorsize: noqa`` anywhere in a file exempts the whole file, and
``# amorsize: noqa: AMZ003`` exempts it from the listed codes (ruff's ``# ruff: noqa``).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from amorsize_lsp.analysis.model import Span, TextEdit

from .model import Finding

_CODE = r"[A-Za-z]+[0-9]+"
NOQA_RE = re.compile(
    rf"#\s*(?P<noqa>noqa)(?::\s*(?P<codes>{_CODE}(?:(?:\s*,\s*|\s+){_CODE})*))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Directive:
    """A ``# noqa`` comment on one line."""

    line: int
    #: Column range of the directive text (from the hash to the last code) in the line.
    column: int
    end_column: int
    #: Suppressed codes (upper case), or None for a bare directive (suppresses all).
    codes: frozenset[str] | None

    def suppresses(self, code: str) -> bool:
        return self.codes is None or code.upper() in self.codes


@dataclass(slots=True)
class _Scan:
    comments: list[tuple[int, int, str]]
    #: Lines whose end is inside a multi-line token or a backslash continuation.
    unsafe_ends: set[int]


def _scan(source: str) -> _Scan:
    comments: list[tuple[int, int, str]] = []
    unsafe: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments.append((tok.start[0], tok.start[1], tok.string))
            elif tok.start[0] < tok.end[0] and tok.type not in (tokenize.NEWLINE, tokenize.NL):
                unsafe.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError):
        # Fall back to a textual scan; good enough for a file that does not tokenize.
        comments = []
        for number, line in enumerate(source.split("\n"), start=1):
            hash_at = line.find("#")
            if hash_at != -1:
                comments.append((number, hash_at, line[hash_at:]))
    for number, line in enumerate(source.split("\n"), start=1):
        if line.rstrip("\r").endswith("\\"):
            unsafe.add(number)
    return _Scan(comments, unsafe)


def _directive(line: int, column: int, comment: str) -> Directive | None:
    match = NOQA_RE.search(comment)
    if match is None:
        return None
    codes = _codes(match.group("codes"))
    return Directive(line, column + match.start(), column + match.end(), codes)


FILE_NOQA_RE = re.compile(
    rf"^#\s*amorsize\s*:\s*noqa(?::\s*(?P<codes>{_CODE}(?:(?:\s*,\s*|\s+){_CODE})*))?\s*$",
    re.IGNORECASE,
)


def _codes(text: str | None) -> frozenset[str] | None:
    return frozenset(c.upper() for c in re.split(r"[\s,]+", text) if c) if text else None


def file_exemption(source: str) -> Directive | None:
    """The file-wide ``# amorsize: noqa[: CODES]`` directive, if any (codes merged)."""
    if "amorsize" not in source.lower():
        return None
    lines = source.split("\n")
    codes: set[str] = set()
    found: Directive | None = None
    for line, column, comment in _scan(source).comments:
        if lines[line - 1][:column].strip():
            continue  # only a comment on its own line counts
        match = FILE_NOQA_RE.match(comment.strip())
        if match is None:
            continue
        parsed = _codes(match.group("codes"))
        if parsed is None:
            return Directive(line, column, column + len(comment), None)
        codes |= parsed
        found = Directive(line, column, column + len(comment), frozenset(codes))
    return found


def parse_noqa(source: str) -> dict[int, Directive]:
    """Every ``# noqa`` directive in ``source``, by line."""
    if "noqa" not in source.lower():
        return {}
    found: dict[int, Directive] = {}
    for line, column, comment in _scan(source).comments:
        directive = _directive(line, column, comment)
        if directive is not None:
            found[line] = directive
    return found


def filter_suppressed(
    findings: Iterable[Finding], source: str
) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (kept, suppressed by ``# noqa``)."""
    findings = list(findings)
    if not findings:
        return [], []
    directives = parse_noqa(source)
    exempt = file_exemption(source)
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for finding in findings:
        directive = directives.get(finding.line)
        hidden = (directive is not None and directive.suppresses(finding.code)) or (
            exempt is not None and exempt.suppresses(finding.code)
        )
        (suppressed if hidden else kept).append(finding)
    return kept, suppressed


def suppression_edit(source: str, line: int, code: str) -> TextEdit | None:
    """The edit that adds ``code`` to the ``# noqa`` of ``line``, or None if impossible.

    Merges into an existing ``# noqa: X`` comment; returns None when the line already
    suppresses the code, or when a comment cannot go at its end (the line ends inside
    a multi-line string or a backslash continuation).
    """
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return None
    scan = _scan(source)
    code = code.upper()
    for number, column, comment in scan.comments:
        if number != line:
            continue
        directive = _directive(number, column, comment)
        if directive is None:
            continue
        if directive.suppresses(code):
            return None
        codes = [*sorted(directive.codes or ()), code]
        span = Span(line, directive.column, line, directive.end_column)
        return TextEdit(span, f"# noqa: {', '.join(codes)}")
    if line in scan.unsafe_ends:
        return None
    text = lines[line - 1]
    end = len(text) - 1 if text.endswith("\r") else len(text)
    body = text[:end].rstrip()
    span = Span(line, len(body), line, end)
    return TextEdit(span, f"  # noqa: {code}")
