"""## What it does
Flags a lambda, a nested (local) function, or a `functools.partial` of either, passed
as the function to a process pool or a `ProcessPoolExecutor`.

## Why is this bad?
A process pool sends the function to its workers with `pickle`, which stores
functions by their importable, module-level name. Lambdas and functions defined
inside another function have no such name, so the call fails at run time with
`PicklingError` (or `AttributeError: Can't pickle local object`), often only on the
first real run, and with `imap` only when results are consumed. Thread pools do not
pickle and are not flagged.

## Example
```python
from multiprocessing import Pool

def main(paths):
    with Pool() as pool:
        sizes = pool.map(lambda p: len(open(p).read()), paths)
```

Use instead:
```python
def file_size(path):
    with open(path) as f:
        return len(f.read())

def main(paths):
    with Pool() as pool:
        sizes = pool.map(file_size, paths)
```

## Fix
None automatically: move the function to module level with `def` (and pass the
values it captured as arguments, or bind them with `functools.partial` of the
module-level function).
"""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Iterator
from functools import lru_cache

from amorsize_lsp.analysis.model import CallSite, FunctionKind, FunctionRef, ModuleAnalysis

from ._text import callee, friendly_executor, shorten
from .model import Finding, Need, RuleContext, Severity

CODE = "AMZ002"
NAME = "unpicklable-callable"
SEVERITY = Severity.ERROR
FIX = None
SUMMARY = "lambda or nested function passed to a process pool cannot be pickled"
NEEDS: frozenset[Need] = frozenset()


def _describe(ref: FunctionRef) -> str:
    if ref.kind is FunctionKind.LAMBDA:
        return "a lambda"
    if ref.kind is FunctionKind.NESTED_DEF:
        name = (ref.qualname or ref.text).replace(".<locals>", "")
        return f"the nested function `{shorten(name)}`"
    if ref.kind is FunctionKind.PARTIAL and ref.wrapped is not None:
        return f"`functools.partial` of {_describe(ref.wrapped)}"
    return f"`{shorten(ref.text)}`"


def _advice(ref: FunctionRef) -> str:
    inner = ref.wrapped if ref.kind is FunctionKind.PARTIAL and ref.wrapped else ref
    if inner.kind is FunctionKind.LAMBDA:
        return "define it with `def` at module level"
    return "move it to module level"


def _qualname(ref: FunctionRef) -> str:
    inner = ref.wrapped if ref.kind is FunctionKind.PARTIAL and ref.wrapped else ref
    if inner.qualname:
        return inner.qualname
    return "<lambda>" if inner.kind is FunctionKind.LAMBDA else inner.text


@lru_cache(maxsize=256)
def pickling_error(qualname: str) -> str:
    """The exception this Python raises when a worker is sent the function ``qualname``
    of a ``__main__`` script: found by pickling a stand-in, so it is exact for the
    running version (3.11 says ``PicklingError`` for a module-level lambda and
    ``AttributeError`` for a local object; other versions differ)."""

    def stand_in() -> None:
        pass

    stand_in.__qualname__ = qualname
    stand_in.__name__ = qualname.rsplit(".", 1)[-1]
    stand_in.__module__ = "__main__"
    try:
        pickle.dumps(stand_in)
    except Exception as exc:
        text = re.sub(r" at 0x[0-9a-f]+", "", str(exc))
        return f"{type(exc).__name__}: {text}"
    return "PicklingError"


def applies(site: CallSite) -> bool:
    return site.is_process and not site.function.picklable


def check(analysis: ModuleAnalysis, ctx: RuleContext) -> Iterator[Finding]:
    for site in analysis.callsites:
        if not applies(site):
            continue
        ref = site.function
        version = ".".join(map(str, sys.version_info[:2]))
        message = (
            f"`{callee(ctx.source, site.span)}` sends {_describe(ref)} to a "
            f"{friendly_executor(site.executor)}, but it cannot be pickled (Python {version} "
            f"raises `{pickling_error(_qualname(ref))}`); {_advice(ref)}"
        )
        yield Finding(
            code=CODE,
            name=NAME,
            message=message,
            path=analysis.path,
            span=site.span,
            severity=SEVERITY,
        )
