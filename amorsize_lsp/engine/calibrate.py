"""Measure this machine's pool costs; run as ``python -m amorsize_lsp.engine.calibrate``.

It runs in its own process (``system.run_calibration`` starts it) so that spawn and
forkserver children re-import this module, never the user's ``__main__``, and so
that no start method or warning filter of the caller changes. It prints one JSON
line: a ``Calibration``. The whole run takes about 2 s (spawn start-ups dominate).
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.pool import ThreadPool
from typing import Any


def _noop(x: Any) -> Any:
    return x


def _pool_cycle(ctx: Any, workers: int) -> float:
    """Start a pool, run one trivial task per worker, shut it down: seconds."""
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        pool.map(_noop, range(workers), chunksize=1)
    return time.perf_counter() - t0


def _executor_cycle(ctx: Any, workers: int) -> float:
    """The same for ``ProcessPoolExecutor``, whose start-up and shutdown differ."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        list(ex.map(_noop, range(workers)))
    return time.perf_counter() - t0


def _startup(cycle: Any, ctx: Any, usable: int) -> tuple[float, float]:
    """(one-worker start-up, cost of each extra worker): the faster of two runs each.

    On a shared machine noise only adds, so the minimum is the better estimate.
    """
    one = min(cycle(ctx, 1) for _ in range(2))
    if usable < 2:
        return one, 0.1 * one
    many = min(cycle(ctx, usable) for _ in range(2))
    per = (many - one) / (usable - 1)
    return one, min(max(per, 0.0), one)


def _per_chunk_and_item(run: Any, n_small: int, n_big: int, big_chunk: int) -> tuple[float, float]:
    """Solve chunk and item overhead from runs at chunksize 1 and ``big_chunk``.

    Each run is timed twice and the faster kept: on a shared machine noise only adds.
    """

    def per_item(n: int, c: int) -> float:
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            run(n, c)
            best = min(best, time.perf_counter() - t0)
        return best / n

    a = per_item(n_small, 1)  # chunk + item
    b = per_item(n_big, big_chunk)  # chunk / big_chunk + item
    item = max(0.0, (b - a / big_chunk) / (1 - 1 / big_chunk))
    chunk = max(0.0, a - item)
    return chunk, item


def calibrate() -> dict[str, Any]:
    from amorsize_lsp.engine.system import Calibration, default_start_method, usable_cores

    warnings.simplefilter("ignore", DeprecationWarning)
    t_start = time.perf_counter()
    cal = Calibration()
    methods = multiprocessing.get_all_start_methods()
    default = default_start_method()
    usable = usable_cores()
    for method in ("fork", "forkserver", "spawn"):
        if method not in methods:
            continue
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            _pool_cycle(ctx, 1)  # the server itself starts once per process
        cal.startup_s[method], cal.startup_per_worker_s[method] = _startup(_pool_cycle, ctx, usable)
        cal.executor_startup_s[method], cal.executor_startup_per_worker_s[method] = _startup(
            _executor_cycle, ctx, usable
        )

    fast = multiprocessing.get_context("fork" if "fork" in methods else default)
    with fast.Pool(1) as pool:
        pool.map(_noop, range(10))
        cal.pool_chunk_s, cal.pool_item_s = _per_chunk_and_item(
            lambda n, c: pool.map(_noop, range(n), chunksize=c), 400, 20000, 1000
        )
        size = 256 * 1024
        # Distinct objects: pickle memoizes repeats inside a chunk.
        items = [bytes([i]) * size for i in range(64)]
        pool.map(_noop, items[:4], chunksize=8)
        t0 = time.perf_counter()
        pool.map(_noop, items, chunksize=8)
        per_item = (time.perf_counter() - t0) / len(items)
    t0 = time.perf_counter()
    for x in items:
        pickle.loads(pickle.dumps(x))
    pickle_rt = (time.perf_counter() - t0) / len(items)
    overhead = cal.pool_item_s + cal.pool_chunk_s / 8
    cal.ipc_s_per_byte = max(0.0, per_item - overhead - pickle_rt) / (2 * size)

    blob = bytes(4 * 2**20)
    t0 = time.perf_counter()
    for _ in range(8):
        s = pickle.dumps(blob)
    cal.dumps_bytes_per_s = 8 * len(blob) / max(time.perf_counter() - t0, 1e-9)
    t0 = time.perf_counter()
    for _ in range(8):
        pickle.loads(s)
    cal.loads_bytes_per_s = 8 * len(blob) / max(time.perf_counter() - t0, 1e-9)

    with ProcessPoolExecutor(1, mp_context=fast) as ex:
        list(ex.map(_noop, range(10)))
        cal.executor_chunk_s, cal.executor_item_s = _per_chunk_and_item(
            lambda n, c: list(ex.map(_noop, range(n), chunksize=c)), 200, 20000, 1000
        )

    t0 = time.perf_counter()
    with ThreadPool(1) as tp:
        tp.map(_noop, [0])
        cal.thread_startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tp.map(_noop, range(1000), chunksize=1)
        cal.thread_chunk_s = (time.perf_counter() - t0) / 1000

    cal.measured = True
    cal.duration_s = time.perf_counter() - t_start
    return cal.to_dict()


def main() -> int:
    json.dump(calibrate(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
