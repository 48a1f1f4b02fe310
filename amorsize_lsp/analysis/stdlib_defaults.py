"""What the standard library does when a call leaves workers or chunksize out.

The recommendation rules and the daemon both judge "the call as written", so both
need the values CPython would pick: one definition here.
"""

from __future__ import annotations

import math

from .model import PROCESS_POOL, THREAD_EXECUTOR, THREAD_POOL

#: Methods of ``multiprocessing.Pool`` that size chunks from the iterable's length.
_SIZED_METHODS = frozenset({"map", "starmap", "map_async", "starmap_async"})


def default_workers(kind: str | None, cores: int) -> int:
    """Workers a pool or executor starts without an explicit count on ``cores`` cores
    (``ThreadPoolExecutor`` adds 4 for I/O, up to 32)."""
    if kind == THREAD_EXECUTOR:
        return min(32, cores + 4)
    return max(1, cores)


def default_chunksize(
    method: str, kind: str | None, n_items: int | None, workers: int
) -> int | None:
    """The chunksize a call without one runs with; None when it depends on a length
    that is not known statically. ``Pool.map`` and friends use ``ceil(n / (4 *
    workers))``; ``imap``, ``imap_unordered`` and the executors' ``map`` use 1."""
    if method in _SIZED_METHODS and kind in (PROCESS_POOL, THREAD_POOL):
        return max(1, math.ceil(n_items / (4 * workers))) if n_items else None
    return 1
