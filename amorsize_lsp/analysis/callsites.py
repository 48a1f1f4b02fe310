"""Find pool-map call sites and pool constructors in one module.

``analyze_text(source, path)`` is what ``driver.analyze_source`` (which adds
decoding, the prefilter and complexity) calls; ``find_callsites`` is the same
for callers that want only the call sites, such as tests. Only the calls on a
resolved pool, or pool-only method names on an unknown receiver, are reported:
an unresolved ``.map`` is far too common elsewhere (pandas).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from .model import (
    EXECUTOR_KINDS,
    POOL_METHODS,
    POOL_SPECIFIC_METHODS,
    PROCESS_EXECUTOR,
    THREAD_EXECUTOR,
    AnalysisError,
    CallSite,
    FunctionKind,
    FunctionRef,
    ModuleAnalysis,
    PoolConstructor,
    Span,
)
from .newer_syntax import Masked, ast_depth, mask_newer_syntax
from .pool_names import PARTIALS
from .positions import node_spans
from .pyast import parse_python
from .resolve import BUILTIN_NAMES, Resolver, Value, lookup
from .scopes import CallRecord, Scope, ScopeBuilder
from .statements import Stub, parse_statement, select, selected, split_statements

MAX_LENGTH = 10**12
EXECUTOR_CLASSES = frozenset(
    c for c, k in EXECUTOR_KINDS.items() if k in (PROCESS_EXECUTOR, THREAD_EXECUTOR)
)


def _positional(call: cst.Call) -> list[cst.Arg]:
    out = []
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        out.append(arg)
    return out


def _argument(call: cst.Call, index: int | None, *keywords: str) -> cst.Arg | None:
    """The argument at positional ``index`` (None: keyword-only) or named ``keywords``."""
    if index is not None:
        positional = _positional(call)
        if index < len(positional):
            return positional[index]
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in keywords:
            return arg
    return None


#: Bases that define no methods of their own that could close a pool.
_INERT_BASES = frozenset({"object", "ABC", "Generic", "Protocol"})


@dataclass(eq=False)
class Unit:
    """A parsed piece of the module: the whole module, or one top-level statement."""

    module: cst.Module
    line_offset: int
    first_index: int


#: Code generation of single nodes needs a module only for its defaults.
_CODEGEN = cst.Module(body=[])


class _ModuleScan:
    """State shared while scanning one module: the resolver and static evaluation."""

    def __init__(self, parts: Sequence[Unit | Stub], path: str) -> None:
        self.module = _CODEGEN
        self.path = path
        self.builder = ScopeBuilder()
        for part in parts:
            if isinstance(part, Unit):
                self.builder.add_unit(part.module, part, part.first_index)
            else:
                self.builder.add_stub(*part)
        self.resolver = Resolver()

    # -- static values -------------------------------------------------------
    def const_int(
        self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int = 0
    ) -> int | None:
        if depth > 20:
            return None
        if isinstance(expr, cst.Integer):
            return int(expr.evaluated_value)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            v = self.const_int(expr.expression, scope, order, depth + 1)
            return -v if v is not None else None
        if isinstance(expr, cst.BinaryOperation):
            a = self.const_int(expr.left, scope, order, depth + 1)
            b = self.const_int(expr.right, scope, order, depth + 1)
            if a is None or b is None:
                return None
            return _arith(expr.operator, a, b)
        if isinstance(expr, cst.Name):
            b = lookup(expr.value, scope, order)
            if b is not None and b.kind == "assign" and isinstance(b.value, cst.BaseExpression):
                return self.const_int(b.value, b.scope, b.order, depth + 1)
        return None

    def length(
        self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int = 0
    ) -> int | None:
        """Number of items ``expr`` yields, when it is statically known."""
        if depth > 20:
            return None
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            if any(isinstance(e, cst.StarredElement) for e in expr.elements):
                return None
            return len(expr.elements)
        if isinstance(expr, cst.Dict):
            if any(isinstance(e, cst.StarredDictElement) for e in expr.elements):
                return None
            return len(expr.elements)
        if isinstance(expr, cst.SimpleString):
            value = expr.evaluated_value
            return len(value)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
            for seq, count in ((expr.left, expr.right), (expr.right, expr.left)):
                n = self.length(seq, scope, order, depth + 1)
                k = self.const_int(count, scope, order, depth + 1)
                if n is not None and k is not None:
                    return max(0, n * k)
            return None
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            a = self.length(expr.left, scope, order, depth + 1)
            b = self.length(expr.right, scope, order, depth + 1)
            return a + b if a is not None and b is not None else None
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name):
            callee = self.resolver.value(expr.func, scope, order)
            if callee.kind != "builtin":
                return None
            args = [a.value for a in expr.args if a.keyword is None and not a.star]
            if len(args) != len(expr.args):
                return None
            if callee.path == "range" and 1 <= len(args) <= 3:
                ints = [self.const_int(a, scope, order, depth + 1) for a in args]
                if any(i is None for i in ints) or (len(ints) == 3 and ints[2] == 0):
                    return None
                if any(abs(i) > MAX_LENGTH for i in ints):  # type: ignore[arg-type]
                    return None
                return len(range(*ints))  # type: ignore[arg-type]
            if callee.path in ("list", "tuple", "iter", "reversed", "sorted") and len(args) == 1:
                return self.length(args[0], scope, order, depth + 1)
            return None
        if isinstance(expr, cst.Name):
            b = lookup(expr.value, scope, order)
            if b is not None and b.kind == "assign" and isinstance(b.value, cst.BaseExpression):
                return self.length(b.value, b.scope, b.order, depth + 1)
        return None

    # -- the mapped function -------------------------------------------------
    def function_ref(
        self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int = 0
    ) -> FunctionRef:
        text = self.module.code_for_node(expr).strip()
        kind, qualname, wrapped = self._classify(expr, scope, order, depth)
        return FunctionRef(text=text, kind=kind, qualname=qualname, wrapped=wrapped)

    def _classify(
        self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int
    ) -> tuple[FunctionKind, str | None, FunctionRef | None]:
        if depth > 10:
            return FunctionKind.UNKNOWN, None, None
        if isinstance(expr, cst.Lambda):
            return FunctionKind.LAMBDA, qualname_in(scope, "<lambda>"), None
        if isinstance(expr, cst.Call):
            callee = self.resolver.value(expr.func, scope, order)
            if callee.kind == "dotted" and callee.path in PARTIALS and expr.args:
                inner = self.function_ref(expr.args[0].value, scope, order, depth + 1)
                return FunctionKind.PARTIAL, inner.qualname, inner
            return FunctionKind.UNKNOWN, None, None
        if isinstance(expr, cst.Name):
            b = lookup(expr.value, scope, order)
            if b is None:
                if expr.value in BUILTIN_NAMES:
                    return FunctionKind.BUILTIN, expr.value, None
                return FunctionKind.UNKNOWN, None, None
            if b.kind in ("def", "class"):
                inner = b.extra
                qual = inner.qualname if isinstance(inner, Scope) else expr.value
                outer = b.scope
                nested = outer is not None and outer.kind in ("function", "lambda")
                return (FunctionKind.NESTED_DEF if nested else FunctionKind.MODULE_DEF), qual, None
            if b.kind in ("import", "from") and isinstance(b.value, str):
                return _imported_kind(b.value), b.value, None
            if b.kind == "assign" and isinstance(b.value, cst.BaseExpression):
                return self._classify(b.value, b.scope, b.order, depth + 1)
            return FunctionKind.UNKNOWN, None, None
        if isinstance(expr, cst.Attribute):
            base = self.resolver.value(expr.value, scope, order)
            attr = expr.attr.value
            if base.kind == "self" and base.scope is not None:
                cls = base.scope
                return self._method_kind(cls, attr, default=FunctionKind.BOUND_METHOD)
            if base.kind == "instance" and base.binding is not None:
                cls = base.binding.extra
                if isinstance(cls, Scope):
                    return self._method_kind(cls, attr, default=FunctionKind.BOUND_METHOD)
            if base.kind == "local_class" and base.binding is not None:
                cls = base.binding.extra
                if isinstance(cls, Scope):
                    return self._method_kind(cls, attr, default=FunctionKind.STATICMETHOD)
            if base.kind in ("dotted", "lookalike") and base.path:
                path = f"{base.path}.{attr}"
                return _imported_kind(path), path, None
            if base.kind in ("builtin", "other"):
                return FunctionKind.BUILTIN, self.module.code_for_node(expr).strip(), None
            return FunctionKind.BOUND_METHOD, None, None
        return FunctionKind.UNKNOWN, None, None

    @staticmethod
    def _method_kind(
        cls: Scope, attr: str, default: FunctionKind
    ) -> tuple[FunctionKind, str | None, None]:
        qual = f"{cls.qualname}.{attr}"
        for b in cls.bindings.get(attr, []):
            inner = b.extra
            if b.kind == "def" and isinstance(inner, Scope):
                if inner.is_staticmethod:
                    return FunctionKind.STATICMETHOD, qual, None
                return default, qual, None
        return default, qual, None

    # -- the scan ------------------------------------------------------------
    def scan(self) -> ModuleAnalysis:
        ctor_records: dict[int, tuple[CallRecord, Value]] = {}
        site_records: list[tuple[CallRecord, Value | None]] = []
        for rec in self.builder.calls:
            callee = self.resolver.value(rec.node.func, rec.scope, rec.order)
            if callee.kind in ("pool_class", "local_class") and callee.executor:
                ctor_records[id(rec.node)] = (
                    rec,
                    self.resolver.value(rec.node, rec.scope, rec.order),
                )
                continue
            func = rec.node.func
            if not isinstance(func, cst.Attribute) or func.attr.value not in POOL_METHODS:
                continue
            receiver = self.resolver.value(func.value, rec.scope, rec.order)
            method = func.attr.value
            if receiver.kind == "pool" or (receiver.kind == "self" and receiver.executor):
                if receiver.executor in EXECUTOR_CLASSES and method != "map":
                    continue
                site_records.append((rec, receiver))
            elif receiver.kind in ("unknown", "dotted") and method in POOL_SPECIFIC_METHODS:
                if receiver.kind == "dotted" and _is_known_module(receiver.path):
                    continue
                site_records.append((rec, None))

        wanted: list[tuple[Unit, cst.CSTNode]] = []
        for rec, value in ctor_records.values():
            wanted.append((rec.unit, rec.node))
            workers = self._workers_arg(rec.node, value.executor)
            if workers is not None:
                wanted.append((rec.unit, workers.value))
        arg_cache: list[tuple[CallRecord, Value | None, dict[str, cst.Arg | None]]] = []
        for rec, receiver in site_records:
            args = self._site_args(rec.node, receiver.executor if receiver else None)
            arg_cache.append((rec, receiver, args))
            wanted.append((rec.unit, rec.node))
            wanted.extend((rec.unit, a.value) for a in args.values() if a is not None)
            fn = args["function"]
            if fn is not None and isinstance(fn.value, cst.Call) and fn.value.args:
                wanted.append((rec.unit, fn.value.args[0].value))  # what a partial wraps
        spans = self._spans(wanted)

        constructors: dict[int, PoolConstructor] = {}
        for key, (rec, value) in ctor_records.items():
            constructors[key] = self._constructor(rec, value, spans)
        sites = [self._site(rec, recv, args, spans, constructors) for rec, recv, args in arg_cache]
        sites.sort(key=lambda s: (s.span.line, s.span.column))
        ctors = sorted(constructors.values(), key=lambda c: (c.span.line, c.span.column))
        return ModuleAnalysis(path=self.path, callsites=sites, constructors=ctors)

    @staticmethod
    def _spans(wanted: list[tuple[Unit, cst.CSTNode]]) -> dict[int, Span]:
        by_unit: dict[int, tuple[Unit, list[cst.CSTNode]]] = {}
        for unit, node in wanted:
            by_unit.setdefault(id(unit), (unit, []))[1].append(node)
        spans: dict[int, Span] = {}
        for unit, nodes in by_unit.values():
            k = unit.line_offset
            for key, sp in node_spans(unit.module, nodes).items():
                spans[key] = Span(sp.line + k, sp.column, sp.end_line + k, sp.end_column)
        return spans

    @staticmethod
    def _workers_arg(call: cst.Call, executor: str | None) -> cst.Arg | None:
        if executor in EXECUTOR_CLASSES:
            return _argument(call, 0, "max_workers")
        return _argument(call, 0, "processes")

    @staticmethod
    def _site_args(call: cst.Call, executor: str | None) -> dict[str, cst.Arg | None]:
        is_executor = executor in EXECUTOR_CLASSES
        return {
            "function": _argument(call, 0, "func", "fn"),
            "iterable": _argument(call, 1, "iterable"),
            "chunksize": _argument(call, None if is_executor else 2, "chunksize"),
        }

    def _text(self, node: cst.CSTNode | None) -> str | None:
        return self.module.code_for_node(node).strip() if node is not None else None

    def _constructor(
        self, rec: CallRecord, value: Value, spans: dict[int, Span]
    ) -> PoolConstructor:
        executor = value.executor or "multiprocessing.pool.Pool"
        workers = self._workers_arg(rec.node, executor)
        closed = rec.with_managed
        scope = rec.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        if rec.bound_name and rec.bound_name in scope.closed_names:
            closed = True
        if rec.bound_self_attr and (cls := scope.enclosing_class) is not None:
            closed = closed or self._closed_by_class(cls, rec.bound_self_attr)
        return PoolConstructor(
            executor=executor,
            span=spans[id(rec.node)],
            start_method=value.start_method,
            workers=self._text(workers.value) if workers else None,
            workers_span=spans.get(id(workers.value)) if workers else None,
            workers_value=self.const_int(workers.value, rec.scope, rec.order) if workers else None,
            in_loop=rec.in_loop,
            in_comprehension=rec.in_comprehension,
            expected_to_raise=rec.expected_to_raise,
            chained_method=rec.chained_method,
            main_guarded=rec.main_guarded,
            module_level=rec.module_level,
            closed=closed,
            bound_name=rec.bound_name
            or (f"self.{rec.bound_self_attr}" if rec.bound_self_attr else None),
            context_managed=rec.with_managed,
            statement_index=rec.statement_index,
        )

    def _closed_by_class(self, cls: Scope, attr: str, depth: int = 0) -> bool:
        """``self.attr`` is closed by a method of ``cls`` or of a base class in this file.

        A base that is not a class parsed from this file (imported, or not parsed)
        may close it in a method we cannot see: count it as closed, rather than warn.
        """
        if attr in cls.self_closed:
            return True
        node = cls.node
        if not isinstance(node, cst.ClassDef) or depth > 20:
            return True
        for base in node.bases:
            name = base.value
            if isinstance(name, cst.Subscript):  # Generic[T], Protocol[T]
                name = name.value
            text = cst.helpers.get_full_name_for_node(name) or ""
            if text.split(".")[-1] in _INERT_BASES:
                continue
            base_scope = self._module_class(text)
            if base_scope is None or self._closed_by_class(base_scope, attr, depth + 1):
                return True
        return False

    def _module_class(self, name: str) -> Scope | None:
        """The scope of the module-level class ``name`` parsed from this file, if any."""
        bindings = self.builder.module_scope.bindings.get(name) or []
        last = bindings[-1] if bindings else None
        if last is None or last.kind != "class" or not isinstance(last.extra, Scope):
            return None
        return last.extra

    def _site(
        self,
        rec: CallRecord,
        receiver: Value | None,
        args: dict[str, cst.Arg | None],
        spans: dict[int, Span],
        constructors: dict[int, PoolConstructor],
    ) -> CallSite:
        func = rec.node.func
        assert isinstance(func, cst.Attribute)
        fn_arg, it_arg, cs_arg = args["function"], args["iterable"], args["chunksize"]
        if fn_arg is not None:
            ref = self.function_ref(fn_arg.value, rec.scope, rec.order)
            wrapped = ref.wrapped
            if wrapped is not None and isinstance(fn_arg.value, cst.Call):
                inner_span = spans.get(id(fn_arg.value.args[0].value))
                wrapped = FunctionRef(
                    wrapped.text, wrapped.kind, wrapped.qualname, wrapped.wrapped, inner_span
                )
            ref = FunctionRef(
                ref.text, ref.kind, ref.qualname, wrapped, spans.get(id(fn_arg.value))
            )
        else:
            ref = FunctionRef(text="", kind=FunctionKind.UNKNOWN)
        ctor = (
            constructors.get(id(receiver.ctor)) if receiver and receiver.ctor is not None else None
        )
        return CallSite(
            path=self.path,
            span=spans[id(rec.node)],
            method=func.attr.value,
            executor=receiver.executor if receiver else None,
            function=ref,
            start_method=receiver.start_method if receiver else None,
            iterable=self._text(it_arg.value) if it_arg else None,
            iterable_span=spans.get(id(it_arg.value)) if it_arg else None,
            length=self.length(it_arg.value, rec.scope, rec.order) if it_arg else None,
            chunksize=self._text(cs_arg.value) if cs_arg else None,
            chunksize_span=spans.get(id(cs_arg.value)) if cs_arg else None,
            chunksize_value=self.const_int(cs_arg.value, rec.scope, rec.order) if cs_arg else None,
            chunksize_style=(
                None
                if cs_arg is None
                else ("keyword" if cs_arg.keyword is not None else "positional")
            ),
            constructor=ctor,
        )


_COMPREHENSION_NAMES = {
    cst.ListComp: "<listcomp>",
    cst.SetComp: "<setcomp>",
    cst.DictComp: "<dictcomp>",
    cst.GeneratorExp: "<genexpr>",
}


def qualname_in(scope: Scope, name: str) -> str:
    """The ``__qualname__`` CPython gives a function ``name`` created in ``scope``.

    AMZ002 pickles a stand-in with it to name the exact error. Comprehensions are
    functions of their own before 3.12 (``f.<locals>.<listcomp>.<lambda>``); from
    3.12 list, set and dict comprehensions are inlined (PEP 709), generator
    expressions are not.
    """
    if scope.kind == "comprehension" and scope.parent is not None:
        label = _COMPREHENSION_NAMES.get(type(scope.node), "<genexpr>")
        if sys.version_info >= (3, 12) and label != "<genexpr>":
            return qualname_in(scope.parent, name)
        return f"{qualname_in(scope.parent, label)}.{name}"
    return scope.child_qualname(name)


def _arith(op: cst.BaseBinaryOp, a: int, b: int) -> int | None:
    try:
        if isinstance(op, cst.Add):
            r = a + b
        elif isinstance(op, cst.Subtract):
            r = a - b
        elif isinstance(op, cst.Multiply):
            r = a * b
        elif isinstance(op, cst.FloorDivide):
            r = a // b
        elif isinstance(op, cst.Modulo):
            r = a % b
        elif isinstance(op, cst.Power):
            if b < 0 or b > 64 or abs(a) > 2**20:
                return None
            r = a**b
        else:
            return None
    except ZeroDivisionError:
        return None
    return r if abs(r) <= MAX_LENGTH else None


def _imported_kind(path: str) -> FunctionKind:
    top = path.split(".")[0]
    if top in sys.builtin_module_names or top == "builtins":
        return FunctionKind.BUILTIN
    return FunctionKind.IMPORTED


_KNOWN_NON_POOL_MODULES = frozenset({"itertools", "builtins", "operator", "functools"})


def _is_known_module(path: str | None) -> bool:
    return path is not None and path.split(".")[0] in _KNOWN_NON_POOL_MODULES


#: Deepest syntax tree libcst is given: its parse time grows with the square of it.
MAX_AST_DEPTH = 500
#: Statements shorter than this cannot be deep enough to matter: no depth walk.
_DEPTH_CHECK_CHARS = 2000


def _plan(source: str, path: str, everything: bool = False) -> list[Unit | Stub]:
    """What to parse with libcst: the selected top-level statements, each on its own.

    When CPython's parser rejects the file, ``newer_syntax`` decides whether the
    failing statements can be newer syntax (libcst then parses them) or the
    file has a syntax error (``AnalysisError`` with CPython's message).
    """
    found: Masked | None = None
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        found = mask_newer_syntax(source, exc, path)
        tree = found.tree
    masked = found.lines if found is not None else frozenset()
    if everything:
        groups = split_statements(source, tree)
        for g in groups:
            g.mode = "full"
    elif masked:
        groups = split_statements(source, tree)
        select(groups)
        for g in groups:
            if any(line in masked for line in range(g.first_line, g.last_line + 1)):
                g.mode = "full"  # what it binds is known only to libcst
    else:
        groups = selected(source, tree)
    parts: list[Unit | Stub] = []
    used: set[int] = set()
    for g in groups:
        if g.mode == "stub":
            parts.extend(g.stubs)
        elif g.mode == "full":
            if len(g.text) > _DEPTH_CHECK_CHARS:
                depth = ast_depth(g.nodes, MAX_AST_DEPTH)
                if depth > MAX_AST_DEPTH:
                    raise AnalysisError(
                        path,
                        f"the statement at line {g.first_line} nests expressions over"
                        f" {MAX_AST_DEPTH} deep; too deep to analyse (split it up)",
                        g.first_line,
                    )
            try:
                module = parse_statement(g.text)
                if id(module) in used:  # the same text twice: nodes must be distinct
                    module = cst.parse_module(g.text)
            except cst.ParserSyntaxError as exc:
                cpython = found.error_in(g.first_line, g.last_line) if found else None
                if cpython is not None:  # not newer syntax after all: CPython's message
                    raise cpython from None
                raise AnalysisError(
                    path,
                    f"syntax error: {exc.message}",
                    exc.raw_line + g.first_line - 1,
                    max(exc.raw_column, 0),
                ) from None
            except RecursionError:
                raise AnalysisError(
                    path, "source is nested too deeply to parse", g.first_line
                ) from None
            except Exception as exc:  # the native parser reports some failures untyped
                raise AnalysisError(
                    path, f"cannot parse: {exc}".splitlines()[0], g.first_line
                ) from None
            used.add(id(module))
            parts.append(Unit(module, g.first_line - 1, g.index))
    return parts


def analyze_text(source: str, path: str, *, select_statements: bool = True) -> ModuleAnalysis:
    """Call sites and constructors of ``source``; raises ``AnalysisError`` on bad input.

    ``select_statements=False`` parses every statement: the reference that the
    statement selection is checked against.
    """
    try:
        return _ModuleScan(_plan(source, path, not select_statements), path).scan()
    except RecursionError:
        raise AnalysisError(path, "source is nested too deeply to analyse") from None


def find_callsites(source: str, path: str) -> list[CallSite]:
    """Every pool-map call site in ``source`` (no complexity: see ``driver``)."""
    return analyze_text(source, path).callsites


__all__: Sequence[str] = ("analyze_text", "find_callsites")
