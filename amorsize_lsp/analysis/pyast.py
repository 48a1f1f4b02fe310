"""CPython's ``ast`` of the module being analysed, parsed once per text.

The statement planner and the import-time call graph both need the whole module's
``ast``; parsing a large module costs tens of milliseconds, so the last tree is kept
(keyed by the text itself). Callers must not mutate the tree.
"""

from __future__ import annotations

import ast

_last: tuple[str, ast.Module] | None = None


def parse_python(source: str) -> ast.Module:
    """``ast.parse(source)``, reusing the tree of the previous call on the same text.

    Raises what ``ast.parse`` raises (``SyntaxError``, ``ValueError``,
    ``RecursionError``, ``MemoryError``).
    """
    global _last
    if _last is not None and (_last[0] is source or _last[0] == source):
        return _last[1]
    tree = ast.parse(source)
    _last = (source, tree)
    return tree
