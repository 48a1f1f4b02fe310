"""Edits that cannot change the analysis: reuse the last snapshot, moved by line.

An edit confined to one top-level statement that the analysis never read (not
parsed, not even a stub) changes nothing it found, as long as the statement still
compiles on its own, binds the same names, and gains no pool text, ``noqa``
comment or name that pool code depends on. Then the new snapshot is the old one
with everything below the statement moved by the change in line count: no worker
round trip, no re-analysis of the file. Anything else goes to the worker.

Also here: what a syntax error mid-edit keeps (:func:`carried`), and the line diff
both use.
"""

from __future__ import annotations

import ast
import re

from amorsize_lsp.analysis.model import Span
from amorsize_lsp.analysis.statements import POOL_ONLY_CALL, split_statements
from amorsize_lsp.lsp.snapshot import Block, Issue, Snapshot, carry

#: Text that may make a statement pool code (``.map`` too: it may be on a pool).
POOL_TEXT = re.compile(rf"Pool|get_context|{POOL_ONLY_CALL}|\.\s*(?:\\\s*)*map\b")
_NOQA = re.compile(r"noqa", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as the analysis counts them (``\\r\\n``, ``\\r`` and ``\\n`` end a line)."""
    return _LINE_BREAK.split(text)


def changed_lines(old: list[str], new: list[str]) -> tuple[int, int, int]:
    """Old lines ``lo..hi`` (1-based; ``hi < lo`` for a pure insertion) were replaced,
    and the line count changed by ``delta``."""
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    q = 0
    while q < n - p and old[-1 - q] == new[-1 - q]:
        q += 1
    return p + 1, len(old) - q, len(new) - len(old)


def incremental(old: Snapshot, new_text: str) -> Snapshot | None:
    """The snapshot of ``new_text`` derived from ``old`` without analysis, or None."""
    if not old.ok or not old.blocks:
        return None
    old_lines, new_lines = split_lines(old.text), split_lines(new_text)
    lo, hi, delta = changed_lines(old_lines, new_lines)
    if hi < lo and delta == 0:  # identical text
        return Snapshot(
            new_text, list(old.issues), list(old.sites), [], old.blocks, old.tainted,
            "incremental", old.advice,
        )  # fmt: skip
    # A pure insertion between two statements may belong to the end of the first one.
    candidates = [
        i
        for i, b in enumerate(old.blocks)
        if (b.first <= lo <= b.last and hi <= b.last) or (hi < lo and b.last == lo - 1)
    ]
    index = next((i for i in candidates if not old.blocks[i].mode), None)
    if index is None:
        return None
    block = old.blocks[index]
    old_region = "\n".join(old_lines[block.first - 1 : block.last])
    new_region = "\n".join(new_lines[block.first - 1 : block.last + delta])
    for region in (old_region, new_region):
        if POOL_TEXT.search(region) or _NOQA.search(region):
            return None
    try:
        tree = ast.parse(new_region)
        compile(tree, "<statement>", "exec", dont_inherit=True)
        groups = split_statements(new_region + "\n", tree)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(groups) != 1 or groups[0].binds != block.binds or groups[0].first_line != 1:
        return None
    if frozenset(_WORD.findall(new_region)) & old.tainted:
        return None
    issues, sites = carry(old, block.first, block.last, delta)
    if len(issues) != len(old.issues) or len(sites) != len(old.sites):
        return None  # something lay inside the statement after all
    blocks = [
        *old.blocks[:index],
        Block(block.first, block.last + delta, block.mode, block.binds),
        *(Block(b.first + delta, b.last + delta, b.mode, b.binds) for b in old.blocks[index + 1 :]),
    ]
    return Snapshot(new_text, issues, sites, [], blocks, old.tainted, "incremental", old.advice)


def syntax_error(text: str) -> Issue | None:
    """CPython's verdict on ``text`` as an E999 issue, or None when it parses.

    The analysis worker runs this before libcst ever sees the text, so a file that
    CPython rejects never reaches the native parser (where a crash or a hang could
    hide) and a syntax error costs one ``ast.parse``.
    """
    try:
        ast.parse(text)
    except SyntaxError as exc:
        line = max(exc.lineno or 1, 1)
        column = max((exc.offset or 1) - 1, 0)
        span = Span(line, column, line, column + 1)
        return Issue("E999", "syntax-error", f"syntax error: {exc.msg}", "error", span)
    except (ValueError, MemoryError, RecursionError):
        return None  # the analysis reports these precisely
    return None


def carried(last_good: Snapshot | None, new_text: str, error: Issue) -> Snapshot:
    """A syntax error mid-edit: the error, plus the last good results on unchanged lines."""
    snap = Snapshot(new_text, errors=[error], how="carried")
    if last_good is not None and last_good.ok:
        lo, hi, delta = changed_lines(split_lines(last_good.text), split_lines(new_text))
        snap.issues, snap.sites = carry(last_good, lo, hi, delta)
        snap.advice = last_good.advice
    return snap
