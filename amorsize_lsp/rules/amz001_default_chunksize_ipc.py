"""## What it does
Flags `ProcessPoolExecutor.map`, `Pool.imap` and `Pool.imap_unordered` on a process
pool when no `chunksize` is given, unless the iterable is statically known to hold
fewer than `min-items` (default 50) items.

## Why is this bad?
These three methods default to `chunksize=1`: every single item is pickled, sent to a
worker, and its result sent back in a separate inter-process round trip. When each
item is cheap, the IPC costs more than the work and the parallel code runs slower
than a plain loop. Batching items into chunks pays that cost once per chunk.

`Pool.map`, `Pool.starmap` and the `*_async` variants are not flagged: they compute a
chunksize from the length of the iterable. `ThreadPoolExecutor.map` is not flagged
either: it ignores `chunksize`, and threads pay no IPC.

## Example
```python
from concurrent.futures import ProcessPoolExecutor

if __name__ == "__main__":
    with ProcessPoolExecutor() as executor:
        results = list(executor.map(score, records))
```

Use instead:
```python
if __name__ == "__main__":
    with ProcessPoolExecutor() as executor:
        results = list(executor.map(score, records, chunksize=32))
```

## Fix
Safe: adds `chunksize=<n>`. `n` comes from the engine's recommendation when one is
available; otherwise `max(1, ceil(length / (4 * workers)))` when the length of the
iterable is known (four chunks per worker balance load), else 32.

## Configuration
`[tool.amorsize] min-items` sets the length below which a known-length iterable is
not flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from amorsize_lsp.analysis.model import PROCESS_EXECUTOR, PROCESS_POOL, CallSite, ModuleAnalysis

from ._text import callee, friendly_executor, plural
from .model import Applicability, Finding, Fix, Need, RuleContext, Severity

CODE = "AMZ001"
NAME = "default-chunksize-ipc"
SEVERITY = Severity.WARNING
FIX = Applicability.SAFE
SUMMARY = "process-pool map without chunksize pays one IPC round trip per item"
NEEDS: frozenset[Need] = frozenset({Need.RECOMMENDATION})

_FLAGGED = {
    PROCESS_EXECUTOR: frozenset({"map"}),
    PROCESS_POOL: frozenset({"imap", "imap_unordered"}),
}
#: Chunksize when neither the engine nor a known length can say better.
DEFAULT_CHUNKSIZE = 32


def applies(site: CallSite, min_items: int) -> bool:
    """Whether the call pays per-item IPC because chunksize is left at 1."""
    if site.method not in _FLAGGED.get(site.kind or "", ()):
        return False
    if site.chunksize is not None:
        return False
    return not (site.length is not None and site.length < min_items)


def suggested_chunksize(site: CallSite, ctx: RuleContext) -> tuple[int, str]:
    """The chunksize to add, and a short reason for the fix message."""
    if ctx.recommend is not None:
        rec = ctx.recommend(site)
        value = getattr(rec, "chunksize", None) if rec is not None else None
        if isinstance(value, int) and value >= 1:
            return value, "recommended by the amorsize engine"
    if site.length is not None:
        ctor = site.constructor
        workers = ctor.workers_value if ctor and ctor.workers_value else ctx.target_cores
        workers = max(1, workers)
        value = max(1, math.ceil(site.length / (4 * workers)))
        return value, f"{plural(site.length, 'item')} in 4 chunks per worker for {workers} workers"
    return DEFAULT_CHUNKSIZE, "the length of the iterable is unknown"


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for site in analysis.callsites:
        if not applies(site, ctx.min_items):
            continue
        value, reason = suggested_chunksize(site, ctx)
        what = callee(ctx.source, site.span)
        message = (
            f"`{what}` on a {friendly_executor(site.executor)} has no chunksize, so every item "
            f"is a separate IPC round trip; pass `chunksize={value}`"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=site.span,
            severity=SEVERITY,
            fix=_fix(ctx, site, value, reason),
        )


def _fix(ctx: RuleContext, site: CallSite, value: int, reason: str) -> Fix | None:
    from amorsize_lsp.analysis.edits import EditError, set_chunksize

    try:
        edits = set_chunksize(ctx.source, site, value)
    except EditError:
        return None
    if not edits:
        return None
    return Fix(FIX, f"Add `chunksize={value}` ({reason})", tuple(edits))
