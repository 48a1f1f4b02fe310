"""Loops in a code object: back edges whose target dominates them, and their nesting."""

from __future__ import annotations

import bisect
import dis
import types
from collections.abc import Collection

from .opcodes import AWAIT_MACHINERY, JUMP_OPS, NOT_LOOPS, TERMINAL, UNCONDITIONAL, source_line


def find_loops(
    code: types.CodeType, ins: list[dis.Instruction], lines: list[str]
) -> list[set[int]]:
    """The function's loops, each as the set of instruction indices in its body.

    A backward jump closes a loop only if its target dominates it: every path from
    the entry to the jump passes the target. (3.12 places ``with`` and ``except``
    exits at the end of the function and jumps back to the normal path; those are
    not loops.) The body is the natural loop: the head plus what reaches the jump
    without passing the head. Jumps with
    the same head are one loop. A ``continue`` jump is a back edge of the loop it is
    in, not a loop of its own; in the control-flow graph of a ``while`` it looks like
    an enclosing loop, so it makes a loop only when no other loop holds it (a retry
    loop whose only way round is ``continue`` in an ``except``).
    """
    back = [
        (head, jump)
        for jump, instr in enumerate(ins)
        if _is_backward_jump(instr)
        and (head := _index_of(ins, instr.argval)) is not None
        and ins[head].opname not in AWAIT_MACHINERY
    ]
    if not back:
        return []
    succ = _successors(code, ins)
    pred: list[list[int]] = [[] for _ in ins]
    for node, targets in enumerate(succ):
        for t in targets:
            pred[t].append(node)
    reach_cache: dict[int, set[int]] = {}
    bypass: dict[int, set[int]] = {}
    loops: dict[int, set[int]] = {}
    continues: list[tuple[int, int]] = []
    for head, jump in back:
        if head not in reach_cache:
            reach_cache[head] = _reach(head, succ)
            bypass[head] = _reach(0, succ, stop={head})
        if jump != head and jump in bypass[head]:
            continue  # the head does not dominate the jump: no loop goes round here
        if _is_continue(code, ins, jump, lines):
            continues.append((head, jump))
        else:
            loops.setdefault(head, {head}).update(_reach(jump, pred, stop={head}))
    back_jumps = {jump for _, jump in back}
    for head, jump in continues:
        # The loop it continues is one whose head the target reaches without going
        # round another loop first: a ``for`` head itself, a ``while`` body via its test.
        straight = _reach(head, succ, stop=back_jumps)
        if not any(h in straight and jump in reach_cache[h] for h in loops):
            loops.setdefault(head, {head}).update(_reach(jump, pred, stop={head}))
    # ``finally`` bodies (and, from 3.12, ``while`` tests) are compiled twice; a loop
    # inside one appears twice with the same line and the same instructions.
    unique: dict[tuple[object, ...], set[int]] = {}
    for head, body in loops.items():
        key = (_line_of(code, ins, head), *(ins[n].opname for n in sorted(body)))
        unique.setdefault(key, body)
    return list(unique.values())


def _is_continue(
    code: types.CodeType, ins: list[dis.Instruction], index: int, lines: list[str]
) -> bool:
    """Whether the jump at ``index`` was compiled from a ``continue`` statement."""
    instr = ins[index]
    positions = getattr(instr, "positions", None)
    if positions is not None and positions.lineno is not None:  # 3.11+: exact columns
        if positions.col_offset is None or positions.end_lineno != positions.lineno:
            return False
        line = source_line(lines, positions.lineno).encode("utf-8")
        return line[positions.col_offset : positions.end_col_offset] == b"continue"
    lineno = _line_of(code, ins, index)  # 3.10: the line only
    if not isinstance(lineno, int):
        return False
    words = source_line(lines, lineno).split("#", 1)[0].replace(":", " ").replace(";", " ").split()
    return "continue" in words


def _line_of(code: types.CodeType, ins: list[dis.Instruction], index: int) -> object:
    """Where instruction ``index`` came from: (line, column) on 3.11+, the line on 3.10."""
    positions = getattr(ins[index], "positions", None)
    if positions is not None:
        return positions.lineno, positions.col_offset
    lineno = None
    for offset, line_start in dis.findlinestarts(code):
        if offset > ins[index].offset:
            break
        lineno = line_start
    return lineno


def _index_of(ins: list[dis.Instruction], offset: int) -> int | None:
    pos = bisect.bisect_left(ins, offset, key=lambda i: i.offset) if ins else 0
    return pos if pos < len(ins) and ins[pos].offset == offset else None


def _successors(code: types.CodeType, ins: list[dis.Instruction]) -> list[list[int]]:
    """Control-flow edges between instruction indices, exception edges included."""
    succ: list[list[int]] = [[] for _ in ins]
    for n, instr in enumerate(ins):
        falls_through = instr.opname not in UNCONDITIONAL and instr.opname not in TERMINAL
        if falls_through and n + 1 < len(ins):
            succ[n].append(n + 1)
        if instr.opcode in JUMP_OPS and isinstance(instr.argval, int):
            target = _index_of(ins, instr.argval)
            if target is not None:
                succ[n].append(target)
    for entry in getattr(dis.Bytecode(code), "exception_entries", ()):  # 3.11+
        target = _index_of(ins, entry.target)
        if target is None:
            continue
        first = bisect.bisect_left(ins, entry.start, key=lambda i: i.offset)
        last = bisect.bisect_left(ins, entry.end, key=lambda i: i.offset)
        for n in range(first, last):
            succ[n].append(target)
    return succ


def _reach(start: int, edges: list[list[int]], stop: Collection[int] = ()) -> set[int]:
    """Nodes reachable from ``start`` along ``edges``, not going on from ``stop`` nodes."""
    seen = {start}
    todo = [start] if start not in stop else []
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                if nxt not in stop:
                    todo.append(nxt)
    return seen


def _is_backward_jump(instr: dis.Instruction) -> bool:
    """A jump to an earlier offset (or to itself: ``while True: pass``)."""
    return (
        instr.opcode in JUMP_OPS
        and instr.opname not in NOT_LOOPS
        and isinstance(instr.argval, int)
        and instr.argval <= instr.offset
    )


def max_depth(loops: list[set[int]]) -> int:
    """Deepest nesting: how many loop bodies hold some instruction at once."""
    counts: dict[int, int] = {}
    for body in loops:
        for n in body:
            counts[n] = counts.get(n, 0) + 1
    return max(counts.values(), default=0)
