"""What runs when a module is imported: module-level calls of the module's own functions,
followed transitively, so that a pool created inside ``main()`` is traced back to an
unguarded ``main()`` call (AMZ003 across a call).

Plain ``ast`` is enough here: only names of top-level functions are followed, and the
main-guard test is the analysis's one detector (:func:`scopes.is_main_test`).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libcst as cst

from .model import Span
from .pyast import parse_python
from .scopes import is_main_test

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True, slots=True)
class ImportTimeCall:
    """A module-level call that, at import, reaches a function creating a pool."""

    #: The call at module level (``main()``), code-point columns.
    span: Span
    #: Index of the module statement holding the call (for the main-guard fix).
    statement_index: int
    #: Functions called on the way, from the one called at module level to the one
    #: that creates the pool.
    chain: tuple[str, ...]
    #: Line of the pool constructor reached.
    target_line: int


def import_time_calls(source: str, pool_lines: Iterable[int]) -> list[ImportTimeCall]:
    """Module-level calls outside a main guard that reach a pool created on ``pool_lines``.

    ``pool_lines`` are the first lines of pool constructors inside functions. A
    constructor counts for the top-level function it is directly in (not a nested
    def, which a call does not run by itself). Returns [] for text ``ast`` rejects.
    """
    lines = sorted(set(pool_lines))
    if not lines:
        return []
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {
        node.name: node for node in tree.body if isinstance(node, _DEFS)
    }
    if not defs:
        return []
    text_lines = source.split("\n")
    # Module-level calls of the module's functions first: most modules make none
    # outside a main guard, and then no function body needs reading.
    starts = [
        (index, call)
        for index, stmt in enumerate(tree.body)
        if not isinstance(stmt, (*_DEFS, ast.ClassDef)) and not _is_main_guard(text_lines, stmt)
        for call in _calls_in(stmt)
        if call.func.id in defs  # type: ignore[attr-defined]
    ]
    if not starts:
        return []
    creates = _pool_owners(tree, defs, lines)
    if not creates:
        return []
    graph = _CallGraph(defs)
    found: list[ImportTimeCall] = []
    for index, call in starts:
        assert isinstance(call.func, ast.Name)
        path = _path_to_pool(call.func.id, graph, creates)
        if path is None:
            continue
        found.append(ImportTimeCall(_span(call, text_lines), index, path, creates[path[-1]]))
    return found


class _CallGraph:
    """Top-level function -> the top-level functions it calls, read on first ask."""

    def __init__(self, defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> None:
        self.defs = defs
        self.edges: dict[str, set[str]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.defs

    def get(self, name: str, default: Iterable[str] = ()) -> Iterable[str]:
        node = self.defs.get(name)
        if node is None:
            return default
        if name not in self.edges:
            self.edges[name] = _called_defs(node.body, self.defs, _params(node))
        return self.edges[name]


def _pool_owners(
    tree: ast.Module, defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef], lines: list[int]
) -> dict[str, int]:
    """Top-level function name -> first pool line it creates directly."""
    owners: dict[str, int] = {}
    nested = [n for d in defs.values() for n in ast.walk(d) if isinstance(n, _SCOPES)]
    for line in lines:
        innermost = None
        for node in nested:
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and (
                innermost is None or node.lineno >= innermost.lineno
            ):
                innermost = node
        if isinstance(innermost, _DEFS) and defs.get(innermost.name) is innermost:
            owners.setdefault(innermost.name, line)
    return owners


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _called_defs(body: list[ast.stmt], defs: dict[str, ast.AST], shadowed: set[str]) -> set[str]:
    """Top-level functions called by name in ``body`` (nested scopes excluded)."""
    stores = {
        n.id
        for stmt in body
        for n in _walk_scope(stmt)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    hidden = shadowed | stores
    return {
        call.func.id  # type: ignore[attr-defined]
        for stmt in body
        for call in _calls_in(stmt)
        if call.func.id in defs and call.func.id not in hidden  # type: ignore[attr-defined]
    }


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that does not enter nested functions, lambdas or classes."""
    todo = deque([node])
    while todo:
        current = todo.popleft()
        yield current
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, _SCOPES):
                todo.append(child)


def _calls_in(stmt: ast.stmt) -> Iterator[ast.Call]:
    for node in _walk_scope(stmt):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield node


def _path_to_pool(start: str, graph: _CallGraph, creates: dict[str, int]) -> tuple[str, ...] | None:
    """The shortest chain of calls from ``start`` to a function that creates a pool."""
    if start not in graph:
        return None
    previous: dict[str, str | None] = {start: None}
    todo = deque([start])
    while todo:
        name = todo.popleft()
        if name in creates:
            chain = [name]
            while previous[chain[-1]] is not None:
                chain.append(previous[chain[-1]])  # type: ignore[arg-type]
            return tuple(reversed(chain))
        for callee in sorted(graph.get(name, ())):
            if callee not in previous:
                previous[callee] = name
                todo.append(callee)
    return None


def _is_main_guard(lines: list[str], stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If):
        return False
    test = stmt.test
    if not any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(test)):
        return False
    text = _segment(lines, test)
    try:
        return is_main_test(cst.parse_expression(text))
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return False


def _segment(lines: list[str], node: ast.expr) -> str:
    """The source text of ``node`` (``ast.get_source_segment`` without re-splitting)."""
    span = _span(node, lines)
    if span.line == span.end_line:
        return lines[span.line - 1][span.column : span.end_column]
    middle = lines[span.line : span.end_line - 1]
    return "\n".join(
        [lines[span.line - 1][span.column :], *middle, lines[span.end_line - 1][: span.end_column]]
    )


def _span(node: ast.expr, lines: list[str]) -> Span:
    """``ast`` columns are UTF-8 byte offsets; spans use code points."""

    def column(line: int, byte_offset: int) -> int:
        return len(lines[line - 1].encode("utf-8")[:byte_offset].decode("utf-8", "replace"))

    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
    return Span(
        node.lineno, column(node.lineno, node.col_offset), end_line, column(end_line, end_col)
    )
