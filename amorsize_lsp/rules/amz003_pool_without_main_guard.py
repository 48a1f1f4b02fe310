"""## What it does
Flags a process pool or `ProcessPoolExecutor` created at module level, outside an
`if __name__ == "__main__":` block.

## Why is this bad?
Under the `spawn` and `forkserver` start methods every worker process starts by
importing the main module. A pool created at import time then tries to start its own
workers from inside a worker: multiprocessing raises `RuntimeError` ("An attempt has
been made to start a new process before the current process has finished its
bootstrapping phase"), or the module's side effects run once per worker. `spawn` is
the default on macOS and Windows, and `forkserver` on Linux from Python 3.14, so code
that works on a Linux laptop today breaks elsewhere. A pool whose start method is
explicitly `fork` is not flagged.

## Example
```python
from multiprocessing import Pool

def square(x):
    return x * x

pool = Pool(4)
print(pool.map(square, range(100)))
pool.close()
```

Use instead:
```python
if __name__ == "__main__":
    pool = Pool(4)
    print(pool.map(square, range(100)))
    pool.close()
```

The same holds when the pool is created inside a function of the module that a
module-level call runs at import (`main()` at the bottom of a script, without a
guard): the finding is then reported at that call, with the pool's location as
related information.

## Fix
Unsafe: wraps the module-level statements from the pool's creation to the end of the
file in `if __name__ == "__main__":`. It is offered only when those statements form a
trailing block that defines no function or class and binds no name that a function
elsewhere in the module reads, because worker processes would no longer see those
names. It is unsafe because the wrapped code no longer runs when the module is
imported.
"""

from __future__ import annotations

from collections.abc import Iterator

from amorsize_lsp.analysis.model import ModuleAnalysis, PoolConstructor

from ._text import friendly_executor, shorten, text_at
from .model import Applicability, Finding, Fix, Need, Related, RuleContext, Severity

CODE = "AMZ003"
NAME = "pool-without-main-guard"
SEVERITY = Severity.ERROR
FIX = Applicability.UNSAFE
SUMMARY = "process pool created at module level without a main guard"
NEEDS: frozenset[Need] = frozenset()


def applies(ctor: PoolConstructor) -> bool:
    return (
        ctor.is_process
        and ctor.module_level
        and not ctor.main_guarded
        and ctor.start_method != "fork"
    )


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for ctor in analysis.constructors:
        if not applies(ctor):
            continue
        what = shorten(text_at(ctx.source, ctor.span))
        message = (
            f"`{what}` creates a {friendly_executor(ctor.executor)} at module level without "
            f"{_GUARD}; {_CONSEQUENCE}; move the pool code under a main guard"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.span,
            severity=SEVERITY,
            fix=guard_fix(ctx.source, ctor.statement_index),
        )
    yield from _through_calls(analysis, ctx)


_GUARD = '`if __name__ == "__main__":`'
_CONSEQUENCE = (
    "under spawn (macOS, Windows) and forkserver (Linux from Python 3.14) each worker "
    "re-imports this module and fails"
)


def _through_calls(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    """Pools created in a function that a module-level call runs at import."""
    from amorsize_lsp.analysis.import_time import import_time_calls

    inner = {
        c.span.line: c
        for c in analysis.constructors
        if c.is_process and not c.module_level and c.start_method != "fork"
    }
    for call in import_time_calls(ctx.source, inner):
        ctor = inner[call.target_line]
        chain = " → ".join(f"{name}()" for name in call.chain)
        pool = friendly_executor(ctor.executor)
        message = (
            f"`{shorten(text_at(ctx.source, call.span))}` runs at import without {_GUARD} and "
            f"creates a {pool} (via {chain}); {_CONSEQUENCE}; "
            "call it under a main guard"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=call.span,
            severity=SEVERITY,
            fix=guard_fix(ctx.source, call.statement_index),
            related=(Related(ctor.span, f"the {pool} is created here"),),
        )


def guard_fix(source: str, statement_index: int | None) -> Fix | None:
    """Wrap the trailing block of module statements from ``statement_index`` on in a
    main guard."""
    from amorsize_lsp.analysis.edits import wrap_in_main_guard

    if statement_index is None:
        return None
    edit = wrap_in_main_guard(source, statement_index)
    if edit is None:
        return None
    return Fix(
        Applicability.UNSAFE,
        'Wrap the module-level pool code in `if __name__ == "__main__":`',
        (edit,),
    )
