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
from dataclasses import dataclass

from amorsize_lsp.analysis.statements import POOL_ONLY_CALL, split_statements
from amorsize_lsp.lsp.snapshot import Block, Issue, Patch, Snapshot, carry

#: Text that may make a statement pool code (``.map`` too: it may be on a pool).
POOL_TEXT = re.compile(rf"Pool|get_context|{POOL_ONLY_CALL}|\.\s*(?:\\\s*)*map\b")
_NOQA = re.compile(r"noqa", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


#: The last few texts (by identity) and their lines: on one keystroke the reuse check,
#: the diagnostics and the inlay hints all ask for the lines of the same text.
_recent: list[tuple[str, list[str]]] = []


def split_lines(text: str) -> list[str]:
    r"""Lines as the analysis counts them (``\r\n``, ``\r`` and ``\n`` end a line).

    Do not modify the list: it is shared.
    """
    for seen, lines in _recent:
        if seen is text:
            return lines
    lines = _LINE_BREAK.split(text)
    _recent.insert(0, (text, lines))
    del _recent[4:]
    return lines


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


@dataclass(frozen=True)
class Confined:
    """An edit confined to one top-level statement that keeps its role (see
    :func:`confined_edit`): which block, the change in line count, and its new text."""

    index: int
    block: Block
    delta: int
    #: The statement's new text, and its lines as the whole new text numbers them.
    region: str
    tree: ast.Module


def confined_edit(old: Snapshot, new_text: str, modes: tuple[str, ...]) -> Confined | None:
    """The edit from ``old.text`` to ``new_text`` when it lies inside one top-level
    statement whose block mode is in ``modes`` and cannot change what the analysis
    makes of the rest: the statement still compiles on its own, binds the same names,
    and gains no pool text, ``noqa`` comment or new use of a name the analysis reads.
    None otherwise (the caller re-checks the file)."""
    if not old.ok or not old.blocks:
        return None
    old_lines, new_lines = split_lines(old.text), split_lines(new_text)
    lo, hi, delta = changed_lines(old_lines, new_lines)
    # A pure insertion between two statements may belong to the end of the first one.
    candidates = [
        i
        for i, b in enumerate(old.blocks)
        if (b.first <= lo <= b.last and hi <= b.last) or (hi < lo and b.last == lo - 1)
    ]
    index = next((i for i in candidates if old.blocks[i].mode in modes), None)
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
    if (set(_WORD.findall(new_region)) - set(_WORD.findall(old_region))) & old.tainted:
        return None  # a new use of a name the analysis reads
    return Confined(index, block, delta, new_region, tree)


def moved_blocks(old: Snapshot, index: int, delta: int) -> list[Block]:
    """``old``'s blocks with block ``index`` resized and those below it moved."""
    block = old.blocks[index]
    return [
        *old.blocks[:index],
        Block(block.first, block.last + delta, block.mode, block.binds),
        *(Block(b.first + delta, b.last + delta, b.mode, b.binds) for b in old.blocks[index + 1 :]),
    ]


def apply_patch(base: Snapshot, text: str, patch: Patch) -> Snapshot | None:
    """The snapshot of ``text``: ``base`` (of the text before the edit) with the
    worker's :class:`Patch` applied, or None when it does not fit ``base``."""
    if not base.ok or not 0 <= patch.index < len(base.blocks):
        return None
    block = base.blocks[patch.index]
    issues, sites = carry(base, block.first, block.last, patch.delta)
    if len(issues) != len(base.issues) or len(sites) != len(base.sites):
        return None
    kept = [i for i in issues if not (i.code in patch.codes and i.span in patch.spans)]
    fresh = {s.span: s for s in patch.sites}
    return Snapshot(
        text,
        sorted([*kept, *patch.issues], key=lambda i: (i.span.line, i.span.column, i.code)),
        [fresh.get(s.span, s) for s in sites],
        [],
        moved_blocks(base, patch.index, patch.delta),
        base.tainted,
        "partial",
        base.advice,
    )


def incremental(old: Snapshot, new_text: str) -> Snapshot | None:
    """The snapshot of ``new_text`` derived from ``old`` without analysis, or None."""
    if old.ok and old.blocks and old.text == new_text:
        return Snapshot(
            new_text, list(old.issues), list(old.sites), [], old.blocks, old.tainted,
            "incremental", old.advice,
        )  # fmt: skip
    edit = confined_edit(old, new_text, ("",))
    if edit is None:
        return None
    issues, sites = carry(old, edit.block.first, edit.block.last, edit.delta)
    if len(issues) != len(old.issues) or len(sites) != len(old.sites):
        return None  # something lay inside the statement after all
    blocks = moved_blocks(old, edit.index, edit.delta)
    return Snapshot(new_text, issues, sites, [], blocks, old.tainted, "incremental", old.advice)


def carried(last_good: Snapshot | None, new_text: str, error: Issue) -> Snapshot:
    """A syntax error mid-edit: the error, plus the last good results on unchanged lines."""
    snap = Snapshot(new_text, errors=[error], how="carried")
    if last_good is not None and last_good.ok:
        lo, hi, delta = changed_lines(split_lines(last_good.text), split_lines(new_text))
        snap.issues, snap.sites = carry(last_good, lo, hi, delta)
        snap.advice = last_good.advice
    return snap
