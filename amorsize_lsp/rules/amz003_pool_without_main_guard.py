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

import ast
from collections.abc import Iterator

from amorsize_lsp.analysis.model import ModuleAnalysis, PoolConstructor, Span

from ._text import friendly_executor, shorten, text_at
from .model import Applicability, Finding, Fix, RuleContext, Severity

CODE = "AMZ003"
NAME = "pool-without-main-guard"
SEVERITY = Severity.ERROR
FIX = Applicability.UNSAFE
SUMMARY = "process pool created at module level without a main guard"


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
    import libcst as cst

    index = ctor.statement_index
    if index is None:
        return None
    try:
        tree = ast.parse(source)
        module = cst.parse_module(source)
    except (SyntaxError, ValueError, cst.ParserSyntaxError):
        return None
    if index >= len(module.body) or len(tree.body) != len(module.body):
        return None
    if not _trailing_block_is_movable(tree, index):
        return None
    first, *rest = module.body[index:]
    moved = [first.with_changes(leading_lines=()), *rest]
    guard = cst.If(
        test=cst.parse_expression('__name__ == "__main__"'),
        body=cst.IndentedBlock(body=[s.visit(_blank_lines_unindented()) for s in moved]),
        leading_lines=first.leading_lines,
    )
    new_source = module.with_changes(body=[*module.body[:index], guard]).code
    edit = _single_edit(source, new_source)
    if edit is None:
        return None
    return Fix(
        Applicability.UNSAFE,
        'Wrap the module-level pool code in `if __name__ == "__main__":`',
        (edit,),
    )


def _blank_lines_unindented():
    """A transformer: blank lines moved into the guard stay empty, not indented."""
    import libcst as cst

    class BlankLinesUnindented(cst.CSTTransformer):
        def leave_EmptyLine(self, original: cst.EmptyLine, updated: cst.EmptyLine):
            if updated.comment is None:
                return updated.with_changes(indent=False, whitespace=cst.SimpleWhitespace(""))
            return updated

    return BlankLinesUnindented()


class _Loads(ast.NodeVisitor):
    """Names read inside function, lambda and class bodies anywhere in the module."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._depth = 0

    def _scoped(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _scoped

    def visit_Name(self, node: ast.Name) -> None:
        if self._depth and isinstance(node.ctx, ast.Load):
            self.names.add(node.id)


def _bound_names(stmt: ast.stmt) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _is_main_guard(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and "__name__" in {
        n.id for n in ast.walk(stmt.test) if isinstance(n, ast.Name)
    }


def _trailing_block_is_movable(tree: ast.Module, index: int) -> bool:
    block = tree.body[index:]
    for stmt in block:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return False
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                return False
        if _is_main_guard(stmt):
            return False
    loads = _Loads()
    loads.visit(tree)
    bound: set[str] = set()
    for stmt in block:
        bound |= _bound_names(stmt)
    return not (bound & loads.names)


def _single_edit(old: str, new: str):  # -> TextEdit | None
    """One edit replacing the differing middle of ``old`` with that of ``new``."""
    from amorsize_lsp.analysis.edits import TextEdit

    if old == new:
        return None
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    # Start edits at a line boundary so the replacement reads as whole lines.
    start = old.rfind("\n", 0, start) + 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return TextEdit(_span(old, start, end_old), new[start:end_new])


def _span(text: str, start: int, end: int) -> Span:
    def pos(offset: int) -> tuple[int, int]:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1)
        return line, column

    (line, column), (end_line, end_column) = pos(start), pos(end)
    return Span(line, column, end_line, end_column)
