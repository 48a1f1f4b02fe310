"""How much work a mapped function does, read from its compiled bytecode.

The module source is compiled with ``compile()`` and never executed. The cost model
uses the figures to guess per-item cost before anything is sampled, and the code
hash keys measurements, so a changed constant (``x*2`` -> ``x*3``) invalidates them.

Only ``dis`` APIs and opcode *names* are used, never opcode numbers, so the analysis
works on every CPython from 3.10 on (3.11 split ``CALL``, 3.12 inlined comprehensions,
3.13 added ``CALL_KW``). A loop is a backward jump (its target offset precedes it)
whose target dominates it in the control-flow graph; see ``_loops``.
"""

from __future__ import annotations

import bisect
import dis
import hashlib
import importlib.util
import os
import types
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from amorsize_lsp.analysis.model import FunctionKind, FunctionRef

__all__ = ["Complexity", "code_hash", "complexity_for", "function_complexity"]

#: Length of the hex code-hash prefix we report (64 bits: collisions are negligible).
CODE_HASH_LENGTH = 16
#: Workspace modules larger than this are not read for an imported function.
MAX_MODULE_BYTES = 5_000_000
_TOO_DEEP = "code nests too deeply to analyse (hundreds of nested functions or lambdas)"
#: How many re-exports (``from .impl import f`` in ``__init__.py``) we follow.
MAX_REEXPORT_DEPTH = 4

_CALL_OPS = frozenset(
    {"CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD"}
)
#: Instructions that neither start nor end an expression we follow.
_TRANSPARENT = frozenset({"CACHE", "PRECALL", "PUSH_NULL", "EXTENDED_ARG", "NOP", "KW_NAMES"})
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_NAME_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_EXCEPTION_MATCH = frozenset(
    {"CHECK_EXC_MATCH", "JUMP_IF_NOT_EXC_MATCH", "CHECK_EG_MATCH", "JUMP_IF_NOT_EG_MATCH"}
)
_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
#: ``await`` / ``yield from`` loops: backward jumps that are not user loops.
_NOT_LOOPS = frozenset({"JUMP_BACKWARD_NO_INTERRUPT"})
#: 3.12 jumps back from ``CLEANUP_THROW`` to ``END_SEND`` when an ``await`` is thrown into.
_AWAIT_MACHINERY = frozenset({"END_SEND"})
_UNCONDITIONAL = frozenset(
    {
        "JUMP",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_ABSOLUTE",
        "JUMP_NO_INTERRUPT",
        "JUMP_BACKWARD_NO_INTERRUPT",
    }
)
_TERMINAL = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE"})
_JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))

#: Modules whose every use blocks on the network, a child process or a device.
_IO_MODULES = frozenset(
    {
        "socket",
        "ssl",
        "select",
        "selectors",
        "requests",
        "httpx",
        "urllib",
        "urllib3",
        "http",
        "subprocess",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "telnetlib",
        "sqlite3",
        "psycopg2",
        "pymysql",
        "boto3",
    }
)
#: Individual blocking callables, by canonical dotted name.
_IO_FUNCTIONS = frozenset(
    {
        "open",
        "input",
        "sleep",
        "urlopen",
        "time.sleep",
        "os.system",
        "os.popen",
        "os.open",
        "os.read",
        "os.write",
        "os.wait",
        "os.waitpid",
        "os.fsync",
        "io.open",
        "codecs.open",
        "gzip.open",
        "bz2.open",
        "lzma.open",
        "tarfile.open",
        "zipfile.ZipFile",
        "shutil.copy",
        "shutil.copy2",
        "shutil.copyfile",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "builtins.open",
        "builtins.input",
    }
)
#: Blocking methods recognised on any receiver (``pathlib.Path`` file access).
_IO_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes"})


@dataclass(frozen=True, slots=True)
class Complexity:
    """Static cost indicators of one function, nested code included.

    ``resolved`` is False (and every figure zero) when there is no Python bytecode
    to read; ``reason`` then says why, in words fit to show the user.
    """

    resolved: bool
    reason: str | None = None
    bytecode_size: int = 0
    instruction_count: int = 0
    loop_count: int = 0
    max_loop_depth: int = 0
    call_count: int = 0
    recursive: bool = False
    blocking_io: bool = False
    io_calls: tuple[str, ...] = ()
    code_hash: str | None = None

    @classmethod
    def unresolved(cls, reason: str) -> Complexity:
        """The zero complexity, with the reason there is nothing to measure."""
        return cls(resolved=False, reason=reason)

    def to_json(self) -> dict[str, Any]:
        """The ``complexity`` object of the call-site dump."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["io_calls"] = list(self.io_calls)
        return out


# --------------------------------------------------------------------------- compile


@dataclass(slots=True)
class _ModuleIndex:
    """One compiled module: its code objects by qualname, lambdas, and imports."""

    code: types.CodeType | None
    error: str | None
    by_qualname: dict[str, types.CodeType] = field(default_factory=dict)
    #: Qualnames with the ``<locals>`` markers removed (``outer.inner``).
    by_short_name: dict[str, str] = field(default_factory=dict)
    lambdas: list[types.CodeType] = field(default_factory=list)
    imports: dict[str, str] = field(default_factory=dict)
    #: Source lines as the compiler numbers them (``\n``, ``\r\n`` or ``\r`` end a line).
    lines: list[str] = field(default_factory=list)


@lru_cache(maxsize=128)
def _index(source: str, package: str | None = None) -> _ModuleIndex:
    """Compile ``source`` once per distinct text; many call sites share a module."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(source, "<analysed module>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return _ModuleIndex(None, f"syntax error{where}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return _ModuleIndex(None, f"module does not compile: {exc}")
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    index = _ModuleIndex(code, None, imports=_imports_in(_instructions(code), package), lines=lines)
    try:
        for qualname, sub in _code_objects(code):
            index.by_qualname[qualname] = sub  # a later definition replaces an earlier one
            index.by_short_name.setdefault(qualname.replace("<locals>.", ""), qualname)
            if sub.co_name == "<lambda>":
                index.lambdas.append(sub)
    except RecursionError:
        return _ModuleIndex(None, _TOO_DEEP)
    return index


def _code_objects(code: types.CodeType, prefix: str = "") -> Iterator[tuple[str, types.CodeType]]:
    """Every nested code object with its qualname, in source order.

    ``co_qualname`` exists from 3.11; on 3.10 the name is composed the same way:
    ``outer.<locals>.inner`` below a function, ``Class.method`` below a class body.
    """
    for const in code.co_consts:
        if not isinstance(const, types.CodeType):
            continue
        qualname = getattr(const, "co_qualname", None) or prefix + const.co_name
        yield qualname, const
        below_function = const.co_flags & _CO_OPTIMIZED
        yield from _code_objects(const, qualname + (".<locals>." if below_function else "."))


_CO_OPTIMIZED = next(k for k, v in dis.COMPILER_FLAG_NAMES.items() if v == "OPTIMIZED")


def _instructions(code: types.CodeType) -> list[dis.Instruction]:
    return [i for i in dis.get_instructions(code) if i.opname != "CACHE"]


def _imports_in(instructions: list[dis.Instruction], package: str | None) -> dict[str, str]:
    """Names bound by ``import`` statements in one code object -> dotted origin."""
    out: dict[str, str] = {}
    ins = [i for i in instructions if i.opname not in _TRANSPARENT]
    for pos, instr in enumerate(ins):
        if instr.opname != "IMPORT_NAME":
            continue
        level = ins[pos - 2].argval if pos >= 2 else 0
        fromlist = ins[pos - 1].argval if pos >= 1 else None
        base = _absolute(str(instr.argval), level if isinstance(level, int) else 0, package)
        nxt = pos + 1
        if nxt < len(ins) and ins[nxt].opname.startswith("STORE_") and fromlist is None:
            name = str(ins[nxt].argval)
            out[name] = name if base == name or base.startswith(name + ".") else base
            continue
        while nxt < len(ins) and ins[nxt].opname == "IMPORT_FROM":
            origin = f"{base}.{ins[nxt].argval}" if base else str(ins[nxt].argval)
            nxt += 1
            while nxt < len(ins) and ins[nxt].opname in ("ROT_TWO", "SWAP", "POP_TOP"):
                nxt += 1
            if nxt < len(ins) and ins[nxt].opname.startswith("STORE_"):
                out[str(ins[nxt].argval)] = origin
                nxt += 1
    return out


def _absolute(name: str, level: int, package: str | None) -> str:
    """Resolve a relative import against the importing module's package."""
    if level <= 0:
        return name
    if package is None:
        return "." * level + name
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return "." * level + name
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


# --------------------------------------------------------------------------- measure


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


def _measure(
    code: types.CodeType, qualname: str, imports: Mapping[str, str], lines: list[str]
) -> Complexity:
    parts = qualname.split(".")
    owner = parts[-2] if len(parts) >= 2 and parts[-2] != "<locals>" else None
    totals = _Totals(name=parts[-1], owner=owner, lines=lines)
    try:
        _walk(code, 0, totals, dict(imports))
        digest = code_hash(code)
    except RecursionError:
        return Complexity.unresolved(_TOO_DEEP)
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
    ins = _instructions(code)
    loops = _loops(code, ins, totals.lines)
    totals.size += len(code.co_code)
    totals.instructions += len(ins)
    totals.loops += len(loops)
    totals.depth = max(totals.depth, outer_depth + _max_depth(loops))
    own_imports = _imports_in(ins, None)
    local_imports = {**imports, **own_imports}
    first_arg = code.co_varnames[0] if code.co_argcount and code.co_varnames else None
    pending_comprehensions = 0
    nested: dict[int, tuple[types.CodeType, int]] = {}  # id -> (code, deepest load site)
    prev = None
    for pos, instr in enumerate(ins):
        op = instr.opname
        if op in _CALL_OPS:
            invokes = prev is not None and prev.opname in ("GET_ITER", "GET_AITER")
            if pending_comprehensions and invokes:
                pending_comprehensions -= 1  # invoking a comprehension is a loop, not a call
            else:
                totals.calls += 1
        elif isinstance(instr.argval, types.CodeType):
            if instr.argval.co_name in _COMPREHENSIONS:
                pending_comprehensions += 1
            depth_here = outer_depth + sum(1 for body in loops if pos in body)
            seen = nested.get(id(instr.argval))
            nested[id(instr.argval)] = (instr.argval, max(depth_here, seen[1] if seen else 0))
        elif op in _NAME_LOADS or (op.startswith("LOAD_FAST") and isinstance(instr.argval, str)):
            chain = _attribute_chain(ins, pos)
            variable = op.startswith("LOAD_FAST") or (
                op == "LOAD_DEREF" and chain[0] not in local_imports
            )
            if not _matches_exception(ins, pos):
                scope = own_imports if op.startswith("LOAD_FAST") else local_imports
                _note_io(chain, scope, variable, totals)
            if not totals.recursive:
                totals.recursive = _is_self_call(ins, pos, chain, totals, first_arg)
        if op not in _TRANSPARENT:
            prev = instr
    for const in code.co_consts:  # code objects the instruction stream never loaded
        if isinstance(const, types.CodeType):
            nested.setdefault(id(const), (const, outer_depth))
    # Each nested code object once, even where the compiler duplicated its creation.
    for sub, depth in nested.values():
        _walk(sub, depth, totals, local_imports)


def _loops(code: types.CodeType, ins: list[dis.Instruction], lines: list[str]) -> list[set[int]]:
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
        and ins[head].opname not in _AWAIT_MACHINERY
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
        line = _line(lines, positions.lineno).encode("utf-8")
        return line[positions.col_offset : positions.end_col_offset] == b"continue"
    lineno = _line_of(code, ins, index)  # 3.10: the line only
    if not isinstance(lineno, int):
        return False
    words = _line(lines, lineno).split("#", 1)[0].replace(":", " ").replace(";", " ").split()
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


def _line(lines: list[str], lineno: int) -> str:
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _index_of(ins: list[dis.Instruction], offset: int) -> int | None:
    pos = bisect.bisect_left(ins, offset, key=lambda i: i.offset) if ins else 0
    return pos if pos < len(ins) and ins[pos].offset == offset else None


def _successors(code: types.CodeType, ins: list[dis.Instruction]) -> list[list[int]]:
    """Control-flow edges between instruction indices, exception edges included."""
    succ: list[list[int]] = [[] for _ in ins]
    for n, instr in enumerate(ins):
        falls_through = instr.opname not in _UNCONDITIONAL and instr.opname not in _TERMINAL
        if falls_through and n + 1 < len(ins):
            succ[n].append(n + 1)
        if instr.opcode in _JUMP_OPS and isinstance(instr.argval, int):
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
        instr.opcode in _JUMP_OPS
        and instr.opname not in _NOT_LOOPS
        and isinstance(instr.argval, int)
        and instr.argval <= instr.offset
    )


def _max_depth(loops: list[set[int]]) -> int:
    """Deepest nesting: how many loop bodies hold some instruction at once."""
    counts: dict[int, int] = {}
    for body in loops:
        for n in body:
            counts[n] = counts.get(n, 0) + 1
    return max(counts.values(), default=0)


def _attribute_chain(ins: list[dis.Instruction], pos: int) -> list[str]:
    """``a.b.c`` for a name load followed by attribute loads, as written."""
    chain = [str(ins[pos].argval)]
    for instr in ins[pos + 1 :]:
        if instr.opname in _TRANSPARENT:
            continue
        if instr.opname not in _ATTR_OPS:
            break
        chain.append(str(instr.argval))
    return chain


def _matches_exception(ins: list[dis.Instruction], pos: int) -> bool:
    """Whether the load at ``pos`` only names an exception in an ``except`` clause."""
    for instr in ins[pos + 1 :]:
        op = instr.opname
        if op in _TRANSPARENT or op in _ATTR_OPS or op in _NAME_LOADS or op == "BUILD_TUPLE":
            continue
        if op.startswith("LOAD_FAST"):
            continue
        return op in _EXCEPTION_MATCH
    return False


def _note_io(chain: list[str], imports: Mapping[str, str], variable: bool, totals: _Totals) -> None:
    """Record ``chain`` if it names blocking I/O; ``imports`` canonicalises its root.

    A local variable (``variable``) is a module only if an import in the function
    bound it; otherwise only its methods are checked (``path.read_text()``), so a
    parameter named ``open`` is not the builtin.
    """
    root = chain[0]
    if root in imports:
        dotted = [*imports[root].split("."), *chain[1:]]
    elif variable:
        if len(chain) > 1 and chain[-1] in _IO_METHODS:
            totals.io.add(".".join(chain))
        return
    else:
        dotted = list(chain)
    last = dotted[-1]
    if last.isupper() or last.endswith(("Error", "Exception", "Warning", "Exit")):
        return  # a constant or exception class, not a blocking call
    full = ".".join(dotted)
    for cut in range(len(dotted), 0, -1):
        if ".".join(dotted[:cut]) in _IO_FUNCTIONS:
            totals.io.add(".".join(dotted[:cut]))
            return
    if dotted[0] in _IO_MODULES or (len(dotted) > 1 and dotted[-1] in _IO_METHODS):
        totals.io.add(full)


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
        if instr.opname in _TRANSPARENT:
            continue
        if seen < skip:
            seen += 1
            continue
        if instr.opname in _CALL_OPS:
            return True
        if instr.opname.startswith(("STORE_", "RETURN_", "DELETE_", "POP_")):
            return False
    return False


# --------------------------------------------------------------------------- hashing


def code_hash(code: types.CodeType) -> str:
    """Stable hex digest over ``co_code``, ``co_consts`` and ``co_names``, recursively.

    Stable across processes (no ``id()``, frozenset constants are sorted), and
    different for ``x*2`` and ``x*3``, unlike a hash of ``co_code`` alone.
    """
    return _code_digest(code).hex()[:CODE_HASH_LENGTH]


def _code_digest(code: types.CodeType) -> bytes:
    h = hashlib.sha256()
    h.update(b"code")
    h.update(code.co_code)
    h.update(b"consts")
    for const in code.co_consts:
        h.update(_const_digest(const))
    h.update(b"names")
    for name in code.co_names:
        h.update(name.encode("utf-8", "surrogatepass") + b"\x00")
    return h.digest()


def _const_digest(const: object) -> bytes:
    if isinstance(const, types.CodeType):
        return _code_digest(const)
    if isinstance(const, tuple):
        parts = [_const_digest(c) for c in const]
    elif isinstance(const, frozenset):
        parts = sorted(_const_digest(c) for c in const)
    else:
        text = f"{type(const).__qualname__}:{const!r}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return hashlib.sha256(type(const).__name__.encode() + b"".join(parts)).digest()


# --------------------------------------------------------------------------- lookup


def function_complexity(
    source: str,
    qualname: str,
    *,
    search_path: Sequence[str] = (),
    module_imports: Mapping[str, str] | None = None,
) -> Complexity:
    """Complexity of the function ``qualname`` defined in ``source``.

    ``qualname`` is Python's (``Class.method``, ``outer.<locals>.inner``; the
    ``<locals>`` markers may be left out). When it is not defined in ``source`` and
    ``search_path`` is given, a dotted import path such as ``pkg.mod.func`` is looked
    up in the workspace. ``module_imports`` (local name -> dotted origin) overrides
    what the module's own import statements say. Never raises for bad source: the
    result is then unresolved, with the reason.
    """
    return _complexity_in(source, qualname, None, search_path, module_imports, 0)


def _complexity_in(
    source: str,
    qualname: str,
    package: str | None,
    search_path: Sequence[str],
    module_imports: Mapping[str, str] | None,
    depth: int,
) -> Complexity:
    index = _index(source, package)
    if index.error is not None:
        return Complexity.unresolved(index.error)
    imports = {**index.imports, **(module_imports or {})}
    real = qualname if qualname in index.by_qualname else index.by_short_name.get(qualname, "")
    code = index.by_qualname.get(real)
    if code is not None:
        if code.co_flags & _CO_OPTIMIZED:
            return _measure(code, real, imports, index.lines)
        init = index.by_qualname.get(f"{real}.__init__")
        if init is not None:
            return _measure(init, f"{real}.__init__", imports, index.lines)
        return Complexity.unresolved(f"class '{qualname}' has no __init__ of its own to analyse")
    head, _, rest = qualname.partition(".")
    if head in imports and search_path and depth < MAX_REEXPORT_DEPTH:
        target = imports[head] + ("." + rest if rest else "")
        return _imported(target, search_path, depth + 1)
    if search_path and rest and depth == 0:
        return _imported(qualname, search_path, depth + 1)
    return Complexity.unresolved(f"function '{qualname}' not found in module")


def _imported(dotted: str, search_path: Sequence[str], depth: int) -> Complexity:
    """Complexity of ``pkg.mod.func`` found by reading ``pkg/mod.py`` in the workspace."""
    if dotted.startswith("."):
        return Complexity.unresolved(f"relative import '{dotted}' cannot be resolved here")
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):  # also keeps lookups inside the roots
        return Complexity.unresolved(f"'{dotted}' is not a dotted import path")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = _read_workspace_module(module, search_path)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            return Complexity.unresolved(f"cannot read module '{module}': {exc}")
        if found is None:
            continue
        path, source = found
        package = module if os.path.basename(path) == "__init__.py" else module.rpartition(".")[0]
        inner = ".".join(parts[cut:])
        result = _complexity_in(source, inner, package, search_path, None, depth)
        if not result.resolved and result.reason and "not found in module" in result.reason:
            if cut < len(parts) - 1:  # a longer module path was tried first, and is missing
                longest = ".".join(parts[:-1])
                return Complexity.unresolved(
                    f"module '{longest}' not found on the search path, "
                    f"nor '{inner}' in module '{module}'"
                )
            return Complexity.unresolved(f"function '{inner}' not found in module '{module}'")
        return result
    module = ".".join(parts[:-1]) or dotted
    return Complexity.unresolved(f"module '{module}' not found on the search path")


def _read_workspace_module(module: str, search_path: Sequence[str]) -> tuple[str, str] | None:
    """The analysis's only file access: ``(path, text)`` of a workspace module, or None."""
    rel = os.path.join(*module.split("."))
    for root in search_path:
        for candidate in (rel + ".py", os.path.join(rel, "__init__.py")):
            path = os.path.join(root, candidate)
            if os.path.isfile(path):
                if os.path.getsize(path) > MAX_MODULE_BYTES:
                    raise ValueError(f"{path} is larger than {MAX_MODULE_BYTES} bytes")
                with open(path, "rb") as fh:
                    data = fh.read()
                try:
                    return path, importlib.util.decode_source(data)
                except LookupError as exc:  # a coding cookie naming rot13, base64, ...
                    raise ValueError(
                        f"{path} declares a coding that cannot decode text ({exc});"
                        " declare utf-8 instead"
                    ) from None
    return None


_NO_BYTECODE = {
    FunctionKind.BUILTIN: "builtin: no Python bytecode",
    FunctionKind.UNKNOWN: "the mapped callable could not be resolved statically",
}


def complexity_for(ref: FunctionRef, source: str, search_path: Sequence[str] = ()) -> Complexity:
    """Complexity of a call site's mapped callable, whatever kind of reference it is."""
    kind = ref.kind
    if kind in _NO_BYTECODE:
        return Complexity.unresolved(f"{_NO_BYTECODE[kind]} ({ref.text!r})")
    if kind is FunctionKind.PARTIAL:
        if ref.wrapped is None:
            return Complexity.unresolved(f"the callable wrapped by {ref.text!r} is unknown")
        return complexity_for(ref.wrapped, source, search_path)
    if kind is FunctionKind.LAMBDA:
        return _lambda_complexity(ref, source)
    qualname = ref.qualname or (ref.text if ref.text.isidentifier() else None)
    if not qualname:
        return Complexity.unresolved(f"no qualified name for {ref.text!r}")
    if kind is FunctionKind.IMPORTED:
        if not search_path:
            return Complexity.unresolved(
                f"'{qualname}' is imported and no search path was given to find its module"
            )
        index = _index(source)
        if index.error is not None:
            return Complexity.unresolved(index.error)
        return _imported(qualname, search_path, 1)
    return function_complexity(source, qualname, search_path=search_path)


def _lambda_complexity(ref: FunctionRef, source: str) -> Complexity:
    index = _index(source)
    if index.error is not None:
        return Complexity.unresolved(index.error)
    span = ref.span
    if span is None:
        return Complexity.unresolved(f"lambda {ref.text!r} has no source position")
    best = None
    for code in index.lambdas:
        if not span.line <= code.co_firstlineno <= span.end_line:
            continue
        start = _body_start(code, index.lines)
        if start is None:  # Python 3.10: no columns, take the first lambda on the line
            best = best or code
        elif (span.line, span.column) <= start <= (span.end_line, span.end_column):
            best = code
            break
    if best is None:
        return Complexity.unresolved(f"no lambda found at line {span.line}")
    return _measure(best, "<lambda>", index.imports, index.lines)


def _body_start(code: types.CodeType, lines: list[str]) -> tuple[int, int] | None:
    """Earliest (line, code-point column) of a lambda's body; None before 3.11.

    ``RESUME`` and the other prologue instructions carry a zero-width position at
    column 0 and are skipped.
    """
    if not hasattr(code, "co_positions"):
        return None
    known = [
        (p.lineno, p.col_offset)
        for i in _instructions(code)
        if (p := i.positions) is not None
        and p.lineno is not None
        and p.col_offset is not None
        and (p.end_col_offset != p.col_offset or p.end_lineno != p.lineno)
    ]
    if not known:
        return None
    line, byte_col = min(known)
    return line, len(_line(lines, line).encode("utf-8")[:byte_col].decode("utf-8", "ignore"))
