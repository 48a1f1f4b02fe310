"""Split a module into top-level statements and choose which ones libcst must parse.

libcst parses about ten times slower than CPython's own parser, and most of a
module cannot hold a pool. So CPython's ``ast`` splits the module into its
top-level statements (the same units as libcst's ``Module.body``), and only the
statements that matter are parsed with libcst, each on its own and cached by
its text, so that an editor re-parses only the statements that changed:

- *relevant* statements, which may hold a pool constructor or a map call: their
  text names a ``Pool`` class, ``get_context`` or a pool-only method, or uses a
  name that another relevant statement binds (``P = mp.Pool``, a helper that
  returns a pool, a pool subclass), to a fixpoint;
- the imports and assignments that bind names the parsed statements use, so
  that names resolve;
- for any other def or class that a parsed statement names, only a stub binding
  (its name and kind), which is all resolution needs of it; except a def that
  returns or yields a parameter (a pass-through) and the base of a parsed
  class that sets a pool factory as a class attribute, which are parsed whole.
"""

from __future__ import annotations

import ast
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import libcst as cst

from .model import POOL_ONLY_CALL
from .pool_names import STAR_EXPORTS

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POOL_TEXT = re.compile(rf"Pool|get_context|{POOL_ONLY_CALL}")
_CACHE_SIZE = 4096
#: A def or class that is bound by name only: ``(name, "def" | "class")``.
Stub = tuple[str, Literal["def", "class"]]
_cache: OrderedDict[str, cst.Module] = OrderedDict()
#: Pass-through defs by statement text: an editor re-checks mostly unchanged statements.
_PASS_THROUGHS: OrderedDict[str, frozenset[str]] = OrderedDict()


@dataclass(eq=False)
class Statement:
    """One top-level statement (a libcst ``Module.body`` entry) and what it needs."""

    index: int
    first_line: int
    last_line: int
    text: str
    nodes: list[ast.stmt]
    words: frozenset[str] = frozenset()
    binds: frozenset[str] = frozenset()
    #: "full" (parse with libcst), "stub" (bind names only) or "" (skip).
    mode: Literal["full", "stub", ""] = ""
    module: cst.Module | None = None
    stubs: list[Stub] = field(default_factory=list)
    #: Bases of its classes that set a pool factory (computed once, on demand).
    factory_bases: frozenset[str] | None = None
    #: Names of its defs that pass a parameter through (computed once, on demand).
    pass_throughs: frozenset[str] | None = None


def parse_statement(text: str) -> cst.Module:
    """libcst parse of one statement's text, memoised by text (LRU)."""
    module = _cache.get(text)
    if module is not None:
        _cache.move_to_end(text)
        return module
    import libcst  # here: the language server splits statements without loading libcst

    module = libcst.parse_module(text)
    _cache[text] = module
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return module


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)])


def split_statements(source: str, tree: ast.Module) -> list[Statement]:
    """Group ``tree``'s statements the way libcst does (``a; b`` is one line)."""
    lines = _LINE_BREAK.split(source)
    groups: list[Statement] = []
    for node in tree.body:
        first, last = _first_line(node), node.end_lineno or node.lineno
        if groups and first <= groups[-1].last_line:
            groups[-1].last_line = max(groups[-1].last_line, last)
            groups[-1].nodes.append(node)
            continue
        groups.append(Statement(len(groups), first, last, "", [node]))
    for g in groups:
        g.text = "\n".join(lines[g.first_line - 1 : g.last_line]) + "\n"
        g.words = frozenset(_WORD.findall(g.text))
        g.binds = frozenset(_bound_names(g.nodes))
    return groups


def _bound_names(nodes: list[ast.stmt]) -> set[str]:
    """Names a top-level statement binds in module scope (not inside defs)."""
    out: set[str] = set()
    stack: list[ast.AST] = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.names[0].name == "*":
                out.update(STAR_EXPORTS.get(node.module or "", ()))
                continue
            for alias in node.names:
                out.add((alias.asname or alias.name).split(".")[0])
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _is_definition(g: Statement) -> bool:
    return all(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in g.nodes
    )


def _needs_body(h: Statement, word: str, user: Statement) -> bool:
    """Whether the def or class ``h``, named ``word`` in ``user``, must be parsed whole.

    A function that returns or yields one of its parameters passes the caller's
    argument through (``@contextmanager def closing(pool): yield pool``), and a
    class that a parsed class derives from may hold the method that builds the
    pool (``self.POOL_TYPE(...)``) when that class sets the factory: both need
    their bodies; other defs, a stub.
    """
    if h.pass_throughs is None:  # asked once per (user, name) pair: walk each def once
        h.pass_throughs = _PASS_THROUGHS.get(h.text)
        if h.pass_throughs is None:
            h.pass_throughs = frozenset(
                n.name
                for n in h.nodes
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _passes_a_parameter(n)
            )
            _PASS_THROUGHS[h.text] = h.pass_throughs
            if len(_PASS_THROUGHS) > _CACHE_SIZE:
                _PASS_THROUGHS.popitem(last=False)
    for node in h.nodes:
        if node.name != word:  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.ClassDef):
            return word in _base_names(user)
        if word in h.pass_throughs:
            return True
    return False


def stays_a_stub(nodes: list[ast.stmt]) -> bool:
    """Whether a def or class statement bound as a stub would still be one with these
    nodes: a class's role depends on its users' text, a def's on whether it passes a
    parameter through (see :func:`_needs_body`)."""
    return all(
        isinstance(n, ast.ClassDef)
        or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _passes_a_parameter(n))
        for n in nodes
    )


def _base_names(g: Statement) -> frozenset[str]:
    """Bases of the classes in ``g`` that set a pool factory as a class attribute.

    Asked once per (statement, name) pair by the selection, so it is kept on ``g``.
    """
    if g.factory_bases is None:
        g.factory_bases = frozenset(_factory_bases(g))
    return g.factory_bases


def _factory_bases(g: Statement) -> set[str]:
    names: set[str] = set()
    for node in g.nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.ClassDef) and _sets_a_pool_factory(sub):
                for base in sub.bases:
                    while isinstance(base, ast.Attribute):
                        base = base.value
                    if isinstance(base, ast.Name):
                        names.add(base.id)
    return names


def _sets_a_pool_factory(cls: ast.ClassDef) -> bool:
    """``POOL_TYPE = mp.get_context("spawn").Pool`` (or any pool name) in the class body."""
    for stmt in cls.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            for sub in ast.walk(stmt.value):
                word = sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", "")
                if "Pool" in word or word == "get_context":
                    return True
    return False


def _passes_a_parameter(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = fn.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if (
            isinstance(node, (ast.Return, ast.Yield))
            and isinstance(node.value, ast.Name)
            and node.value.id in params
        ):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


#: The last text's selected statements (see :func:`selected`).
_last_selected: tuple[str, list[Statement]] | None = None


def selected(source: str, tree: ast.Module) -> list[Statement]:
    """``split_statements`` then ``select`` for ``tree`` (the tree of ``source``),
    kept for the last text: the analysis plans with it and the language server's
    worker lays out its snapshot with it, on every re-check. Do not change the
    statements it returns."""
    global _last_selected
    if _last_selected is not None and _last_selected[0] == source:
        return _last_selected[1]
    groups = split_statements(source, tree)
    select(groups)
    _last_selected = (source, groups)
    return groups


def select(groups: list[Statement]) -> None:
    """Set each statement's ``mode``: parse it fully, bind stubs, or skip it."""
    relevant = [_POOL_TEXT.search(g.text) is not None for g in groups]
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for i, g in enumerate(groups):
            if relevant[i]:
                if not g.binds <= tainted:
                    tainted |= g.binds
                    changed = True
            elif g.words & tainted:
                relevant[i] = True
                changed = True
    binders: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        for name in g.binds:
            binders.setdefault(name, []).append(i)
    pending = [i for i, r in enumerate(relevant) if r]
    for i in pending:
        groups[i].mode = "full"
    while pending:
        g = groups[pending.pop()]
        for word in g.words:
            for j in binders.get(word, ()):
                h = groups[j]
                if h.mode == "full":
                    continue
                if _is_definition(h) and not _needs_body(h, word, g):
                    h.mode = "stub"
                    h.stubs = [
                        (n.name, "class" if isinstance(n, ast.ClassDef) else "def")
                        for n in h.nodes
                        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    ]
                else:
                    h.mode = "full"
                    pending.append(j)
