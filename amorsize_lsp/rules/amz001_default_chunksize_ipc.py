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
Adds `chunksize=<n>`, chosen so that it is never slower than the call as written:
- the engine's recommended chunksize, when a measured or predicted one is available
  (safe);
- otherwise, when the length of the iterable is known and the function's cost can be
  read from its bytecode, `ceil(length / (4 * workers))`: four chunks per worker
  balance load (safe). `workers` is the pool's literal worker count, else
  `target-cores`, else 8 (never the machine running the linter);
- otherwise 32, as an unsafe fix (offered, applied only with `--unsafe-fixes`): with
  the length or the cost unknown, a large chunk could leave workers idle.

Calls whose items are heavy are not flagged at all: when the function does blocking
I/O or starts processes (read from its bytecode), or a measurement says an item takes
a millisecond or more, per-item IPC is noise next to the work.

## Configuration
`[tool.amorsize] min-items` sets the length below which a known-length iterable is
not flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from amorsize_lsp.analysis.model import PROCESS_EXECUTOR, PROCESS_POOL, CallSite, ModuleAnalysis

from ._text import callee, friendly_executor, plural
from .model import (
    MEASURED_SOURCES,
    Applicability,
    Finding,
    Fix,
    Need,
    RuleContext,
    Severity,
)

if TYPE_CHECKING:
    from amorsize_lsp.engine.workload import Recommendation

CODE = "AMZ001"
NAME = "default-chunksize-ipc"
SEVERITY = Severity.WARNING
FIX = Applicability.SAFE
SUMMARY = "process-pool map without chunksize pays one IPC round trip per item"
NEEDS: frozenset[Need] = frozenset({Need.COMPLEXITY, Need.RECOMMENDATION})

_FLAGGED = {
    PROCESS_EXECUTOR: frozenset({"map"}),
    PROCESS_POOL: frozenset({"imap", "imap_unordered"}),
}
#: Chunksize when neither the engine nor a known length can say better (an unsafe fix).
DEFAULT_CHUNKSIZE = 32
#: Workers assumed when neither the constructor nor ``target-cores`` says: chunks sized
#: for 8 workers are no larger than four per worker on any machine with at most 8.
ASSUMED_WORKERS = 8
#: Items at least this slow (seconds) make per-item IPC irrelevant.
HEAVY_ITEM_S = 1e-3


def applies(site: CallSite, min_items: int) -> bool:
    """Whether the call pays per-item IPC because chunksize is left at 1."""
    if site.method not in _FLAGGED.get(site.kind or "", ()):
        return False
    if site.chunksize is not None:
        return False
    if heavy_items(site):
        return False
    return not (site.length is not None and site.length < min_items)


def heavy_items(site: CallSite) -> bool:
    """The function blocks on I/O or starts processes: IPC per item does not matter."""
    cx = site.complexity
    return cx is not None and cx.resolved and cx.blocking_io


def _measured_item_s(site: CallSite, rec: Recommendation) -> float | None:
    if rec.source not in MEASURED_SOURCES or not site.length:
        return None
    return rec.serial_time_s / site.length


def suggested_chunksize(
    site: CallSite, ctx: RuleContext, rec: Recommendation | None
) -> tuple[int, str, Applicability]:
    """The chunksize to add, a short reason for the fix message, and how safe it is."""
    if rec is not None and rec.chunksize >= 1:
        return rec.chunksize, f"{rec.source} by the amorsize engine", Applicability.SAFE
    cx = site.complexity
    if site.length is not None:
        ctor = site.constructor
        workers = (ctor.workers_value if ctor else None) or ctx.target_cores or ASSUMED_WORKERS
        workers = max(1, workers)
        value = max(1, math.ceil(site.length / (4 * workers)))
        reason = f"{plural(site.length, 'item')} in 4 chunks per worker for {workers} workers"
        known_cost = cx is not None and cx.resolved
        return value, reason, Applicability.SAFE if known_cost else Applicability.UNSAFE
    return DEFAULT_CHUNKSIZE, "the length of the iterable is unknown", Applicability.UNSAFE


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for site in analysis.callsites:
        if not applies(site, ctx.min_items):
            continue
        rec = ctx.recommend(site) if ctx.recommend is not None else None
        if rec is not None:
            item_s = _measured_item_s(site, rec)
            if item_s is not None and item_s >= HEAVY_ITEM_S:
                continue
        value, reason, applicability = suggested_chunksize(site, ctx, rec)
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
            fix=_fix(ctx, site, value, reason, applicability),
        )


def _fix(
    ctx: RuleContext, site: CallSite, value: int, reason: str, applicability: Applicability
) -> Fix | None:
    from amorsize_lsp.analysis.edits import EditError, set_chunksize

    try:
        edits = set_chunksize(ctx.source, site, value)
    except EditError:
        return None
    if not edits:
        return None
    return Fix(applicability, f"Add `chunksize={value}` ({reason})", tuple(edits))
