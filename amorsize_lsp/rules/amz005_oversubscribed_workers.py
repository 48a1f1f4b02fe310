"""## What it does
Flags a literal worker count for a process pool or `ProcessPoolExecutor` that is
larger than the usable cores of the target machine.

## Why is this bad?
CPU-bound worker processes beyond the number of cores do not run any faster: they
take turns on the same cores, adding context switches, memory for extra interpreters,
and start-up time. On CI runners and containers the usable cores (CPU affinity and
cgroup quota) are often far fewer than `os.cpu_count()` reports, so a count tuned on
a workstation oversubscribes production. Thread pools are exempt: oversubscribing
them is normal for I/O-bound work.

## Example
```python
from multiprocessing import Pool

if __name__ == "__main__":
    with Pool(processes=32) as pool:
        pool.map(render, frames)
```

Use instead (on a 4-core target):
```python
if __name__ == "__main__":
    with Pool(processes=4) as pool:
        pool.map(render, frames)
```

## Fix
Unsafe: clamps the count to the usable cores. It is unsafe because the right count
depends on the machine the code will run on, which may not be this one.

## Configuration
`[tool.amorsize] target-cores = N` sets the target machine's core count; without it,
this machine's usable cores are counted, honouring CPU affinity and the cgroup quota.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import ModuleAnalysis, PoolConstructor

from ._text import plural, shorten, text_at
from .model import Applicability, Finding, Fix, Need, RuleContext, Severity

CODE = "AMZ005"
NAME = "oversubscribed-workers"
SEVERITY = Severity.WARNING
FIX = Applicability.UNSAFE
SUMMARY = "literal worker count above the target machine's usable cores"
NEEDS: frozenset[Need] = frozenset()


def applies(ctor: PoolConstructor, target_cores: int) -> bool:
    return ctor.is_process and ctor.workers_value is not None and ctor.workers_value > target_cores


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    cores = ctx.target_cores
    for ctor in analysis.constructors:
        if not applies(ctor, cores):
            continue
        assert ctor.workers_value is not None
        message = (
            f"`{shorten(text_at(ctx.source, ctor.span))}` starts "
            f"{plural(ctor.workers_value, 'worker process')}, but the target machine has "
            f"{plural(cores, 'usable core')} ({ctx.target_cores_origin}); use at most {cores}"
            + (
                ""
                if ctx.target_cores_origin.startswith("target-cores")
                else ", or set `target-cores` in [tool.amorsize] for the machine it runs on"
            )
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.workers_span or ctor.span,
            severity=SEVERITY,
            fix=_fix(ctx, ctor, cores),
        )


def _fix(ctx: RuleContext, ctor: PoolConstructor, cores: int) -> Fix | None:
    from amorsize_lsp.analysis.edits import EditError, set_workers

    try:
        edits = set_workers(ctx.source, ctor, cores)
    except EditError:
        return None
    if not edits:
        return None
    return Fix(FIX, f"Clamp the worker count to {plural(cores, 'usable core')}", tuple(edits))
