"""## What it does
Flags a pool or executor that is bound to a name but neither used as a context
manager nor closed, terminated or shut down in the same scope.

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
    return bool(ctor.bound_name) and not ctor.context_managed and not ctor.closed


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for ctor in analysis.constructors:
        if not applies(ctor):
            continue
        name = ctor.bound_name
        created = shorten(text_at(ctx.source, ctor.span))
        if ctor.kind in (PROCESS_EXECUTOR, THREAD_EXECUTOR):
            close = f"`{name}.shutdown()`"
        else:
            close = f"`{name}.close()` and `{name}.join()`"
        workers = "processes" if ctor.is_process else "threads"
        if name and "." not in name:
            advice = f"use `with {created} as {name}:` or call {close} when done"
        else:
            advice = f"call {close} when done"
        message = (
            f"`{name}` ({friendly_executor(ctor.executor)}) is never closed in this scope, so "
            f"its worker {workers} leak; {advice}"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.span,
            severity=SEVERITY,
        )
