"""## What it does
Flags a pool or executor that is bound to a name but neither used as a context
manager nor closed, terminated or shut down in the same scope, and one created
inline and used at once (`Pool(2).map(...)`), which nothing can close.

A pool that is returned, or handed to another call (`register(pool)`,
`loop.set_default_executor(executor)`, `self._pools.append(pool)`), has a new owner
and is not flagged. For `self.pool = Pool()`, closing it in any method of the class or
of its base classes in the same file counts; when a base class comes from elsewhere,
an inherited method may close it, so it is not flagged.

## Why is this bad?
An open pool keeps its worker processes (or threads) alive until the pool object is
garbage-collected or the interpreter exits. Long-running programs and test suites
leak workers and their memory; with `multiprocessing.Pool` the finaliser may even
hang or print `ResourceWarning` at exit. Results of `map_async`/`imap` may also be
lost when the interpreter tears the pool down first.

## Example
```python
from multiprocessing import Pool

def run(items):
    pool = Pool(4)
    return pool.map(work, items)
```

Use instead:
```python
def run(items):
    with Pool(4) as pool:
        return pool.map(work, items)
```

## Fix
None automatically: use the pool in a `with` block, or call `pool.close()` and
`pool.join()` (`executor.shutdown()` for an executor) when the work is done.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import (
    PROCESS_EXECUTOR,
    THREAD_EXECUTOR,
    ModuleAnalysis,
    PoolConstructor,
)

from ._text import friendly_executor, shorten, text_at
from .model import Finding, Need, RuleContext, Severity

CODE = "AMZ007"
NAME = "pool-not-closed"
SEVERITY = Severity.WARNING
FIX = None
SUMMARY = "pool or executor never closed or shut down leaks its workers"
NEEDS: frozenset[Need] = frozenset()


def applies(ctor: PoolConstructor) -> bool:
    if ctor.expected_to_raise or ctor.context_managed or ctor.closed:
        return False
    if ctor.bound_name:
        return True
    return ctor.chained_method is not None and ctor.chained_method not in _CLOSERS


#: Methods that end a pool's life when called on it directly.
_CLOSERS = frozenset({"close", "terminate", "shutdown", "__enter__", "__exit__"})


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for ctor in analysis.constructors:
        if not applies(ctor):
            continue
        created = shorten(text_at(ctx.source, ctor.span))
        pool = friendly_executor(ctor.executor)
        workers = "processes" if ctor.is_process else "threads"
        name = ctor.bound_name
        if name is None:
            message = (
                f"`{created}.{ctor.chained_method}(...)` creates a {pool} that is never closed: "
                f"its worker {workers} live until it is garbage-collected (with a "
                f"`ResourceWarning`); use `with {created} as pool:` and call "
                f"`pool.{ctor.chained_method}(...)` inside"
            )
        else:
            if ctor.kind in (PROCESS_EXECUTOR, THREAD_EXECUTOR):
                close = f"`{name}.shutdown()`"
            else:
                close = f"`{name}.close()` and `{name}.join()`"
            if "." not in name:
                advice = f"use `with {created} as {name}:` or call {close} when done"
            else:
                advice = f"call {close} when done"
            message = (
                f"`{name}` ({pool}) is never closed in this scope, so its worker {workers} "
                f"leak; {advice}"
            )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.span,
            severity=SEVERITY,
        )
