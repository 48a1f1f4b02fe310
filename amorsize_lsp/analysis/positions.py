"""Source positions for a chosen few libcst nodes.

libcst's ``PositionProvider`` records a range for every node of the module, which
costs about twice the parse itself. The analysis reports a handful of nodes per
file, so this runs one code generation pass that tracks line and column and
records only the requested nodes. Ranges match ``PositionProvider`` (syntactic
positions: parentheses and surrounding whitespace excluded).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import libcst as cst
from libcst._nodes.internal import CodegenState

from .model import Span


class _AllFound(Exception):
    """Stops code generation once every requested node has its span."""


@dataclass(frozen=False)
class _TrackingState(CodegenState):
    targets: frozenset[int] = frozenset()
    line: int = 1
    column: int = 0
    found: dict[int, Span] = field(default_factory=dict)

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        # Tokens are not kept: only the running position matters here.
        newlines = value.count("\n")
        if newlines:
            self.line += newlines
            self.column = len(value) - value.rindex("\n") - 1
        else:
            self.column += len(value)

    def pop_trailing_newline(self) -> None:
        pass

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        if id(node) not in self.targets:
            yield
            return
        line, column = self.line, self.column
        try:
            yield
        finally:
            start = self.found.get(id(start_node)) if start_node is not None else None
            end = self.found.get(id(end_node)) if end_node is not None else None
            self.found[id(node)] = Span(
                start.line if start else line,
                start.column if start else column,
                end.end_line if end else self.line,
                end.end_column if end else self.column,
            )
            if len(self.found) == len(self.targets):
                raise _AllFound


#: Spans by (module, nodes asked): parsed statements are memoised by text, so an editor's
#: re-check asks again about the very same nodes. The module is kept with its entry, so
#: its id (and its nodes' ids) cannot be reused while the entry lives.
_SPANS: OrderedDict[tuple[int, frozenset[int]], tuple[cst.Module, dict[int, Span]]] = OrderedDict()
_SPANS_SIZE = 4096


def node_spans(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, Span]:
    """Map ``id(node)`` to its span for each of ``nodes`` (all must belong to ``module``)."""
    targets = frozenset(id(n) for n in nodes)
    if not targets:
        return {}
    key = (id(module), targets)
    hit = _SPANS.get(key)
    if hit is not None and hit[0] is module:
        _SPANS.move_to_end(key)
        return dict(hit[1])
    state = _TrackingState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        targets=targets,
    )
    with contextlib.suppress(_AllFound):
        module._codegen(state)
    _SPANS[key] = (module, dict(state.found))
    if len(_SPANS) > _SPANS_SIZE:
        _SPANS.popitem(last=False)
    return state.found
