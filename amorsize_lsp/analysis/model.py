"""The analysis's data model: what a pool-map call site is, as every later part sees it.

Positions follow libcst: lines are 1-based, columns are 0-based code-point offsets
into the line. Presentation layers convert (the CLI adds 1 to columns, the language
server goes through its position codec for UTF-16 clients).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .lines import line_starts, offset_of

if TYPE_CHECKING:
    from .bytecode import Complexity

PROCESS_POOL = "process_pool"
THREAD_POOL = "thread_pool"
PROCESS_EXECUTOR = "process_executor"
THREAD_EXECUTOR = "thread_executor"

#: Qualified pool class -> executor kind, the vocabulary the engine and rules share.
EXECUTOR_KINDS: dict[str, str] = {
    "multiprocessing.pool.Pool": PROCESS_POOL,
    "torch.multiprocessing.Pool": PROCESS_POOL,
    "multiprocessing.pool.ThreadPool": THREAD_POOL,
    "concurrent.futures.ProcessPoolExecutor": PROCESS_EXECUTOR,
    "concurrent.futures.ThreadPoolExecutor": THREAD_EXECUTOR,
}

#: Methods that only pools have; reported even when the receiver is unknown.
POOL_SPECIFIC_METHODS = frozenset(
    {"imap", "imap_unordered", "starmap", "map_async", "starmap_async"}
)
POOL_METHODS = POOL_SPECIFIC_METHODS | {"map"}
#: A call of a pool-only method, as a regular expression over source text: the dot and
#: the name may be split by whitespace and line continuations. Shared by the file
#: prefilter (``driver.py``) and the statement selection (``statements.py``).
POOL_ONLY_CALL = r"\.\s*(?:\\\s*)*(?:imap|imap_unordered|starmap|map_async|starmap_async)\b"


class AnalysisError(Exception):
    """A file could not be analysed (syntax error, undecodable, too large).

    The only exception type that the analysis lets escape for bad input.
    """

    def __init__(self, path: str, message: str, line: int = 1, column: int = 0) -> None:
        super().__init__(f"{path}:{line}:{column + 1}: {message}")
        self.path = path
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Span:
    """A source range: 1-based lines, 0-based code-point columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def where(self) -> str:
        """``line:column`` with a 1-based column, as messages show positions."""
        return f"{self.line}:{self.column + 1}"


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace the text under ``span`` with ``new_text`` (an empty span inserts).

    The one edit type of the project: fixes, suppressions and the server's code
    actions all carry these, so none of them needs the parser to describe a change.
    """

    span: Span
    new_text: str


class EditError(ValueError):
    """An edit cannot be made safely, and the source is left as it was.

    Raised when the value is not a positive int, when a span no longer covers a call
    (the source changed since it was analysed), when edits overlap or fall outside the
    source, and when the edited code would not parse.
    """


def apply_edits(source: str, edits: Sequence[TextEdit]) -> str:
    """``source`` with ``edits`` applied; their spans refer to the original text.

    Edits must not overlap; insertions at one place go in the order given.
    """
    starts = line_starts(source)
    located = []
    for n, e in enumerate(edits):
        try:
            start = offset_of(source, starts, e.span.line, e.span.column)
            end = offset_of(source, starts, e.span.end_line, e.span.end_column)
        except ValueError as exc:
            raise EditError(f"edit at {e.span.where()}: {exc}") from None
        located.append((start, end, n, e))
    located.sort(key=lambda item: item[:3])
    out: list[str] = []
    cursor = 0
    for start, end, _, edit in located:
        if end < start:
            raise EditError(f"edit at {edit.span.where()} ends before it starts")
        if start < cursor:
            raise EditError(f"edit at {edit.span.where()} overlaps another edit")
        out.append(source[cursor:start])
        out.append(edit.new_text)
        cursor = end
    out.append(source[cursor:])
    return "".join(out)


class FunctionKind(str, Enum):
    """What the mapped callable resolves to; it decides picklability and sampling."""

    MODULE_DEF = "module_def"
    NESTED_DEF = "nested_def"
    LAMBDA = "lambda"
    PARTIAL = "partial"
    BOUND_METHOD = "bound_method"
    STATICMETHOD = "staticmethod"
    BUILTIN = "builtin"
    IMPORTED = "imported"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """The mapped callable argument."""

    text: str
    kind: FunctionKind
    #: Qualname inside this module (defs, methods), or dotted module path for imports.
    qualname: str | None = None
    #: For ``functools.partial``: what the wrapped callable resolves to.
    wrapped: FunctionRef | None = None
    span: Span | None = None

    @property
    def picklable(self) -> bool:
        """Whether the standard pickler can send this callable to a worker process."""
        if self.kind in (FunctionKind.LAMBDA, FunctionKind.NESTED_DEF):
            return False
        if self.kind is FunctionKind.PARTIAL and self.wrapped is not None:
            return self.wrapped.picklable
        return True


@dataclass(slots=True)
class PoolConstructor:
    """Where a pool or executor is created, and how its lifetime is handled."""

    executor: str
    span: Span
    start_method: str | None = None
    #: Worker count argument as source text, its range and literal value if any.
    workers: str | None = None
    workers_span: Span | None = None
    workers_value: int | None = None
    in_loop: bool = False
    #: The loop is a comprehension: one pool per element, none of them closed.
    in_comprehension: bool = False
    #: Built inside ``with pytest.raises(...)``/``assertRaises(...)``: meant to fail.
    expected_to_raise: bool = False
    #: Method called on the new pool right away (``map`` in ``Pool(2).map(...)``).
    chained_method: str | None = None
    main_guarded: bool = False
    #: Created at module level (not inside a def or class body).
    module_level: bool = False
    #: Used as a context manager, closed/terminated/shut down in its scope (for
    #: ``self.attr``: in any method of the class or its bases in the file), returned,
    #: or handed to another call, which then owns it.
    closed: bool = False
    #: The name it is bound to (``pool`` in ``pool = Pool()``), if any.
    bound_name: str | None = None
    #: Whether it is the subject of a ``with`` statement.
    context_managed: bool = False
    #: Index of the module-level statement holding the constructor (for guard fixes).
    statement_index: int | None = None

    @property
    def kind(self) -> str | None:
        return EXECUTOR_KINDS.get(self.executor)

    @property
    def is_process(self) -> bool:
        return self.kind in (PROCESS_POOL, PROCESS_EXECUTOR)


@dataclass(slots=True)
class CallSite:
    """One ``pool.map``-style call, with everything the rules and engine need."""

    path: str
    span: Span
    method: str
    executor: str | None
    function: FunctionRef
    start_method: str | None = None
    iterable: str | None = None
    iterable_span: Span | None = None
    length: int | None = None
    chunksize: str | None = None
    chunksize_span: Span | None = None
    chunksize_value: int | None = None
    #: How chunksize was given: "positional", "keyword" or None when absent.
    chunksize_style: str | None = None
    constructor: PoolConstructor | None = None
    #: The callee's bytecode complexity, filled in by the analysis driver.
    complexity: Complexity | None = None

    @property
    def kind(self) -> str | None:
        """Executor kind (``process_pool``, ``thread_executor``, …) or None if unknown."""
        return EXECUTOR_KINDS.get(self.executor or "")

    @property
    def is_process(self) -> bool:
        return self.kind in (PROCESS_POOL, PROCESS_EXECUTOR)

    @property
    def is_thread(self) -> bool:
        return self.kind in (THREAD_POOL, THREAD_EXECUTOR)

    @property
    def workers(self) -> str | None:
        return self.constructor.workers if self.constructor else None

    def to_json(self) -> dict[str, Any]:
        """The ``--show-callsites --format json`` object (1-based columns, like ruff)."""
        ctor = self.constructor
        cx = self.complexity
        return {
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column + 1,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column + 1,
            "method": self.method,
            "executor": self.executor,
            "start_method": self.start_method,
            "function": self.function.text,
            "function_kind": self.function.kind.value,
            "iterable": self.iterable,
            "length": self.length,
            "chunksize": self.chunksize,
            "workers": self.workers,
            "in_loop": ctor.in_loop if ctor else None,
            "main_guarded": ctor.main_guarded if ctor else None,
            "closed": ctor.closed if ctor else None,
            "complexity": cx.to_json() if cx is not None else None,
        }


@dataclass(slots=True)
class ModuleAnalysis:
    """Everything the analysis found in one module."""

    path: str
    callsites: list[CallSite] = field(default_factory=list)
    constructors: list[PoolConstructor] = field(default_factory=list)
