"""Minimal text edits that set a map call's ``chunksize`` or a pool's worker count.

The fixes of the rules, the CLI's ``--fix`` and the language server's code actions all
come through here. An edit replaces just the argument's value, or inserts just the new
argument, so comments and formatting around it survive. Setting a value that is
already there yields no edit, so fixes are idempotent.

Calls are located with libcst: the text under the call's span is parsed on its own
(parsing a whole module costs far more), and so is the result, so an edit that would
not parse is never returned. Lines are counted by ``\\n`` as everywhere in the
analysis; columns are code points, end exclusive.
"""

from __future__ import annotations

import ast

import libcst as cst

from .callsites import _argument
from .lines import line_starts, offset_of, position_of
from .model import (
    EXECUTOR_KINDS,
    PROCESS_EXECUTOR,
    THREAD_EXECUTOR,
    CallSite,
    EditError,
    PoolConstructor,
    Span,
    TextEdit,
    apply_edits,
)
from .positions import node_spans
from .pyast import parse_python
from .scopes import is_main_test
from .statements import parse_statement

__all__ = [
    "EditError",
    "TextEdit",
    "apply_edits",
    "clear_workers",
    "set_chunksize",
    "set_parameters",
    "set_workers",
    "source_parses",
    "wrap_in_main_guard",
]


def set_chunksize(source: str, site: CallSite, value: int) -> list[TextEdit]:
    """Edits that make ``site`` pass ``chunksize=value``; ``[]`` if it already does.

    Multiprocessing pool methods take chunksize as the third positional argument;
    ``Executor.map`` only by keyword (its third positional is another iterable).
    A missing argument is added as ``chunksize=value`` after the last argument, or
    before a ``**kwargs``. Should a ``*args`` or ``**kwargs`` already carry a chunksize
    the edit cannot see, Python rejects the call loudly ("got multiple values").
    """
    _check_value(value, "chunksize")
    index = None if _is_executor(site.executor) else 2
    return _set_argument(source, site.span, index, "chunksize", value, "call")


def set_workers(source: str, ctor: PoolConstructor, value: int) -> list[TextEdit]:
    """Edits that make the constructor ``ctor`` create ``value`` workers; ``[]`` if it does.

    The worker count is the first positional argument of every pool and executor;
    by keyword it is ``processes`` for multiprocessing pools and ``max_workers`` for
    ``concurrent.futures`` executors.
    """
    _check_value(value, "worker count")
    keyword = "max_workers" if _is_executor(ctor.executor) else "processes"
    return _set_argument(source, ctor.span, 0, keyword, value, "pool constructor")


def set_parameters(
    source: str,
    site: CallSite,
    *,
    chunksize: int | None = None,
    workers: int | None = None,
) -> list[TextEdit]:
    """Edits for chunksize and/or the worker count of ``site``'s constructor, together."""
    edits: list[TextEdit] = []
    if chunksize is not None:
        edits += set_chunksize(source, site, chunksize)
    if workers is not None:
        if site.constructor is None:
            raise EditError(
                f"call at {site.span.where()} has no known pool constructor to set workers on"
            )
        edits += set_workers(source, site.constructor, workers)
    apply_edits(source, edits)  # raises on overlap
    return edits


# --------------------------------------------------------------------------- internals


def _check_value(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EditError(f"{what} must be a positive integer, not {value!r}")


def _is_executor(executor: str | None) -> bool:
    """Whether arguments follow ``concurrent.futures.Executor`` rather than a pool.

    Unknown receivers are pools: only pool-specific methods are reported without one.
    """
    if executor is None:
        return False
    kind = EXECUTOR_KINDS.get(executor)
    if kind is not None:
        return kind in (PROCESS_EXECUTOR, THREAD_EXECUTOR)
    return executor.startswith("concurrent.futures.")


def _set_argument(
    source: str, span: Span, index: int | None, keyword: str, value: int, what: str
) -> list[TextEdit]:
    """Edits that make the call under ``span`` pass ``value`` for one parameter.

    ``index`` is the parameter's positional index (None: keyword-only).
    """
    snippet = _slice(source, span, what)
    module, call = _parse_call(snippet, span, what)
    arg = _argument(call, index, keyword)
    if arg is not None:
        if _int_value(arg.value) == value:
            return []
        edit = (node_spans(module, [arg.value])[id(arg.value)], str(value))
    else:
        starts = line_starts(source)
        lead = source[starts[span.line - 1] : starts[span.line - 1] + span.column]
        edit = _insertion(snippet, lead, module, call, f"{keyword}={value}")
    new_snippet = apply_edits(snippet, [TextEdit(*edit)])
    _verify(new_snippet, index, keyword, value, span, what)
    return [TextEdit(_absolute(edit[0], span), edit[1])]


def _int_value(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        value = node.evaluated_value
        return value if isinstance(value, int) else None
    return None


def _insertion(
    snippet: str, lead: str, module: cst.Module, call: cst.Call, text: str
) -> tuple[Span, str]:
    """Where and what to insert so that ``call`` gains the keyword argument ``text``.

    After the last argument, but before ``**kwargs``, where keywords conventionally
    go; right after ``(`` when there are no arguments. When the call ends with a
    trailing comma and the closing paren on a later line, the argument goes on a line
    of its own, indented like the line of that comma. ``lead`` is the source text
    before the call on its first line.
    """
    args = call.args
    double_star = next((a for a in args if a.star == "**"), None)
    if double_star is not None:
        start = node_spans(module, [double_star])[id(double_star)]
        return _point(start.line, start.column), f"{text}, "
    if not args:
        return _after_open_paren(snippet, module, call), text
    last = args[-1]
    spans = node_spans(module, [last, last.comma])
    last_span = spans[id(last)]
    if isinstance(last.comma, cst.Comma):
        comma = spans[id(last.comma)]
        lines = snippet.split("\n")
        if comma.end_line < len(lines):  # trailing comma, closing paren on a later line
            line = lines[comma.end_line - 1]
            end = len(line) - 1 if line.endswith("\r") else len(line)
            newline = "\r\n" if line.endswith("\r") else "\n"
            full = lead + line if comma.end_line == 1 else line
            indent = full[: len(full) - len(full.lstrip(" \t"))]
            return _point(comma.end_line, end), f"{newline}{indent}{text},"
    return _point(last_span.end_line, last_span.end_column), f", {text}"


def _after_open_paren(snippet: str, module: cst.Module, call: cst.Call) -> Span:
    """Just after the ``(`` of an argument-less call."""
    func = node_spans(module, [call.func])[id(call.func)]
    starts = line_starts(snippet)
    pos = offset_of(snippet, starts, func.end_line, func.end_column)
    while pos < len(snippet) and snippet[pos] != "(":  # only whitespace lies between
        pos += 1
    return _point(*position_of(snippet, pos + 1))


def _point(line: int, column: int) -> Span:
    return Span(line, column, line, column)


def _parse_call(snippet: str, span: Span, what: str) -> tuple[cst.Module, cst.Call]:
    """Parse the text under a call's span on its own; it must be exactly one call."""
    stale = f"the {what} at {span.where()} is not a call any more; re-run the analysis"
    try:
        module = parse_statement(snippet)  # memoised: a re-check asks again for the same call
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        raise EditError(stale) from None
    if len(module.body) != 1 or not isinstance(module.body[0], cst.SimpleStatementLine):
        raise EditError(stale)
    line = module.body[0]
    if len(line.body) != 1 or not isinstance(line.body[0], cst.Expr):
        raise EditError(stale)
    call = line.body[0].value
    if not isinstance(call, cst.Call) or module.header or module.footer:
        raise EditError(stale)
    return module, call


def _verify(
    new_snippet: str, index: int | None, keyword: str, value: int, span: Span, what: str
) -> None:
    """Check the edited call parses and now passes ``value``; never hand out a broken edit."""
    try:
        _, call = _parse_call(new_snippet, span, what)
    except EditError:
        raise EditError(
            f"setting {keyword} on the {what} at {span.where()} would not parse"
        ) from None
    arg = _argument(call, index, keyword)
    if arg is None or _int_value(arg.value) != value:
        raise EditError(f"could not set {keyword}={value} on the {what} at {span.where()}")


def _absolute(rel: Span, origin: Span) -> Span:
    """Translate a span inside the snippet starting at ``origin`` to source positions."""

    def shift(line: int, column: int) -> tuple[int, int]:
        return origin.line + line - 1, column + (origin.column if line == 1 else 0)

    return Span(*shift(rel.line, rel.column), *shift(rel.end_line, rel.end_column))


def _slice(source: str, span: Span, what: str) -> str:
    starts = line_starts(source)
    try:
        start = offset_of(source, starts, span.line, span.column)
        end = offset_of(source, starts, span.end_line, span.end_column)
    except ValueError:
        raise EditError(
            f"the {what} at {span.where()} lies outside the source; re-run the analysis"
        ) from None
    if end <= start:
        raise EditError(f"the {what} at {span.where()} is empty; re-run the analysis")
    return source[start:end]


# --------------------------------------------------------------------------- main guard


def wrap_in_main_guard(source: str, statement_index: int) -> TextEdit | None:
    """The edit that moves module statements ``statement_index``.. under a main guard.

    None when that would change what the module means to its workers: the block
    defines a function or class, holds a ``__future__`` import or a main guard of its
    own, or binds a name that a function, lambda or class body elsewhere reads (worker
    processes would no longer see it). Statements are re-indented by libcst, so the
    contents of multi-line strings are left as they were.
    """
    try:
        tree = parse_python(source)  # the analysis's tree of this text, when it has one
        # Offsets are counted on the text with a final newline: libcst generates the
        # statements before the block one character short without it, and the guard
        # would be glued to the end of the previous line. Only the end differs.
        module = cst.parse_module(source if source.endswith(("\n", "\r")) else source + "\n")
    except (SyntaxError, ValueError, RecursionError, MemoryError, cst.ParserSyntaxError):
        return None
    if not 0 <= statement_index < len(module.body) or len(tree.body) != len(module.body):
        return None
    block = module.body[statement_index:]
    if any(isinstance(s, cst.If) and is_main_test(s.test) for s in block):
        return None
    if not _movable(tree, statement_index):
        return None
    first, *rest = block
    guard = cst.If(
        test=cst.parse_expression('__name__ == "__main__"'),
        body=cst.IndentedBlock(
            body=[
                s.visit(_BlankLinesUnindented())
                for s in (first.with_changes(leading_lines=()), *rest)
            ]
        ),
        leading_lines=first.leading_lines,
    )
    start = sum(
        len(module.code_for_node(n)) for n in (*module.header, *module.body[:statement_index])
    )
    end = min(len(source), start + sum(len(module.code_for_node(s)) for s in block))
    span = Span(*position_of(source, start), *position_of(source, end))
    new_text = module.code_for_node(guard)
    if source[start:end] == new_text:
        return None
    return TextEdit(span, new_text)


class _BlankLinesUnindented(cst.CSTTransformer):
    """Blank lines moved into the guard stay empty rather than indented."""

    def leave_EmptyLine(self, original: cst.EmptyLine, updated: cst.EmptyLine) -> cst.EmptyLine:
        if updated.comment is None:
            return updated.with_changes(indent=False, whitespace=cst.SimpleWhitespace(""))
        return updated


def _movable(tree: ast.Module, index: int) -> bool:
    """No def, class or ``__future__`` import moves, and no moved name is read elsewhere."""
    block = tree.body[index:]
    for stmt in block:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return False
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                return False
    bound: set[str] = set()
    for stmt in block:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                bound.add(node.id)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
    return not (bound & _names_read_in_bodies(tree))


def _names_read_in_bodies(tree: ast.Module) -> set[str]:
    """Names read inside function, lambda and class bodies anywhere in the module."""
    names: set[str] = set()
    scoped = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    for node in ast.walk(tree):
        if isinstance(node, scoped):
            names.update(
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            )
    return names


def source_parses(text: str) -> bool:
    """Whether libcst parses ``text``: every fix is checked with this before it is written."""
    try:
        cst.parse_module(text)
    except Exception:  # ParserSyntaxError, and rarely others from the native parser
        return False
    return True


def clear_workers(source: str, ctor: PoolConstructor) -> list[TextEdit]:
    """Edits that drop the constructor's worker count so the pool sizes itself.

    The argument is removed; when later positional arguments need its place, it
    becomes ``None`` (every pool and executor reads None as "use the usable cores").
    ``[]`` when the constructor passes no worker count.
    """
    keyword = "max_workers" if _is_executor(ctor.executor) else "processes"
    snippet = _slice(source, ctor.span, "pool constructor")
    module, call = _parse_call(snippet, ctor.span, "pool constructor")
    arg = _argument(call, 0, keyword)
    if arg is None:
        return []
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if arg.keyword is None and len(positional) > 1:
        new_call = call.with_changes(
            args=[a.with_changes(value=cst.Name("None")) if a is arg else a for a in call.args]
        )
    else:
        rest = [a for a in call.args if a is not arg]
        if rest and arg is call.args[-1]:
            rest[-1] = rest[-1].with_changes(comma=arg.comma)
        new_call = call.with_changes(args=rest)
    new_snippet = module.code_for_node(new_call)
    try:
        _, checked = _parse_call(new_snippet, ctor.span, "pool constructor")
    except EditError:
        raise EditError(
            f"removing the worker count of the pool constructor at {ctor.span.where()} "
            "would not parse"
        ) from None
    remaining = _argument(checked, 0, keyword)
    if remaining is not None and not (
        isinstance(remaining.value, cst.Name) and remaining.value.value == "None"
    ):
        raise EditError(f"could not remove the worker count at {ctor.span.where()}")
    return [TextEdit(ctor.span, new_snippet)]
