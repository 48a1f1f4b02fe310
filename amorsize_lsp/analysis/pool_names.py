"""The names that denote pools, contexts and partials, shared by the scope walk,
the statement selection and the resolver (a module of its own, so that none of
them imports another for a table)."""

from __future__ import annotations

#: Every spelling of a pool class -> its canonical qualified name.
POOL_CLASSES: dict[str, str] = {
    "multiprocessing.Pool": "multiprocessing.pool.Pool",
    "multiprocessing.pool.Pool": "multiprocessing.pool.Pool",
    "multiprocessing.context.BaseContext.Pool": "multiprocessing.pool.Pool",
    "multiprocessing.pool.ThreadPool": "multiprocessing.pool.ThreadPool",
    "multiprocessing.dummy.Pool": "multiprocessing.pool.ThreadPool",
    "torch.multiprocessing.Pool": "torch.multiprocessing.Pool",
    "torch.multiprocessing.pool.Pool": "torch.multiprocessing.Pool",
    "concurrent.futures.ProcessPoolExecutor": "concurrent.futures.ProcessPoolExecutor",
    "concurrent.futures.process.ProcessPoolExecutor": "concurrent.futures.ProcessPoolExecutor",
    "concurrent.futures.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
    "concurrent.futures.thread.ThreadPoolExecutor": "concurrent.futures.ThreadPoolExecutor",
}
GET_CONTEXT = frozenset(
    {
        "multiprocessing.get_context",
        "multiprocessing.context.get_context",
        "torch.multiprocessing.get_context",
    }
)
PARTIALS = frozenset({"functools.partial"})
#: What ``from M import *`` brings in that matters here.
STAR_EXPORTS: dict[str, tuple[str, ...]] = {
    "multiprocessing": ("Pool", "get_context"),
    "multiprocessing.pool": ("Pool", "ThreadPool"),
    "multiprocessing.dummy": ("Pool",),
    "concurrent.futures": ("ProcessPoolExecutor", "ThreadPoolExecutor"),
    "torch.multiprocessing": ("Pool", "get_context"),
    "functools": ("partial",),
}
START_METHODS = frozenset({"fork", "spawn", "forkserver"})
