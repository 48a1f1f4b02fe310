"""What one analysis of one document version produced, in a protocol-neutral form.

The analysis worker builds a :class:`Snapshot` from ``check_source``'s result (the
findings with their fix and suppression edits, each call site with its
recommendation and its "Apply recommended" edits, and the top-level statement
layout). The server keeps the last one per document, converts it to protocol
types on demand, and reuses it for edits that cannot change it (``incremental``).
Positions are the analysis's own: 1-based lines, 0-based code-point columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from amorsize_lsp.analysis.model import Span, TextEdit


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding, or a file-level error (code ``E999``)."""

    code: str
    name: str
    message: str
    severity: str  # "error" | "warning" | "information"
    span: Span
    fix_title: str | None = None
    fix_safe: bool = False
    fix_edits: tuple[TextEdit, ...] = ()
    suppress: TextEdit | None = None
    #: Other places the finding is about (the pool a call creates), with a message.
    related: tuple[tuple[Span, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Site:
    """One call site: where it is, its JSON (for the daemon), what is advised."""

    span: Span
    callsite: dict[str, Any]
    rec: dict[str, Any] | None = None
    apply_title: str | None = None
    apply_edits: tuple[TextEdit, ...] = ()


@dataclass(frozen=True, slots=True)
class Block:
    """A top-level statement's line range (gap lines after it included) and its role."""

    first: int
    last: int
    #: Parsed by libcst ("full"), bound as a stub ("stub"), or not read at all ("").
    mode: str
    binds: frozenset[str]


@dataclass(slots=True)
class Snapshot:
    """The analysis of one text; ``errors`` are file-level (E999) issues."""

    text: str
    issues: list[Issue] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    #: Names bound by the statements the analysis reads (see ``worker.layout``).
    tainted: frozenset[str] = frozenset()
    #: How this snapshot was made: "full", "incremental", "carried" (syntax error).
    how: str = "full"
    #: Where advice came from for this analysis: "daemon", "store" or "none".
    advice: str = "none"

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class Patch:
    """How the worker's partial re-check changed the snapshot of the text the server
    sent as ``previous`` (see ``recheck``): a few kilobytes instead of the snapshot.

    The edit replaced lines inside block ``index`` and changed the line count by
    ``delta``; the issues of rules ``codes`` at ``spans`` (new positions) give way
    to ``issues``, and the sites at those spans to ``sites``.
    """

    index: int
    delta: int
    codes: frozenset[str]
    spans: frozenset[Span]
    issues: tuple[Issue, ...]
    sites: tuple[Site, ...]


def shift_span(span: Span, delta: int) -> Span:
    return Span(span.line + delta, span.column, span.end_line + delta, span.end_column)


def _shift_edit(edit: TextEdit, delta: int) -> TextEdit:
    return TextEdit(shift_span(edit.span, delta), edit.new_text)


def shift_issue(issue: Issue, delta: int) -> Issue:
    if not delta:
        return issue
    return replace(
        issue,
        span=shift_span(issue.span, delta),
        fix_edits=tuple(_shift_edit(e, delta) for e in issue.fix_edits),
        suppress=_shift_edit(issue.suppress, delta) if issue.suppress else None,
        related=tuple((shift_span(span, delta), text) for span, text in issue.related),
    )


def shift_site(site: Site, delta: int) -> Site:
    if not delta:
        return site
    callsite = dict(site.callsite)
    for key in ("line", "end_line"):
        if isinstance(callsite.get(key), int):
            callsite[key] += delta
    return replace(
        site,
        span=shift_span(site.span, delta),
        callsite=callsite,
        apply_edits=tuple(_shift_edit(e, delta) for e in site.apply_edits),
    )


def _lines(span: Span, edits: tuple[TextEdit, ...]) -> tuple[int, int]:
    lines = [span.line, span.end_line, *(n for e in edits for n in (e.span.line, e.span.end_line))]
    return min(lines), max(lines)


def carry(old: Snapshot, lo: int, hi: int, delta: int) -> tuple[list[Issue], list[Site]]:
    """``old``'s issues and sites that lie wholly outside old lines ``lo..hi``, moved
    by ``delta`` when below them: what an edit of those lines cannot have moved."""
    issues: list[Issue] = []
    for issue in old.issues:
        extra = (issue.suppress,) if issue.suppress else ()
        extra += tuple(TextEdit(span, "") for span, _ in issue.related)
        first, last = _lines(issue.span, (*issue.fix_edits, *extra))
        if last < lo:
            issues.append(issue)
        elif first > hi:
            issues.append(shift_issue(issue, delta))
    sites: list[Site] = []
    for site in old.sites:
        first, last = _lines(site.span, site.apply_edits)
        if last < lo:
            sites.append(site)
        elif first > hi:
            sites.append(shift_site(site, delta))
    return issues, sites
