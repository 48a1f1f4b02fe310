"""Find the code object for a call site's mapped callable and measure it."""

from __future__ import annotations

import os
import types
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from amorsize_lsp.analysis.model import FunctionKind, FunctionRef

from .code_index import module_index
from .complexity import Complexity
from .measure import measure
from .opcodes import CO_OPTIMIZED, code_instructions, source_line
from .workspace import read_workspace_module

#: How many re-exports (``from .impl import f`` in ``__init__.py``) we follow.
MAX_REEXPORT_DEPTH = 4


def function_complexity(
    source: str,
    qualname: str,
    *,
    search_path: Sequence[str] = (),
    module_imports: Mapping[str, str] | None = None,
) -> Complexity:
    """Complexity of the function ``qualname`` defined in ``source``.

    ``qualname`` is Python's (``Class.method``, ``outer.<locals>.inner``; the
    ``<locals>`` markers may be left out). When it is not defined in ``source`` and
    ``search_path`` is given, a dotted import path such as ``pkg.mod.func`` is looked
    up in the workspace. ``module_imports`` (local name -> dotted origin) overrides
    what the module's own import statements say. Never raises for bad source: the
    result is then unresolved, with the reason.
    """
    return _complexity_in(source, qualname, None, search_path, module_imports, 0)


def _complexity_in(
    source: str,
    qualname: str,
    package: str | None,
    search_path: Sequence[str],
    module_imports: Mapping[str, str] | None,
    depth: int,
) -> Complexity:
    index = module_index(source, package)
    if index.error is not None:
        return Complexity.unresolved(index.error)
    imports = {**index.imports, **(module_imports or {})}
    real = qualname if qualname in index.by_qualname else index.by_short_name.get(qualname, "")
    code = index.by_qualname.get(real)
    if code is not None:
        if code.co_flags & CO_OPTIMIZED:
            return _measured(code, real, imports, index.lines)
        init = index.by_qualname.get(f"{real}.__init__")
        if init is not None:
            return _measured(init, f"{real}.__init__", imports, index.lines)
        return Complexity.unresolved(f"class '{qualname}' has no __init__ of its own to analyse")
    head, _, rest = qualname.partition(".")
    if head in imports and search_path and depth < MAX_REEXPORT_DEPTH:
        target = imports[head] + ("." + rest if rest else "")
        return _imported(target, search_path, depth + 1)
    if search_path and rest and depth == 0:
        return _imported(qualname, search_path, depth + 1)
    return Complexity.unresolved(f"function '{qualname}' not found in module")


#: Measurements kept across analyses: an editor re-checks a file whose functions are
#: mostly unchanged, and measuring is most of the cost of a re-check.
_MEASURED: OrderedDict[tuple[Any, ...], Complexity] = OrderedDict()
_MEASURED_SIZE = 2048


def _measured(
    code: types.CodeType, qualname: str, imports: Mapping[str, str], lines: list[str]
) -> Complexity:
    """``measure`` memoised on what it reads: the code object (equal code objects have
    the same instructions, constants, names and line table), the qualname, the imports
    and the function's source lines."""
    first = code.co_firstlineno
    key = (
        code,
        qualname,
        tuple(sorted(imports.items())),
        tuple(lines[first - 1 : _last_line(code)]),
    )
    found = _MEASURED.get(key)
    if found is not None:
        _MEASURED.move_to_end(key)
        return found
    result = measure(code, qualname, imports, lines)
    _MEASURED[key] = result
    if len(_MEASURED) > _MEASURED_SIZE:
        _MEASURED.popitem(last=False)
    return result


def _last_line(code: types.CodeType) -> int:
    """The last source line of ``code`` and the code nested in it."""
    last = max(
        (line for _, _, line in code.co_lines() if line is not None), default=code.co_firstlineno
    )
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            last = max(last, _last_line(const))
    return last


def _imported(dotted: str, search_path: Sequence[str], depth: int) -> Complexity:
    """Complexity of ``pkg.mod.func`` found by reading ``pkg/mod.py`` in the workspace."""
    if dotted.startswith("."):
        return Complexity.unresolved(f"relative import '{dotted}' cannot be resolved here")
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):  # also keeps lookups inside the roots
        return Complexity.unresolved(f"'{dotted}' is not a dotted import path")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = read_workspace_module(module, search_path)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
            return Complexity.unresolved(f"cannot read module '{module}': {exc}")
        if found is None:
            continue
        path, source = found
        package = module if os.path.basename(path) == "__init__.py" else module.rpartition(".")[0]
        inner = ".".join(parts[cut:])
        result = _complexity_in(source, inner, package, search_path, None, depth)
        if not result.resolved and result.reason and "not found in module" in result.reason:
            if cut < len(parts) - 1:  # a longer module path was tried first, and is missing
                longest = ".".join(parts[:-1])
                return Complexity.unresolved(
                    f"module '{longest}' not found on the search path, "
                    f"nor '{inner}' in module '{module}'"
                )
            return Complexity.unresolved(f"function '{inner}' not found in module '{module}'")
        return result
    module = ".".join(parts[:-1]) or dotted
    return Complexity.unresolved(f"module '{module}' not found on the search path")


_NO_BYTECODE = {
    FunctionKind.BUILTIN: "builtin: no Python bytecode",
    FunctionKind.UNKNOWN: "the mapped callable could not be resolved statically",
}


def complexity_for(
    ref: FunctionRef,
    source: str,
    search_path: Sequence[str] = (),
    module_imports: Mapping[str, str] | None = None,
) -> Complexity:
    """Complexity of a call site's mapped callable, whatever kind of reference it is.

    ``module_imports`` stands in for the module's imports when ``source`` is only
    the statement that defines the callable (an editor re-measuring one function).
    """
    kind = ref.kind
    if kind in _NO_BYTECODE:
        return Complexity.unresolved(f"{_NO_BYTECODE[kind]} ({ref.text!r})")
    if kind is FunctionKind.PARTIAL:
        if ref.wrapped is None:
            return Complexity.unresolved(f"the callable wrapped by {ref.text!r} is unknown")
        return complexity_for(ref.wrapped, source, search_path, module_imports)
    if kind is FunctionKind.LAMBDA:
        return _lambda_complexity(ref, source)
    qualname = ref.qualname or (ref.text if ref.text.isidentifier() else None)
    if not qualname:
        return Complexity.unresolved(f"no qualified name for {ref.text!r}")
    if kind is FunctionKind.IMPORTED:
        if not search_path:
            return Complexity.unresolved(
                f"'{qualname}' is imported and no search path was given to find its module"
            )
        index = module_index(source)
        if index.error is not None:
            return Complexity.unresolved(index.error)
        return _imported(qualname, search_path, 1)
    return function_complexity(
        source, qualname, search_path=search_path, module_imports=module_imports
    )


def _lambda_complexity(ref: FunctionRef, source: str) -> Complexity:
    index = module_index(source)
    if index.error is not None:
        return Complexity.unresolved(index.error)
    span = ref.span
    if span is None:
        return Complexity.unresolved(f"lambda {ref.text!r} has no source position")
    best = None
    for code in index.lambdas:
        if not span.line <= code.co_firstlineno <= span.end_line:
            continue
        start = _body_start(code, index.lines)
        if start is None:  # Python 3.10: no columns, take the first lambda on the line
            best = best or code
        elif (span.line, span.column) <= start <= (span.end_line, span.end_column):
            best = code
            break
    if best is None:
        return Complexity.unresolved(f"no lambda found at line {span.line}")
    return measure(best, "<lambda>", index.imports, index.lines)


def _body_start(code: types.CodeType, lines: list[str]) -> tuple[int, int] | None:
    """Earliest (line, code-point column) of a lambda's body; None before 3.11.

    ``RESUME`` and the other prologue instructions carry a zero-width position at
    column 0 and are skipped.
    """
    if not hasattr(code, "co_positions"):
        return None
    known = [
        (p.lineno, p.col_offset)
        for i in code_instructions(code)
        if (p := i.positions) is not None
        and p.lineno is not None
        and p.col_offset is not None
        and (p.end_col_offset != p.col_offset or p.end_lineno != p.lineno)
    ]
    if not known:
        return None
    line, byte_col = min(known)
    return line, len(source_line(lines, line).encode("utf-8")[:byte_col].decode("utf-8", "ignore"))
