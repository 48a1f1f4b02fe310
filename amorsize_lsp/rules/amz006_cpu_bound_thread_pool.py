"""## What it does
Flags a function mapped over a thread pool (`ThreadPoolExecutor`,
`multiprocessing.pool.ThreadPool`, `multiprocessing.dummy.Pool`) when its compiled
bytecode shows pure-Python loops and no blocking I/O. The bytecode is read from the
source, never executed.

## Why is this bad?
On a standard CPython build the global interpreter lock lets only one thread run
Python bytecode at a time. A CPU-bound pure-Python function gains nothing from a
thread pool: its items run one after another, plus the cost of switching threads.
Threads help only when the work waits (file, network, `time.sleep`, subprocesses)
or runs in C code that releases the GIL.

The rule is off on free-threaded builds (`sys._is_gil_enabled()` returns False),
where threads do run Python code in parallel.

## Example
```python
from concurrent.futures import ThreadPoolExecutor

def checksum(block):
    total = 0
    for byte in block:
        total = (total * 31 + byte) % 1_000_003
    return total

with ThreadPoolExecutor() as executor:
    sums = list(executor.map(checksum, blocks))
```

Use instead:
```python
from concurrent.futures import ProcessPoolExecutor

if __name__ == "__main__":
    with ProcessPoolExecutor() as executor:
        sums = list(executor.map(checksum, blocks, chunksize=16))
```

## Fix
None automatically: switching to processes changes picklability and start-up cost,
so it needs review. Use `ProcessPoolExecutor` or `multiprocessing.Pool`.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import CallSite, ModuleAnalysis

from ._text import callee, friendly_executor, shorten
from .model import Finding, Need, RuleContext, Severity

CODE = "AMZ006"
NAME = "cpu-bound-thread-pool"
SEVERITY = Severity.WARNING
FIX = None
SUMMARY = "CPU-bound pure-Python function mapped over a thread pool (GIL)"
NEEDS: frozenset[Need] = frozenset({Need.COMPLEXITY})


def applies(site: CallSite) -> bool:
    cx = site.complexity
    if not site.is_thread or cx is None or not getattr(cx, "resolved", False):
        return False
    return cx.loop_count > 0 and not cx.blocking_io


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    if not ctx.gil_enabled:
        return
    for site in analysis.callsites:
        if not applies(site):
            continue
        cx = site.complexity
        depth = getattr(cx, "max_loop_depth", 0) or 0
        loops = "a pure-Python loop" if cx.loop_count == 1 else f"{cx.loop_count} pure-Python loops"
        nesting = f" nested {depth} deep" if depth > 1 else ""
        message = (
            f"`{callee(ctx.source, site.span)}` maps `{shorten(site.function.text)}`, which runs "
            f"{loops}{nesting} with no blocking I/O, over a {friendly_executor(site.executor)}: "
            "the GIL lets one item run at a time; use a process pool such as "
            "ProcessPoolExecutor instead"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=site.span,
            severity=SEVERITY,
        )
