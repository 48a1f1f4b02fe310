"""Lazy evaluation of expressions to what they denote: a module, a pool class, a pool.

Works over the scopes from ``scopes.py``. A name is looked up the way Python
does (function locals, enclosing functions, module, builtins; class bodies are
skipped from nested functions), and among several bindings of one name the last
one before the use wins, except that a binding in an ``except ImportError``
handler yields to the import it stands in for. So ``Pool = list`` after the import makes ``Pool`` a
list, and a local ``class Pool`` is not a pool.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal

import libcst as cst

from .pool_names import GET_CONTEXT, PASS_THROUGH_CMS, POOL_CLASSES, START_METHODS, is_lookalike
from .scopes import Binding, Scope

BUILTIN_NAMES = frozenset(dir(builtins))
POOL = "multiprocessing.pool.Pool"
THREAD_POOL = "multiprocessing.pool.ThreadPool"
#: See ``Value``.
ValueKind = Literal[
    "dotted",
    "pool_class",
    "context",
    "pool",
    "func",
    "cm",
    "local_class",
    "instance",
    "self",
    "builtin",
    "lookalike",
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
    - ``instance``: an instance of a local class that is not a pool
      (``binding`` of the class): a wrapper, even when it has its own ``imap``;
    - ``self``: the instance inside a method (``scope`` of the class);
    - ``builtin``: a builtin (``path``); ``other``: known, and not a pool;
    - ``lookalike``: anything from a third-party look-alike pool module (``path``):
      never a standard-library pool, never reported;
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
                return _preferred(before or bindings)
            return _preferred(bindings)
        first = False
        s = s.parent
    return None


def _preferred(bindings: list[Binding]) -> Binding:
    """The last binding, unless it is an import fallback (``except ImportError:
    X = None``) and an earlier one is not: the import is what runs the pool."""
    for b in reversed(bindings):
        if not b.fallback:
            return b
    return bindings[-1]


def _class_binding(cls: Scope) -> Binding | None:
    """The binding that a class scope's ``class`` statement made."""
    if cls.parent is None or not isinstance(cls.node, cst.ClassDef):
        return None
    for b in cls.parent.bindings.get(cls.node.name.value, []):
        if b.kind == "class" and b.value is cls.node:
            return b
    return None


def _class_scopes(module: Scope) -> list[Scope]:
    """Every parsed class scope under ``module`` (in defs and classes too)."""
    out: list[Scope] = []
    todo = [module]
    while todo:
        scope = todo.pop()
        for bindings in scope.bindings.values():
            for b in bindings:
                if b.kind in ("class", "def") and isinstance(b.extra, Scope):
                    if b.kind == "class" and b.value is not None:
                        out.append(b.extra)
                    todo.append(b.extra)
    return out


def _module_of(scope: Scope) -> Scope:
    while scope.parent is not None:
        scope = scope.parent
    return scope


class Resolver:
    """Evaluates expressions in a scope, memoised per node, cycle-safe."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, int], Value] = {}
        self._active: set[tuple[int, int]] = set()
        self._chains: dict[int, list[Scope]] = {}
        self._classes: dict[int, list[Scope]] = {}

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
            if v.kind == "instance":
                return self._enter_value(v, depth)
            return v if v.kind in ("pool", "lookalike") else UNKNOWN
        if b.kind == "param":
            ann = b.extra
            if isinstance(ann, cst.BaseExpression):
                cls = self.value(ann, b.scope, b.order, depth)
                if cls.kind == "pool_class":
                    cls = self._refined_by_class(cls, b.scope, depth)
                    return Value("pool", executor=cls.executor, start_method=cls.start_method)
                if cls.kind == "local_class" and cls.executor:
                    return Value("pool", executor=cls.executor)
                if cls.kind == "local_class":
                    return Value("instance", binding=cls.binding)
                if cls.kind == "lookalike":
                    return cls
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
        binding = _class_binding(cls)
        executor = self._class_value(binding).executor if binding else None
        return Value("self", scope=cls, executor=executor)

    # -- classes of this module ----------------------------------------------
    def _chain(self, cls: Scope, depth: int) -> list[Scope]:
        """``cls`` and its base classes defined in this module, nearest first."""
        key = id(cls)
        if key in self._chains:
            return self._chains[key]
        self._chains[key] = [cls]  # a cycle (a base rebound later) stops here
        out: list[Scope] = [cls]
        binding = _class_binding(cls)
        if binding is not None and isinstance(cls.node, cst.ClassDef):
            for base in cls.node.bases:
                if base.keyword is not None:
                    continue
                v = self.value(base.value, binding.scope, binding.order, depth)
                if v.kind == "local_class" and v.binding and isinstance(v.binding.extra, Scope):
                    out.extend(c for c in self._chain(v.binding.extra, depth) if c not in out)
        self._chains[key] = out
        return out

    def _subclasses(self, cls: Scope, depth: int) -> list[Scope]:
        """The classes of this module that derive from ``cls``."""
        module = _module_of(cls)
        if id(module) not in self._classes:
            self._classes[id(module)] = _class_scopes(module)
        classes = self._classes[id(module)]
        return [c for c in classes if c is not cls and cls in self._chain(c, depth)]

    def _class_attr(self, cls: Scope, attr: str, depth: int) -> Value | None:
        """A class attribute as the class (or its nearest base here) defines it."""
        for c in self._chain(cls, depth):
            if attr in c.bindings:
                return self.binding(c.bindings[attr][-1], depth)
        return None

    def _per_class_attr(self, cls: Scope, attr: str, depth: int) -> Value | None:
        """``self.attr`` in a method of ``cls``, where ``self`` may be a subclass.

        A pool factory kept in a class attribute (``POOL_TYPE = mp.dummy.Pool``)
        is usually set per subclass and called in a base method: every class
        that may be ``self`` is asked. They agree: that pool class; they name
        different pool classes: a pool of an unknown kind.
        """
        own = self._class_attr(cls, attr, depth)
        values = [own] if own is not None else []
        for sub in self._subclasses(cls, depth):
            if attr in sub.bindings:
                values.append(self.binding(sub.bindings[attr][-1], depth))
        factories = [v for v in values if v.kind == "pool_class"]
        if not factories:
            return own
        executors = {v.executor for v in factories}
        starts = {v.start_method for v in factories}
        return Value(
            "pool_class",
            executor=executors.pop() if len(executors) == 1 else None,
            start_method=starts.pop() if len(starts) == 1 else None,
        )

    def _refined_by_class(self, annotated: Value, fn: Scope | None, depth: int) -> Value:
        """A parameter annotated ``multiprocessing.pool.Pool`` in a method of a class
        whose own pool factory is a ``Pool`` or ``ThreadPool`` (a subclass of
        ``Pool``): the class's factory is the more precise answer."""
        cls = fn.enclosing_class if fn is not None else None
        if cls is None or annotated.executor != POOL:
            return annotated
        for c in self._chain(cls, depth):
            for bindings in c.bindings.values():
                b = bindings[-1]
                if b.kind != "assign":
                    continue
                v = self.binding(b, depth)
                if v.kind == "pool_class" and v.executor in (POOL, THREAD_POOL):
                    return v
        return annotated

    def _enter_value(self, instance: Value, depth: int) -> Value:
        """What ``with Wrapper(...) as w`` binds: what ``Wrapper.__enter__`` returns."""
        cls = instance.binding.extra if instance.binding else None
        if not isinstance(cls, Scope):
            return UNKNOWN
        enter = self._class_attr(cls, "__enter__", depth)
        if enter is None or enter.kind != "func" or enter.binding is None:
            return UNKNOWN
        fn = enter.binding.extra
        if not isinstance(fn, Scope):
            return UNKNOWN
        values = []
        for at, expr in fn.returns:
            if isinstance(expr, cst.Name) and fn.self_name and expr.value == fn.self_name:
                values.append(instance)
            else:
                values.append(self.value(expr, fn, at, depth))
        if values and all(v is instance for v in values):
            return instance  # ``return self``: its attributes still resolve
        return settle(values)

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
        if base.kind in ("dotted", "lookalike") and base.path:
            return _dotted(f"{base.path}.{attr}")
        if base.kind == "context" and attr == "Pool":
            return Value(
                "pool_class", executor="multiprocessing.pool.Pool", start_method=base.start_method
            )
        if base.kind == "self" and base.scope is not None:
            return self._self_attr(base.scope, attr, depth)
        if base.kind == "instance" and base.binding is not None:
            cls = base.binding.extra
            if isinstance(cls, Scope):
                v = self._self_attr(cls, attr, depth)
                return OTHER if v.kind == "unknown" else v
            return OTHER
        if base.kind == "local_class" and base.binding is not None:
            inner = base.binding.extra
            if isinstance(inner, Scope) and attr in inner.bindings:
                return self.binding(inner.bindings[attr][-1], depth)
        if base.kind in ("builtin", "other"):
            return OTHER
        return UNKNOWN

    def _self_attr(self, cls: Scope, attr: str, depth: int) -> Value:
        chain = self._chain(cls, depth)
        for c in chain:
            bindings = c.self_attrs.get(attr)
            if bindings:
                return settle([self.binding(b, depth) for b in reversed(bindings)])
        v = self._per_class_attr(cls, attr, depth)
        return v if v is not None else UNKNOWN

    def _call(self, expr: cst.Call, scope: Scope, order: int, depth: int) -> Value:
        func = self.value(expr.func, scope, order, depth)
        if func.kind == "pool_class":
            start = func.start_method or self._context_kwarg(expr, scope, order, depth)
            return Value("pool", executor=func.executor, start_method=start, ctor=expr)
        if func.kind == "local_class" and func.executor:
            return Value("pool", executor=func.executor, ctor=expr)
        if func.kind == "local_class":
            return Value("instance", binding=func.binding)
        if func.kind == "dotted" and func.path in GET_CONTEXT:
            method = None
            if expr.args and isinstance(expr.args[0].value, cst.SimpleString):
                text = expr.args[0].value.evaluated_value
                method = text if text in START_METHODS else None
            return Value("context", start_method=method)
        if func.kind == "func" and func.binding is not None:
            inner = func.binding.extra
            if isinstance(inner, Scope):
                return self._call_local_def(inner, expr, scope, order, depth)
        if func.kind == "dotted" and func.path in PASS_THROUGH_CMS and expr.args:
            v = self.value(expr.args[0].value, scope, order, depth)
            return Value("cm", inner=v) if v.kind in ("pool", "lookalike") else UNKNOWN
        if func.kind == "lookalike":
            return func
        if func.kind in ("builtin", "other", "local_class"):
            return OTHER
        return UNKNOWN

    def _call_local_def(
        self, fn: Scope, call: cst.Call, scope: Scope, order: int, depth: int
    ) -> Value:
        """What calling the def ``fn`` gives (``cm``: what its ``with`` binds).

        A returned or yielded parameter is a pass-through (``@contextmanager def
        closing(pool): yield pool``): its value is the argument of this call.
        """
        sources = fn.yields if fn.is_contextmanager else fn.returns
        values = []
        for at, expr in sources:
            arg = self._passed_argument(fn, expr, at, call)
            if arg is not None:
                values.append(self.value(arg, scope, order, depth))
            else:
                values.append(self.value(expr, fn, at, depth))
        v = settle(values)
        if fn.is_contextmanager and v.kind != "unknown":
            return Value("cm", inner=v)
        return v

    @staticmethod
    def _passed_argument(
        fn: Scope, expr: cst.BaseExpression, at: int, call: cst.Call
    ) -> cst.BaseExpression | None:
        """The argument of ``call`` that ``expr`` (a parameter of ``fn``) receives."""
        if not isinstance(expr, cst.Name) or not isinstance(fn.node, cst.FunctionDef):
            return None
        if fn.enclosing_class is not None:
            return None  # a method: the receiver shifts the arguments
        b = lookup(expr.value, fn, at)
        if b is None or b.kind != "param" or b.scope is not fn:
            return None
        params = fn.node.params
        positional = [p.name.value for p in (*params.posonly_params, *params.params)]
        keyword_ok = expr.value not in {p.name.value for p in params.posonly_params}
        for i, arg in enumerate(call.args):
            if arg.star:
                return None
            if arg.keyword is None:
                if i < len(positional) and positional[i] == expr.value:
                    return arg.value
            elif keyword_ok and arg.keyword.value == expr.value:
                return arg.value
        return None

    def _context_kwarg(self, call: cst.Call, scope: Scope, order: int, depth: int) -> str | None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in ("mp_context", "context"):
                v = self.value(arg.value, scope, order, depth)
                if v.kind == "context":
                    return v.start_method
        return None


#: Values known not to be a standard-library pool.
KNOWN_NOT_POOL = frozenset(
    {"other", "builtin", "local_class", "instance", "lookalike", "context", "func"}
)


def settle(values: list[Value]) -> Value:
    """One value for an expression that may have any of ``values`` (in preference order).

    A pool if any is one (the first); else a look-alike if any is one; else
    ``other`` when every value is known not to be a pool; else unknown.
    """
    for v in values:
        if v.kind == "pool":
            return v
    for v in values:
        if v.kind == "lookalike":
            return v
    if values and all(v.kind in KNOWN_NOT_POOL for v in values):
        return OTHER
    return UNKNOWN


def _dotted(path: str) -> Value:
    canonical = POOL_CLASSES.get(path)
    if canonical is not None:
        return Value("pool_class", executor=canonical)
    if is_lookalike(path):
        return Value("lookalike", path=path)
    return Value("dotted", path=path)
