"""Compile a module once and index its code objects by qualname, with its imports."""

from __future__ import annotations

import dis
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from .complexity import TOO_DEEP
from .opcodes import CO_OPTIMIZED, TRANSPARENT, code_instructions


@dataclass(slots=True)
class ModuleIndex:
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
def module_index(source: str, package: str | None = None) -> ModuleIndex:
    """Compile ``source`` once per distinct text; many call sites share a module."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(source, "<analysed module>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return ModuleIndex(None, f"syntax error{where}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return ModuleIndex(None, f"module does not compile: {exc}")
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    index = ModuleIndex(
        code, None, imports=imports_in(code_instructions(code), package), lines=lines
    )
    try:
        for qualname, sub in _code_objects(code):
            index.by_qualname[qualname] = sub  # a later definition replaces an earlier one
            index.by_short_name.setdefault(qualname.replace("<locals>.", ""), qualname)
            if sub.co_name == "<lambda>":
                index.lambdas.append(sub)
    except RecursionError:
        return ModuleIndex(None, TOO_DEEP)
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
        below_function = const.co_flags & CO_OPTIMIZED
        yield from _code_objects(const, qualname + (".<locals>." if below_function else "."))


def imports_in(instructions: list[dis.Instruction], package: str | None) -> dict[str, str]:
    """Names bound by ``import`` statements in one code object -> dotted origin."""
    out: dict[str, str] = {}
    ins = [i for i in instructions if i.opname not in TRANSPARENT]
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
