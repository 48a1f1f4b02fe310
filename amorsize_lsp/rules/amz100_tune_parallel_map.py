"""## What it does
Flags a pool-map call whose worker count or chunksize is predicted at least 10%
slower than the recommendation for this workload on this machine. It needs advice: a measured,
recorded or shared profile, or a confident prediction (the editor's daemon, or the
store that `amorsize-lint` reads); without one it reports nothing.

## Why is this bad?
Too many workers pay start-up and IPC for no gain (or fight over too few cores);
too few leave cores idle. The cost model, fed with the call's measured item time
and pickled sizes, predicts the wall time of every configuration; this call's is
measurably worse than the best.

## Example
```python
from multiprocessing import Pool

if __name__ == "__main__":
    with Pool(8) as pool:
        results = pool.map(score, records, chunksize=8)
```

Use instead:
```python
if __name__ == "__main__":
    with Pool(2) as pool:
        results = pool.map(score, records, chunksize=64)
```

## Fix
Safe: sets the constructor's worker count and the call's chunksize to the
recommended values together.

## Configuration
Reported only when advice exists; `amorsize-lint --no-store` turns the store off.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import CallSite, ModuleAnalysis

from ._advice import advised, current_chunksize, current_workers, speedup_at
from ._text import callee, plural
from .model import Applicability, Finding, Fix, Need, RuleContext, Severity

CODE = "AMZ100"
NAME = "tune-parallel-map"
SEVERITY = Severity.INFO
FIX = Applicability.SAFE
SUMMARY = (
    "the call's worker count or chunksize is predicted at least 10% slower than the recommendation"
)
NEEDS: frozenset[Need] = frozenset({Need.RECOMMENDATION})

#: Report when the recommendation is predicted at least this much faster.
MIN_GAIN = 1.1


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for site, rec in advised(analysis, ctx, use_pool=True):
        workers = current_workers(site, ctx)
        chunksize = current_chunksize(site, workers)
        now = _speedup_now(rec, workers, chunksize)
        if now is None or now <= 0 or rec.expected_speedup / now < MIN_GAIN:
            continue
        gain = rec.expected_speedup / now
        chunk = f"chunksize={chunksize}" if chunksize is not None else "its chunksize"
        message = (
            f"`{callee(ctx.source, site.span)}` with {plural(workers, 'worker')} and {chunk} is "
            f"predicted {gain:.1f}× slower than the recommended {plural(rec.n_jobs, 'worker')}, "
            f"chunksize={rec.chunksize} (~{rec.expected_speedup:.1f}× serial, {rec.source})"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=site.span,
            severity=SEVERITY,
            fix=_fix(ctx, site, rec.n_jobs, rec.chunksize, workers, chunksize),
        )


def _speedup_now(rec, workers: int, chunksize: int | None) -> float | None:
    """The predicted speedup of the call as written: the advice's prediction for this
    very configuration when it has one, else the best any chunksize reaches with this
    many workers (so a bad chunksize alone is reported only with the former)."""
    if rec.current is not None and rec.current[:2] == (workers, chunksize):
        return rec.current[2]
    return speedup_at(rec, workers)


def _fix(
    ctx: RuleContext, site: CallSite, n_jobs: int, chunksize: int, workers: int, now: int | None
) -> Fix | None:
    from amorsize_lsp.analysis.edits import set_parameters
    from amorsize_lsp.analysis.model import EditError

    new_workers = n_jobs if site.constructor is not None and n_jobs != workers else None
    new_chunk = chunksize if chunksize != now and not site.is_thread else None
    try:
        edits = set_parameters(ctx.source, site, chunksize=new_chunk, workers=new_workers)
    except EditError:
        return None
    if not edits:
        return None
    return Fix(FIX, f"Use {n_jobs} workers and chunksize={chunksize} (recommended)", tuple(edits))
