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
Unsafe: removes the literal count, so the pool sizes itself to the cores of whatever
machine runs it (`None` takes its place when later positional arguments need it). It
never writes a number taken from the machine that runs the linter. It is unsafe
because the code then starts as many workers as the machine allows.

## Configuration
`[tool.amorsize] target-cores = N` (or `amorsize-lint --target-cores N`) names the
target machine's usable cores. Without it, `amorsize-lint` does not check worker
counts at all: findings must not depend on the machine that runs the linter, such as
a 2-core CI runner. The language server compares with the usable cores of the
editor's machine (CPU affinity and cgroup quota honoured) and reports at information
severity.
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


def applies(ctor: PoolConstructor, target_cores: int | None) -> bool:
    return (
        target_cores is not None
        and ctor.is_process
        and ctor.workers_value is not None
        and ctor.workers_value > target_cores
        and not ctor.expected_to_raise
    )


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    cores = ctx.target_cores
    if cores is None:
        return
    configured = ctx.target_cores_origin.startswith("target-cores")
    for ctor in analysis.constructors:
        if not applies(ctor, cores):
            continue
        assert ctor.workers_value is not None
        message = (
            f"`{shorten(text_at(ctx.source, ctor.span))}` starts "
            f"{plural(ctor.workers_value, 'worker process')}, but the target machine has "
            f"{plural(cores, 'usable core')} ({ctx.target_cores_origin}); use at most {cores}, "
            "or drop the count so the pool sizes itself"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.workers_span or ctor.span,
            severity=SEVERITY if configured else Severity.INFO,
            fix=_fix(ctx, ctor),
        )


def _fix(ctx: RuleContext, ctor: PoolConstructor) -> Fix | None:
    from amorsize_lsp.analysis.edits import EditError, clear_workers

    try:
        edits = clear_workers(ctx.source, ctor)
    except EditError:
        return None
    if not edits:
        return None
    return Fix(FIX, "Remove the worker count so the pool uses the usable cores", tuple(edits))
