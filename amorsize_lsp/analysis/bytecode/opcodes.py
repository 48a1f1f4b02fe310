"""Opcode names the bytecode readers share, by name only (numbers change between versions)."""

from __future__ import annotations

import dis
import types

CALL_OPS = frozenset(
    {"CALL", "CALL_KW", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD"}
)
#: Instructions that neither start nor end an expression we follow.
TRANSPARENT = frozenset({"CACHE", "PRECALL", "PUSH_NULL", "EXTENDED_ARG", "NOP", "KW_NAMES"})
ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
NAME_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"})
EXCEPTION_MATCH = frozenset(
    {"CHECK_EXC_MATCH", "JUMP_IF_NOT_EXC_MATCH", "CHECK_EG_MATCH", "JUMP_IF_NOT_EG_MATCH"}
)
COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
#: ``await`` / ``yield from`` loops: backward jumps that are not user loops.
NOT_LOOPS = frozenset({"JUMP_BACKWARD_NO_INTERRUPT"})
#: 3.12 jumps back from ``CLEANUP_THROW`` to ``END_SEND`` when an ``await`` is thrown into.
AWAIT_MACHINERY = frozenset({"END_SEND"})
UNCONDITIONAL = frozenset(
    {
        "JUMP",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_ABSOLUTE",
        "JUMP_NO_INTERRUPT",
        "JUMP_BACKWARD_NO_INTERRUPT",
    }
)
TERMINAL = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE"})
JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))
CO_OPTIMIZED = next(k for k, v in dis.COMPILER_FLAG_NAMES.items() if v == "OPTIMIZED")


def code_instructions(code: types.CodeType) -> list[dis.Instruction]:
    return [i for i in dis.get_instructions(code) if i.opname != "CACHE"]


def source_line(lines: list[str], lineno: int) -> str:
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""
