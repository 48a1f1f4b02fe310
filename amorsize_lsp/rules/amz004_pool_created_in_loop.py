"""## What it does
Flags a pool or executor (process or thread) constructed inside the body of a `for`
or `while` loop, or inside a comprehension.

## Why is this bad?
Creating a pool starts its workers: for a process pool that means forking or
spawning interpreters and importing modules, tens to hundreds of milliseconds each.
Inside a loop this start-up and the matching shutdown are paid on every iteration,
usually dwarfing the work, and workers cannot keep warm caches between batches.

## Example
```python
from concurrent.futures import ProcessPoolExecutor

def transform_all(batches):
    results = []
    for batch in batches:
        with ProcessPoolExecutor() as executor:
            results.extend(executor.map(transform, batch, chunksize=16))
    return results
```

Use instead:
```python
def transform_all(batches):
    results = []
    with ProcessPoolExecutor() as executor:
        for batch in batches:
            results.extend(executor.map(transform, batch, chunksize=16))
    return results
```

## Fix
None automatically: create the pool once before the loop and reuse it.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import ModuleAnalysis, PoolConstructor

from ._text import friendly_executor, shorten, text_at
from .model import Finding, Need, RuleContext, Severity

CODE = "AMZ004"
NAME = "pool-created-in-loop"
SEVERITY = Severity.WARNING
FIX = None
SUMMARY = "pool or executor created inside a loop pays worker start-up every iteration"
NEEDS: frozenset[Need] = frozenset()


def applies(ctor: PoolConstructor) -> bool:
    return ctor.in_loop and not ctor.expected_to_raise


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for ctor in analysis.constructors:
        if not applies(ctor):
            continue
        workers = "processes" if ctor.is_process else "threads"
        created = shorten(text_at(ctx.source, ctor.span))
        pool = friendly_executor(ctor.executor)
        if ctor.in_comprehension:
            message = (
                f"`{created}` creates a {pool} for every element of a comprehension: each "
                f"starts its worker {workers}, and none is ever closed; create one pool "
                "before it and map over the elements"
            )
        else:
            message = (
                f"`{created}` creates a {pool} inside a loop, starting and stopping its "
                f"worker {workers} on every iteration; create it once before the loop and "
                "reuse it"
            )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.span,
            severity=SEVERITY,
        )
