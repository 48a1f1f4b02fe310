"""Edits inside a function that call sites map: re-measure it, re-run the per-site rules.

The analysis reads a mapped function only for its bytecode complexity: the module
binds it as a stub (its name and kind), and the function body decides nothing
else. So when an edit stays inside such a statement and keeps its role (see
``incremental.confined_edit``: no pool text, no ``noqa``, the same names bound, no
new use of a name the analysis reads, still no pass-through), the worker does not
re-check the file. It compiles that one statement, re-measures the function for the
call sites that map it, asks for their advice again, and re-runs only the rules
that read complexity or advice (``check.recheck_callsites``) for those sites; the
rest of the last snapshot is moved by line. The tests compare the result with a
full check of the same text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from amorsize_lsp.analysis.bytecode import complexity_for
from amorsize_lsp.analysis.model import CallSite, FunctionRef, Span
from amorsize_lsp.analysis.statements import stays_a_stub
from amorsize_lsp.check import CheckSettings, recheck_callsites, site_rule_codes
from amorsize_lsp.lsp.incremental import apply_patch, confined_edit, moved_blocks
from amorsize_lsp.lsp.snapshot import Issue, Patch, Site, Snapshot
from amorsize_lsp.lsp.worker import _Suppressions, issue_of, site_of


@dataclass
class Checked:
    """What the worker keeps of its last analysis of one document."""

    path: str
    settings: CheckSettings
    snapshot: Snapshot
    callsites: list[CallSite]
    #: The module's imports (local name -> dotted origin), for re-measuring one def.
    imports: dict[str, str]


def recheck(
    last: Checked, text: str, hook: Any, modes: tuple[str, ...] = ("", "stub")
) -> tuple[Checked, Patch] | None:
    """``last`` brought up to ``text`` by re-measuring one edited function, and the
    patch that does the same to the snapshot of ``last``; None when the edit is not
    of that kind (the caller then checks the whole file)."""
    old = last.snapshot
    edit = confined_edit(old, text, modes)
    if edit is None or (edit.block.mode == "stub" and not stays_a_stub(edit.tree.body)):
        return None
    block, delta = edit.block, edit.delta
    callsites = list(shifted(last.callsites, block.last, delta))
    statement = _alone(edit.region, block.first, last.imports)
    search_path = last.settings.search_path
    changed: list[CallSite] = []
    for i, site in enumerate(callsites):
        if not _maps(site.function, block.binds):
            continue
        cx = complexity_for(site.function, statement, search_path, last.imports)
        if cx != site.complexity:
            callsites[i] = dataclasses.replace(site, complexity=cx)
            changed.append(callsites[i])
    issues: tuple[Issue, ...] = ()
    sites: tuple[Site, ...] = ()
    codes: frozenset[str] = frozenset()
    if changed:
        blocks = moved_blocks(old, edit.index, delta)
        kept, _ = recheck_callsites(text, last.path, last.settings, changed, recommend=hook)
        codes = frozenset(site_rule_codes(last.settings.codes))
        suppress = _Suppressions(text, blocks)
        issues = tuple(issue_of(f, suppress) for f in kept)
        sites = tuple(site_of(text, c, hook) for c in changed)
    patch = Patch(edit.index, delta, codes, frozenset(c.span for c in changed), issues, sites)
    snap = apply_patch(old, text, patch)
    if snap is None:
        return None  # something lay inside the statement after all
    return Checked(last.path, last.settings, snap, callsites, last.imports), patch


def _alone(region: str, first: int, imports: dict[str, str]) -> str:
    """The statement as a module of its own that compiles to the same code objects.

    Blank lines above keep the file's line numbers. The module's imported names are
    bound by imports after it: CPython compiles ``time.sleep()`` differently when
    ``time`` comes from an import, and the code hash must not change with that.
    """
    names = "".join(f"; import _ as {name}" for name in sorted(imports) if name.isidentifier())
    return "\n" * (first - 1) + region + "\n" + ("pass" + names + "\n" if names else "")


def _maps(ref: FunctionRef | None, names: frozenset[str]) -> bool:
    """Whether the callable ``ref`` (or what it wraps) is defined by a statement
    binding ``names``."""
    while ref is not None:
        name = ref.qualname or ref.text
        if name and name.split(".", 1)[0] in names:
            return True
        ref = ref.wrapped
    return False


def shifted(obj: Any, after: int, delta: int) -> Any:
    """``obj`` with every :class:`Span` in it that starts below line ``after`` moved by
    ``delta`` lines (dataclasses are copied; shared ones stay shared)."""
    if not delta:
        return obj
    memo: dict[int, Any] = {}

    def move(value: Any) -> Any:
        if isinstance(value, Span):
            if value.line <= after:
                return value
            return Span(value.line + delta, value.column, value.end_line + delta, value.end_column)
        if isinstance(value, list):
            return [move(v) for v in value]
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        key = id(value)
        if key not in memo:
            changes = {}
            for f in dataclasses.fields(value):
                old = getattr(value, f.name)
                new = move(old)
                if new is not old:
                    changes[f.name] = new
            memo[key] = dataclasses.replace(value, **changes) if changes else value
        return memo[key]

    return move(obj)
