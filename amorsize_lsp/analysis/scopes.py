"""One walk over a libcst module that records scopes, bindings and candidate calls.

This is the purpose-built replacement for libcst's whole-tree Scope and
QualifiedName providers: it keeps only what pool resolution needs (imports,
assignments, defs, classes, parameters, ``with`` targets, returns and yields),
and lets ``resolve.py`` evaluate names lazily, for the few calls that matter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst

from .model import POOL_METHODS
from .pool_names import STAR_EXPORTS

BindingKind = Literal["import", "from", "assign", "def", "class", "param", "with", "unknown"]
ScopeKind = Literal["module", "class", "function", "lambda", "comprehension"]

CLOSE_METHODS = frozenset({"close", "terminate", "shutdown"})
CLOSER_FUNCS = frozenset({"closing", "enter_context", "callback", "push"})
#: Calls that look at a pool without keeping it: passing it to them is no hand-over.
VIEWING_FUNCS = frozenset(
    {"print", "repr", "str", "len", "isinstance", "id", "type", "hash", "bool", "format"}
)
#: Context managers whose block is expected to raise (``pytest.raises``, unittest's).
RAISES_MANAGERS = frozenset({"raises", "assertRaises", "assertRaisesRegex"})


@dataclass(eq=False)
class Binding:
    """One way a name gets a value: ``kind`` says how, ``value`` what to evaluate.

    ``value`` is the assigned expression (``assign``, ``with``), the dotted path
    (``import``, ``from``), the def or class node (``def``, ``class``; None for
    a stub) or the parameter's name (``param``). ``extra`` is the scope a def or
    class opens, or a parameter's (or bare ``x: T``) annotation.
    """

    order: int
    kind: BindingKind
    value: cst.CSTNode | str | None = None
    scope: Scope | None = None  # where ``value`` is evaluated
    extra: Scope | cst.BaseExpression | None = None


@dataclass(eq=False)
class Scope:
    """A module, class, function, lambda or comprehension scope, with its bindings."""

    kind: ScopeKind
    node: cst.CSTNode | None
    parent: Scope | None
    qualname: str = ""
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    #: class scopes: ``self.attr = value`` bindings from its methods.
    self_attrs: dict[str, list[Binding]] = field(default_factory=dict)
    #: class scopes: attributes closed by ``self.attr.close()`` in some method, or
    #: handed to another call (which then owns them).
    self_closed: set[str] = field(default_factory=set)
    #: function scopes: returned and yielded expressions, with their order.
    returns: list[tuple[int, cst.BaseExpression]] = field(default_factory=list)
    yields: list[tuple[int, cst.BaseExpression]] = field(default_factory=list)
    #: names closed, used in ``with``, returned, or handed to another call here.
    closed_names: set[str] = field(default_factory=set)
    #: function scopes: the name of the first parameter of a method (``self``).
    self_name: str | None = None
    is_staticmethod: bool = False
    is_contextmanager: bool = False

    def bind(self, name: str, binding: Binding) -> None:
        target = self
        if name in self.global_names:
            while target.parent is not None:
                target = target.parent
        target.bindings.setdefault(name, []).append(binding)

    def child_qualname(self, name: str) -> str:
        if self.kind == "module":
            return name
        if self.kind in ("function", "lambda"):
            return f"{self.qualname}.<locals>.{name}"
        return f"{self.qualname}.{name}"

    @property
    def enclosing_class(self) -> Scope | None:
        """For a method's scope, the class it belongs to."""
        if self.kind == "function" and self.parent is not None and self.parent.kind == "class":
            return self.parent
        return None


@dataclass(eq=False)
class CallRecord:
    """A call that may be a pool constructor or a pool-map call, with its context."""

    node: cst.Call
    scope: Scope
    order: int
    in_loop: bool
    main_guarded: bool
    module_level: bool
    statement_index: int
    unit: object = None
    with_managed: bool = False
    bound_name: str | None = None
    bound_self_attr: str | None = None
    #: Inside a comprehension (one call per element), not only a ``for``/``while`` body.
    in_comprehension: bool = False
    #: Inside ``with pytest.raises(...)`` or ``self.assertRaises(...)``.
    expected_to_raise: bool = False
    #: The method called on this call's result right away (``map`` in ``Pool(2).map``).
    chained_method: str | None = None


def is_main_test(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    op = test.comparisons[0]
    if not isinstance(op.operator, cst.Equal):
        return False
    sides = (test.left, op.comparator)
    has_name = any(isinstance(s, cst.Name) and s.value == "__name__" for s in sides)
    has_main = any(
        isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__" for s in sides
    )
    return has_name and has_main


def _is_raises_manager(item: cst.BaseExpression) -> bool:
    """``pytest.raises(E)``, ``self.assertRaises(E)``, ``raises(E)``: a block meant to fail."""
    if not isinstance(item, cst.Call):
        return False
    func = item.func
    name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
    return name in RAISES_MANAGERS


def _target_names(target: cst.BaseExpression) -> list[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[cst.Name] = []
        for el in target.elements:
            out.extend(_target_names(el.value))
        return out
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _decorator_names(node: cst.FunctionDef) -> set[str]:
    names = set()
    for dec in node.decorators:
        d = dec.decorator
        if isinstance(d, cst.Call):
            d = d.func
        if isinstance(d, cst.Name):
            names.add(d.value)
        elif isinstance(d, cst.Attribute):
            names.add(d.attr.value)
    return names


#: Fields that hold only syntax (whitespace, punctuation, operators): never walked.
_SYNTAX_FIELDS = frozenset(
    {
        "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators",
        "header", "footer", "trailing_whitespace", "equal", "colon", "newline", "dot",
        "operator", "asynchronous", "lbracket", "rbracket", "lbrace", "rbrace", "star",
        "whitespace", "arrow",
    }
)  # fmt: skip
_FIELDS: dict[type, tuple[str, ...]] = {}


def _walk_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in _SYNTAX_FIELDS and not f.name.startswith("whitespace")
        )
        _FIELDS[cls] = names
    return names


class ScopeBuilder:
    """Walks one module: scopes and bindings, plus every call with its context.

    The walk reads dataclass fields directly instead of libcst's ``visit``,
    which rebuilds every node it passes and costs several times more.
    """

    def walk(self, node: cst.CSTNode) -> None:
        cls = type(node)
        handlers = self._handlers.get(cls)
        if handlers is None:
            handlers = (
                getattr(self, f"visit_{cls.__name__}", None),
                getattr(self, f"leave_{cls.__name__}", None),
            )
            self._handlers[cls] = handlers
        visit, leave = handlers
        if visit is None or visit(node) is not False:
            for name in _walk_fields(cls):
                value = getattr(node, name)
                if isinstance(value, cst.CSTNode):
                    self.walk(value)
                elif isinstance(value, (tuple, list)):
                    for item in value:
                        if isinstance(item, cst.CSTNode):
                            self.walk(item)
        if leave is not None:
            leave(node)

    def __init__(self) -> None:
        self._handlers: dict[type, tuple] = {}
        self.module_scope = Scope("module", None, None)
        self.scope = self.module_scope
        self.order = 0
        self.calls: list[CallRecord] = []
        self.statement_index = 0
        self.unit: object = None
        self._loop_depth = [0]
        self._guard_blocks: set[int] = set()
        self._loop_blocks: set[int] = set()
        self._guard_depth = 0
        self._comprehension_depth = [0]
        self._raises_blocks: set[int] = set()
        self._raises_depth = 0
        self._chained: dict[int, str] = {}
        self._with_items: set[int] = set()
        self._assigned: dict[int, tuple[str | None, str | None]] = {}
        self._scope_of: dict[int, Scope] = {}

    # -- helpers -------------------------------------------------------------
    def _next(self) -> int:
        self.order += 1
        return self.order

    def _push(self, kind: ScopeKind, node: cst.CSTNode, name: str = "") -> Scope:
        parent = self.scope
        qual = parent.child_qualname(name) if name else parent.qualname
        scope = Scope(kind, node, parent, qualname=qual)
        self._scope_of[id(node)] = scope
        self.scope = scope
        return scope

    def _pop(self) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    def _binding_scope(self) -> Scope:
        s = self.scope
        while s.kind == "comprehension" and s.parent is not None:
            s = s.parent
        return s

    def _bind_target(
        self,
        target: cst.BaseExpression,
        kind: BindingKind | Literal["walrus"],
        value: cst.BaseExpression | None,
        extra: cst.BaseExpression | None = None,
    ) -> None:
        scope = self._binding_scope() if kind == "walrus" else self.scope
        if isinstance(target, cst.Name):
            scope.bind(
                target.value,
                Binding(self._next(), "assign" if kind == "walrus" else kind, value, scope, extra),
            )
            return
        if (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and scope.self_name is not None
            and target.value.value == scope.self_name
            and (cls := scope.enclosing_class) is not None
        ):
            cls.self_attrs.setdefault(target.attr.value, []).append(
                Binding(self._next(), kind, value, scope, extra)
            )
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            values = None
            if kind == "assign" and isinstance(value, (cst.Tuple, cst.List)):
                values = [e.value for e in value.elements]
                if any(isinstance(e, cst.StarredElement) for e in value.elements):
                    values = None
            for i, el in enumerate(target.elements):
                if values is not None and len(values) == len(target.elements):
                    self._bind_target(el.value, kind, values[i])
                else:
                    self._bind_target(el.value, "unknown", None)
            return
        if isinstance(target, cst.StarredElement):
            self._bind_target(target.value, "unknown", None)

    # -- statements ----------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = cst.helpers.get_full_name_for_node(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scope.bind(
                    alias.asname.name.value, Binding(self._next(), "import", dotted, self.scope)
                )
            else:
                top = dotted.split(".")[0]
                self.scope.bind(top, Binding(self._next(), "import", top, self.scope))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            module = None
        else:
            module = cst.helpers.get_full_name_for_node(node.module)
        if isinstance(node.names, cst.ImportStar):
            if module is not None:
                for name in STAR_EXPORTS.get(module, ()):
                    self.scope.bind(
                        name, Binding(self._next(), "from", f"{module}.{name}", self.scope)
                    )
            return
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            dotted = f"{module}.{name}" if module else None
            kind = "from" if dotted else "unknown"
            self.scope.bind(local, Binding(self._next(), kind, dotted, self.scope))

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and len(node.targets) == 1:
            self._mark_assigned(node.targets[0].target, node.value)

    def leave_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._bind_target(t.target, "assign", node.value)
            if isinstance(node.value, cst.Name):
                # ``self.pool = pool`` or ``other = pool``: ownership moves on.
                self.scope.closed_names.add(node.value.value)

    def _mark_assigned(self, target: cst.BaseExpression, value: cst.Call) -> None:
        if isinstance(target, cst.Name):
            self._assigned[id(value)] = (target.value, None)
        elif (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == self.scope.self_name
        ):
            self._assigned[id(value)] = (None, target.attr.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if isinstance(node.value, cst.Call):
            self._mark_assigned(node.target, node.value)

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, "assign", node.value)
        else:
            self._bind_target(node.target, "param", None, node.annotation.annotation)

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind_target(node.target, "unknown", None)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if isinstance(node.value, cst.Call):
            self._mark_assigned(node.target, node.value)

    def leave_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, "walrus", node.value)

    def visit_Global(self, node: cst.Global) -> None:
        self.scope.global_names.update(n.name.value for n in node.names)

    def visit_With(self, node: cst.With) -> None:
        if any(_is_raises_manager(item.item) for item in node.items):
            self._raises_blocks.add(id(node.body))
        for item in node.items:
            self._with_items.add(id(item.item))
            if isinstance(item.item, cst.Name):
                self.scope.closed_names.add(item.item.value)

    def leave_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, "with", node.item)

    def visit_For(self, node: cst.For) -> None:
        self._loop_blocks.add(id(node.body))

    def leave_For(self, node: cst.For) -> None:
        self._bind_target(node.target, "unknown", None)

    def visit_While(self, node: cst.While) -> None:
        self._loop_blocks.add(id(node.body))

    def visit_If(self, node: cst.If) -> None:
        if is_main_test(node.test):
            self._guard_blocks.add(id(node.body))

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._enter_block(node)

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._leave_block(node)

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._enter_block(node)

    def leave_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        self._leave_block(node)

    def _enter_block(self, node: cst.CSTNode) -> None:
        if id(node) in self._loop_blocks:
            self._loop_depth[-1] += 1
        if id(node) in self._guard_blocks:
            self._guard_depth += 1
        if id(node) in self._raises_blocks:
            self._raises_depth += 1

    def _leave_block(self, node: cst.CSTNode) -> None:
        if id(node) in self._loop_blocks:
            self._loop_depth[-1] -= 1
        if id(node) in self._guard_blocks:
            self._guard_depth -= 1
        if id(node) in self._raises_blocks:
            self._raises_depth -= 1

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._bind_target(node.name.name, "unknown", None)

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self._binding_scope().returns.append((self._next(), node.value))
            if isinstance(node.value, cst.Name):
                self.scope.closed_names.add(node.value.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        if isinstance(node.value, cst.BaseExpression):
            self._binding_scope().yields.append((self._next(), node.value))
            if isinstance(node.value, cst.Name):
                self.scope.closed_names.add(node.value.value)

    # -- scopes --------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        # Decorators, defaults and annotations belong to the enclosing scope.
        for dec in node.decorators:
            self.walk(dec)
        outer = self.scope
        scope = self._push("function", node, node.name.value)
        decorators = _decorator_names(node)
        scope.is_staticmethod = "staticmethod" in decorators
        scope.is_contextmanager = bool(decorators & {"contextmanager", "asynccontextmanager"})
        params = node.params
        positional = [*params.posonly_params, *params.params]
        if outer.kind == "class" and positional and not scope.is_staticmethod:
            scope.self_name = positional[0].name.value
        self._loop_depth.append(0)
        self._comprehension_depth.append(0)
        all_params = [*positional, *params.kwonly_params]
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                all_params.append(extra)
        for p in all_params:
            ann = p.annotation.annotation if p.annotation is not None else None
            scope.bind(p.name.value, Binding(self._next(), "param", p.name.value, scope, ann))
        self.walk(node.body)
        self._loop_depth.pop()
        self._comprehension_depth.pop()
        self._pop()
        outer.bind(node.name.value, Binding(self._next(), "def", node, outer, scope))
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        scope = self._push("lambda", node, "<lambda>")
        self._loop_depth.append(0)
        self._comprehension_depth.append(0)
        for p in node.params.params:
            scope.bind(p.name.value, Binding(self._next(), "param", p.name.value, scope, None))
        self.walk(node.body)
        self._loop_depth.pop()
        self._comprehension_depth.pop()
        self._pop()
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        for dec in node.decorators:
            self.walk(dec)
        for base in node.bases:
            self.walk(base)
        outer = self.scope
        scope = self._push("class", node, node.name.value)
        self.walk(node.body)
        self._pop()
        outer.bind(node.name.value, Binding(self._next(), "class", node, outer, scope))
        return False

    def _visit_comprehension(self, node: cst.CSTNode) -> None:
        self._push("comprehension", node, "")
        self._loop_depth[-1] += 1
        self._comprehension_depth[-1] += 1

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        self._loop_depth[-1] -= 1
        self._comprehension_depth[-1] -= 1
        self._pop()

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension
    leave_ListComp = leave_SetComp = leave_DictComp = leave_GeneratorExp = _leave_comprehension

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, "unknown", None)

    # -- calls ---------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            if attr in CLOSE_METHODS:
                self._note_closed(func.value)
            elif attr not in POOL_METHODS and attr in CLOSER_FUNCS:
                for arg in node.args:
                    self._note_closed(arg.value)
        elif isinstance(func, cst.Name) and func.value in CLOSER_FUNCS:
            for arg in node.args:
                self._note_closed(arg.value)
        if not (isinstance(func, cst.Name) and func.value in VIEWING_FUNCS):
            # ``register(pool)``, ``loop.set_default_executor(ex)``, ``pools.append(p)``:
            # whoever receives the pool now owns it (and closes it, or not).
            for arg in node.args:
                self._note_closed(arg.value)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            self._chained[id(func.value)] = func.attr.value
        fn_scope = self.scope
        while fn_scope.kind in ("comprehension", "class") and fn_scope.parent is not None:
            fn_scope = fn_scope.parent
        bound = self._assigned.get(id(node), (None, None))
        self.calls.append(
            CallRecord(
                node=node,
                scope=self.scope,
                order=self._next(),
                in_loop=self._loop_depth[-1] > 0,
                main_guarded=self._guard_depth > 0,
                module_level=fn_scope.kind == "module",
                statement_index=self.statement_index,
                unit=self.unit,
                with_managed=id(node) in self._with_items,
                bound_name=bound[0],
                bound_self_attr=bound[1],
                in_comprehension=self._comprehension_depth[-1] > 0,
                expected_to_raise=self._raises_depth > 0,
                # The outer call is visited first, so its method is already known.
                chained_method=self._chained.pop(id(node), None),
            )
        )

    def _note_closed(self, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.Attribute) and value.attr.value in CLOSE_METHODS:
            value = value.value  # ``atexit.register(pool.terminate)``
        if isinstance(value, cst.Name):
            self.scope.closed_names.add(value.value)
        elif (
            isinstance(value, cst.Attribute)
            and isinstance(value.value, cst.Name)
            and value.value.value == self.scope.self_name
            and (cls := self.scope.enclosing_class) is not None
        ):
            cls.self_closed.add(value.attr.value)

    # -- driving ---------------------------------------------------------------
    def add_unit(self, module: cst.Module, unit: object, first_index: int) -> None:
        """Walk the top-level statements of ``module`` (a whole module or one statement)."""
        self.unit = unit
        for offset, stmt in enumerate(module.body):
            self.statement_index = first_index + offset
            self.walk(stmt)

    def add_stub(self, name: str, kind: Literal["def", "class"]) -> None:
        """Bind a module-level def or class that was not parsed: its name and kind only."""
        scope = Scope("function" if kind == "def" else "class", None, self.module_scope, name)
        self.module_scope.bind(name, Binding(self._next(), kind, None, self.module_scope, scope))
