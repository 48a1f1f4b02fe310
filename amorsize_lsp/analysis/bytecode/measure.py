"""Walk a function's code tree and sum up its complexity figures."""

from __future__ import annotations

import dis
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from .blocking_io import attribute_chain, matches_exception, note_io
from .code_index import imports_in
from .codehash import code_hash
from .complexity import TOO_DEEP, Complexity
from .loops import find_loops, max_depth
from .opcodes import CALL_OPS, COMPREHENSIONS, NAME_LOADS, TRANSPARENT, code_instructions


@dataclass(slots=True)
class _Totals:
    """Running sums over a function's code tree, and what the walk needs to know."""

    name: str
    owner: str | None
    lines: list[str]
    size: int = 0
    instructions: int = 0
    loops: int = 0
    depth: int = 0
    calls: int = 0
    recursive: bool = False
    io: set[str] = field(default_factory=set)


def measure(
    code: types.CodeType, qualname: str, imports: Mapping[str, str], lines: list[str]
) -> Complexity:
    parts = qualname.split(".")
    owner = parts[-2] if len(parts) >= 2 and parts[-2] != "<locals>" else None
    totals = _Totals(name=parts[-1], owner=owner, lines=lines)
    try:
        _walk(code, 0, totals, dict(imports))
        digest = code_hash(code)
    except RecursionError:
        return Complexity.unresolved(TOO_DEEP)
    io = tuple(sorted(totals.io))
    return Complexity(
        resolved=True,
        bytecode_size=totals.size,
        instruction_count=totals.instructions,
        loop_count=totals.loops,
        max_loop_depth=totals.depth,
        call_count=totals.calls,
        recursive=totals.recursive,
        blocking_io=bool(io),
        io_calls=io,
        code_hash=digest,
    )


def _walk(
    code: types.CodeType,
    outer_depth: int,
    totals: _Totals,
    imports: dict[str, str],
) -> None:
    """Add one code object and, recursively, the code nested in it to ``totals``.

    Nested code starts at the loop depth of the place that creates it, so a generator
    expression inside a ``for`` counts as depth 2 on every Python version (3.12 inlines
    list comprehensions into the enclosing code, earlier versions do not).
    """
    ins = code_instructions(code)
    loops = find_loops(code, ins, totals.lines)
    totals.size += len(code.co_code)
    totals.instructions += len(ins)
    totals.loops += len(loops)
    totals.depth = max(totals.depth, outer_depth + max_depth(loops))
    own_imports = imports_in(ins, None)
    local_imports = {**imports, **own_imports}
    first_arg = code.co_varnames[0] if code.co_argcount and code.co_varnames else None
    pending_comprehensions = 0
    nested: dict[int, tuple[types.CodeType, int]] = {}  # id -> (code, deepest load site)
    prev = None
    for pos, instr in enumerate(ins):
        op = instr.opname
        if op in CALL_OPS:
            invokes = prev is not None and prev.opname in ("GET_ITER", "GET_AITER")
            if pending_comprehensions and invokes:
                pending_comprehensions -= 1  # invoking a comprehension is a loop, not a call
            else:
                totals.calls += 1
        elif isinstance(instr.argval, types.CodeType):
            if instr.argval.co_name in COMPREHENSIONS:
                pending_comprehensions += 1
            depth_here = outer_depth + sum(1 for body in loops if pos in body)
            seen = nested.get(id(instr.argval))
            nested[id(instr.argval)] = (instr.argval, max(depth_here, seen[1] if seen else 0))
        elif op in NAME_LOADS or (op.startswith("LOAD_FAST") and isinstance(instr.argval, str)):
            chain = attribute_chain(ins, pos)
            variable = op.startswith("LOAD_FAST") or (
                op == "LOAD_DEREF" and chain[0] not in local_imports
            )
            if not matches_exception(ins, pos):
                scope = own_imports if op.startswith("LOAD_FAST") else local_imports
                note_io(chain, scope, variable, totals.io)
            if not totals.recursive:
                totals.recursive = _is_self_call(ins, pos, chain, totals, first_arg)
        if op not in TRANSPARENT:
            prev = instr
    for const in code.co_consts:  # code objects the instruction stream never loaded
        if isinstance(const, types.CodeType):
            nested.setdefault(id(const), (const, outer_depth))
    # Each nested code object once, even where the compiler duplicated its creation.
    for sub, depth in nested.values():
        _walk(sub, depth, totals, local_imports)


def _is_self_call(
    ins: list[dis.Instruction],
    pos: int,
    chain: list[str],
    totals: _Totals,
    first_arg: str | None,
) -> bool:
    """Whether the load at ``pos`` fetches the function itself and then calls it.

    A heuristic: ``f(...)`` via a global or closure cell, or ``self.f(...)`` /
    ``cls.f(...)`` / ``Owner.f(...)`` for methods, with a call before the value is
    stored, returned or discarded.
    """
    op = ins[pos].opname
    name, owner = totals.name, totals.owner
    if owner is None:
        hit = len(chain) == 1 and chain[0] == name and not op.startswith("LOAD_FAST")
        skip = 0
    else:
        receivers = {"self", "cls", owner, *([first_arg] if first_arg else [])}
        hit = len(chain) == 2 and chain[0] in receivers and chain[1] == name
        skip = 1
    if not hit:
        return False
    seen = 0
    for instr in ins[pos + 1 :]:
        if instr.opname in TRANSPARENT:
            continue
        if seen < skip:
            seen += 1
            continue
        if instr.opname in CALL_OPS:
            return True
        if instr.opname.startswith(("STORE_", "RETURN_", "DELETE_", "POP_")):
            return False
    return False
