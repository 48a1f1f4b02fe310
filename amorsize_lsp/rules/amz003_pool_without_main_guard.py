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
from .model import Applicability, Finding, Fix, Need, RuleContext, Severity

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
            '`if __name__ == "__main__":`; under spawn (macOS, Windows) and forkserver '
            "(Linux from Python 3.14) each worker re-imports this module and fails; move the "
            "pool code under a main guard"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=ctor.span,
            severity=SEVERITY,
            fix=guard_fix(ctx.source, ctor),
        )


def guard_fix(source: str, ctor: PoolConstructor) -> Fix | None:
    """Wrap the trailing block of module statements from the pool on in a main guard."""
    from amorsize_lsp.analysis.edits import wrap_in_main_guard

    if ctor.statement_index is None:
        return None
    edit = wrap_in_main_guard(source, ctor.statement_index)
    if edit is None:
        return None
    return Fix(
        Applicability.UNSAFE,
        'Wrap the module-level pool code in `if __name__ == "__main__":`',
        (edit,),
    )
