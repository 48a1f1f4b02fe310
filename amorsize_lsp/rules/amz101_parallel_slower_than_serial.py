"""## What it does
Flags a pool-map call that is predicted to run slower than a plain loop: the
recommendation for this workload on this machine is serial, and the call's pool
reaches less than 0.9× the serial speed. It needs advice (measured, recorded,
shared, or a confident prediction); without one it reports nothing.

## Why is this bad?
When each item is cheap next to pickling it and sending it to a worker, the pool
spends its time on inter-process communication and start-up, and the parallel code
is slower than `map` in one process, while using more cores and memory.

## Example
```python
from multiprocessing import Pool

if __name__ == "__main__":
    with Pool(4) as pool:
        results = pool.map(str.upper, words)
```

Use instead:
```python
if __name__ == "__main__":
    results = list(map(str.upper, words))
```

## Fix
No automatic fix: removing the pool changes the structure of the code. The message
says how much time the builtin `map` saves.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import ModuleAnalysis

from ._advice import advice, best_pool_speedup, current_workers, speedup_at
from ._text import callee
from .model import Finding, Need, RuleContext, Severity

CODE = "AMZ101"
NAME = "parallel-slower-than-serial"
SEVERITY = Severity.WARNING
FIX = None
SUMMARY = "the pool is predicted slower than the builtin map"
NEEDS: frozenset[Need] = frozenset({Need.RECOMMENDATION})

#: Report when the best pool reaches less than this fraction of the serial speed.
MAX_SPEEDUP = 0.9


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for site in analysis.callsites:
        rec = advice(site, ctx)
        if rec is None or rec.use_pool:
            continue
        best = best_pool_speedup(rec)
        if best is None or best >= MAX_SPEEDUP:
            continue
        now = speedup_at(rec, current_workers(site, ctx)) or best
        serial = rec.serial_time_s
        saved = serial / now - serial if now > 0 else 0.0
        message = (
            f"`{callee(ctx.source, site.span)}` is predicted at ~{now:.1f}× the speed of a "
            f"plain loop ({rec.source}); use the builtin `map`, which saves about "
            f"{_seconds(saved)} per call"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=site.span,
            severity=SEVERITY,
        )


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.1f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.0f} ms"
    return f"{s * 1e6:.0f} µs"
