"""Lazy evaluation of expressions to what they denote: a module, a pool class, a pool.

Works over the scopes from ``scopes.py``. A name is looked up the way Python
does (function locals, enclosing functions, module, builtins; class bodies are
skipped from nested functions), and among several bindings of one name the last
one before the use wins. So ``Pool = list`` after the import makes ``Pool`` a
list, and a local ``class Pool`` is not a pool.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal

import libcst as cst

from .pool_names import GET_CONTEXT, POOL_CLASSES, START_METHODS
from .scopes import Binding, Scope

BUILTIN_NAMES = frozenset(dir(builtins))
#: See ``Value``.
ValueKind = Literal[
    "dotted",
    "pool_class",
    "context",
    "pool",
    "func",
    "cm",
    "local_class",
    "self",
    "builtin",
    "other",
    "unknown",
]
MAX_DEPTH = 40


@dataclass(frozen=True)
class Value:
    """What an expression denotes. ``kind`` picks which other fields mean something.

    - ``dotted``: an imported module or attribute path (``path``);
    - ``pool_class``: a pool class (``executor``, ``start_method``);
    - ``context``: a ``multiprocessing`` context (``start_method``);
    - ``pool``: a pool instance (``executor``, ``start_method``, ``ctor`` call node);
    - ``func``: a def in this module (``binding``); ``cm``: what a
      ``@contextmanager`` def yields (``inner``);
    - ``local_class``: a class in this module (``binding``, ``executor`` if it
      subclasses a pool);
    - ``self``: the instance inside a method (``scope`` of the class);
    - ``builtin``: a builtin (``path``); ``other``: known, and not a pool;
    - ``unknown``: cannot tell.
    """

    kind: ValueKind
    path: str | None = None
    executor: str | None = None
    start_method: str | None = None
    ctor: cst.Call | None = None
    binding: Binding | None = None
    scope: Scope | None = None
    inner: Value | None = None


UNKNOWN = Value("unknown")
OTHER = Value("other")


def lookup(name: str, scope: Scope, order: int) -> Binding | None:
    """The binding that ``name`` has at ``order`` in ``scope`` (None: builtin/unbound)."""
    first = True
    s: Scope | None = scope
    while s is not None:
        if s.kind == "comprehension" or (s.kind == "class" and not first):
            if s.kind == "comprehension" and name in s.bindings:
                return s.bindings[name][-1]
            s = s.parent
            continue
        if name in s.global_names:
            s = _module_of(s)
        bindings = s.bindings.get(name)
        if bindings:
            if first or s.kind == "class":
                before = [b for b in bindings if b.order < order]
                return before[-1] if before else bindings[-1]
            return bindings[-1]
        first = False
        s = s.parent
    return None


def _module_of(scope: Scope) -> Scope:
    while scope.parent is not None:
        scope = scope.parent
    return scope


class Resolver:
    """Evaluates expressions in a scope, memoised per node, cycle-safe."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, int], Value] = {}
        self._active: set[tuple[int, int]] = set()

    def value(self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int = 0) -> Value:
        key = (id(expr), id(scope))
        if key in self._memo:
            return self._memo[key]
        if key in self._active or depth > MAX_DEPTH:
            return UNKNOWN
        self._active.add(key)
        try:
            result = self._eval(expr, scope, order, depth + 1)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    # -- evaluation ----------------------------------------------------------
    def _eval(self, expr: cst.BaseExpression, scope: Scope, order: int, depth: int) -> Value:
        if isinstance(expr, cst.Name):
            return self.name(expr.value, scope, order, depth)
        if isinstance(expr, cst.Attribute):
            return self._attribute(expr, scope, order, depth)
        if isinstance(expr, cst.Call):
            return self._call(expr, scope, order, depth)
        if isinstance(expr, cst.NamedExpr):
            return self.value(expr.value, scope, order, depth)
        if isinstance(expr, (cst.BaseString, cst.BaseNumber, cst.BaseList, cst.BaseDict)):
            return OTHER
        if isinstance(expr, (cst.Tuple, cst.BaseSet, cst.Lambda, cst.Comparison)):
            return OTHER
        return UNKNOWN

    def name(self, name: str, scope: Scope, order: int, depth: int = 0) -> Value:
        binding = lookup(name, scope, order)
        if binding is None:
            if name in BUILTIN_NAMES:
                return Value("builtin", path=name)
            return UNKNOWN
        return self.binding(binding, depth)

    def binding(self, b: Binding, depth: int = 0) -> Value:
        if b.kind in ("import", "from"):
            return _dotted(b.value) if isinstance(b.value, str) else UNKNOWN
        if b.kind == "assign" and isinstance(b.value, cst.BaseExpression):
            return self.value(b.value, b.scope, b.order, depth)
        if b.kind == "with" and isinstance(b.value, cst.BaseExpression):
            v = self.value(b.value, b.scope, b.order, depth)
            if v.kind == "cm":
                return v.inner or UNKNOWN
            return v if v.kind == "pool" else UNKNOWN
        if b.kind == "param":
            ann = b.extra
            if isinstance(ann, cst.BaseExpression):
                cls = self.value(ann, b.scope, b.order, depth)
                if cls.kind == "pool_class":
                    return Value("pool", executor=cls.executor, start_method=cls.start_method)
            if b.scope is not None and b.scope.self_name and b.value == b.scope.self_name:
                return self._self_value(b.scope)
            return UNKNOWN
        if b.kind == "def":
            return Value("func", binding=b)
        if b.kind == "class":
            return self._class_value(b, depth)
        return UNKNOWN

    def _self_value(self, method_scope: Scope) -> Value:
        cls = method_scope.enclosing_class
        if cls is None:
            return UNKNOWN
        assert cls.parent is not None and isinstance(cls.node, cst.ClassDef)
        binding = next(
            (
                b
                for b in cls.parent.bindings.get(cls.node.name.value, [])
                if b.kind == "class" and b.value is cls.node
            ),
            None,
        )
        executor = self._class_value(binding).executor if binding else None
        return Value("self", scope=cls, executor=executor)

    def _class_value(self, b: Binding, depth: int = 0) -> Value:
        node = b.value
        if not isinstance(node, cst.ClassDef):
            return Value("local_class", binding=b)
        for base in node.bases:
            v = self.value(base.value, b.scope, b.order, depth)
            if v.kind == "pool_class":
                return Value("local_class", binding=b, executor=v.executor)
            if v.kind == "local_class" and v.executor:
                return Value("local_class", binding=b, executor=v.executor)
        return Value("local_class", binding=b)

    def _attribute(self, expr: cst.Attribute, scope: Scope, order: int, depth: int) -> Value:
        base = self.value(expr.value, scope, order, depth)
        attr = expr.attr.value
        if base.kind == "dotted" and base.path:
            return _dotted(f"{base.path}.{attr}")
        if base.kind == "context" and attr == "Pool":
            return Value(
                "pool_class", executor="multiprocessing.pool.Pool", start_method=base.start_method
            )
        if base.kind == "self" and base.scope is not None:
            return self._self_attr(base.scope, attr, depth)
        if base.kind == "local_class" and base.binding is not None:
            inner = base.binding.extra
            if isinstance(inner, Scope) and attr in inner.bindings:
                return self.binding(inner.bindings[attr][-1], depth)
        if base.kind in ("builtin", "other"):
            return OTHER
        return UNKNOWN

    def _self_attr(self, cls: Scope, attr: str, depth: int) -> Value:
        bindings = cls.self_attrs.get(attr)
        if bindings:
            for b in reversed(bindings):
                v = self.binding(b, depth)
                if v.kind == "pool":
                    return v
            return UNKNOWN
        if attr in cls.bindings:
            return self.binding(cls.bindings[attr][-1], depth)
        return UNKNOWN

    def _call(self, expr: cst.Call, scope: Scope, order: int, depth: int) -> Value:
        func = self.value(expr.func, scope, order, depth)
        if func.kind == "pool_class":
            start = func.start_method or self._context_kwarg(expr, scope, order, depth)
            return Value("pool", executor=func.executor, start_method=start, ctor=expr)
        if func.kind == "local_class" and func.executor:
            return Value("pool", executor=func.executor, ctor=expr)
        if func.kind == "dotted" and func.path in GET_CONTEXT:
            method = None
            if expr.args and isinstance(expr.args[0].value, cst.SimpleString):
                text = expr.args[0].value.evaluated_value
                method = text if text in START_METHODS else None
            return Value("context", start_method=method)
        if func.kind == "func" and func.binding is not None:
            inner = func.binding.extra
            if isinstance(inner, Scope):
                return self._call_local_def(inner, depth)
        if func.kind in ("builtin", "other", "local_class"):
            return OTHER
        return UNKNOWN

    def _call_local_def(self, fn: Scope, depth: int) -> Value:
        sources = fn.yields if fn.is_contextmanager else fn.returns
        for order, expr in sources:
            v = self.value(expr, fn, order, depth)
            if v.kind == "pool":
                return Value("cm", inner=v) if fn.is_contextmanager else v
        return UNKNOWN

    def _context_kwarg(self, call: cst.Call, scope: Scope, order: int, depth: int) -> str | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in ("mp_context", "context"):
                v = self.value(arg.value, scope, order, depth)
                if v.kind == "context":
                    return v.start_method
        return None


def _dotted(path: str) -> Value:
    canonical = POOL_CLASSES.get(path)
    if canonical is not None:
        return Value("pool_class", executor=canonical)
    return Value("dotted", path=path)
