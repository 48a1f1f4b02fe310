"""Static features of a call site, the k-NN's inputs: only what is known without running.

Counts that span orders of magnitude (bytecode size, calls, the item count, the
machine's per-item cost) enter on a log scale, so a function twice as large is as
far from its neighbour whatever its size. A value that is not known is None; the
model fills it in with the training median.
"""

from __future__ import annotations

import json
import math
from typing import Any

from amorsize_lsp.analysis.model import THREAD_EXECUTOR, THREAD_POOL

#: Feature names, in vector order.
FEATURES = (
    "bytecode_size",
    "instruction_count",
    "loop_count",
    "max_loop_depth",
    "call_count",
    "recursive",
    "blocking_io",
    "io_calls",
    "length",
    "thread_executor",
    "machine_item_cost",
)

Vector = tuple[float | None, ...]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _log1p(v: Any) -> float | None:
    x = _num(v)
    return math.log1p(max(x, 0.0)) if x is not None else None


def vector(
    complexity: dict[str, Any] | None,
    length: int | None,
    executor_kind: str | None,
    machine_item_s: float | None,
) -> Vector | None:
    """The feature vector, or None when the function's bytecode was not read."""
    cx = complexity or {}
    if not cx.get("resolved", True) or _num(cx.get("instruction_count")) is None:
        return None
    io_calls = cx.get("io_calls")
    n_io = len(io_calls) if isinstance(io_calls, list) else None
    item = _num(machine_item_s)
    return (
        _log1p(cx.get("bytecode_size")),
        _log1p(cx.get("instruction_count")),
        _num(cx.get("loop_count")),
        _num(cx.get("max_loop_depth")),
        _log1p(cx.get("call_count")),
        _num(cx.get("recursive")),
        _num(cx.get("blocking_io")),
        float(n_io) if n_io is not None else None,
        _log1p(length) if length is not None else None,
        None if executor_kind is None else float(executor_kind in (THREAD_POOL, THREAD_EXECUTOR)),
        math.log10(item) if item is not None and item > 0 else None,
    )


def from_callsite(
    callsite: dict[str, Any], executor_kind: str | None, machine_item_s: float | None
) -> Vector | None:
    """Features of a validated call-site object on the machine with ``machine_item_s``."""
    cx = callsite.get("complexity")
    length = callsite.get("length")
    return vector(cx if isinstance(cx, dict) else None, length, executor_kind, machine_item_s)


def from_row(row: dict[str, Any], machine_item_s: float | None) -> Vector | None:
    """Features of a stored profile row joined with its function (``Store.profiles()``)."""
    cx: dict[str, Any] = {
        "bytecode_size": row.get("f_bytecode_size"),
        "instruction_count": row.get("f_instruction_count"),
        "loop_count": row.get("f_loop_count"),
        "max_loop_depth": row.get("f_max_loop_depth"),
        "call_count": row.get("f_call_count"),
        "recursive": row.get("f_recursive"),
        "blocking_io": row.get("f_blocking_io"),
    }
    io = row.get("f_io_calls")
    if isinstance(io, str):
        try:
            cx["io_calls"] = json.loads(io)
        except ValueError:
            cx["io_calls"] = None
    return vector(cx, row.get("length"), row.get("executor_kind"), machine_item_s)
