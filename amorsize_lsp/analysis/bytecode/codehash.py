"""A stable hash of a code object: measurements are keyed by it."""

from __future__ import annotations

import hashlib
import types

#: Length of the hex code-hash prefix we report (64 bits: collisions are negligible).
CODE_HASH_LENGTH = 16


def code_hash(code: types.CodeType) -> str:
    """Stable hex digest over ``co_code``, ``co_consts`` and ``co_names``, recursively.

    Stable across processes (no ``id()``, frozenset constants are sorted), and
    different for ``x*2`` and ``x*3``, unlike a hash of ``co_code`` alone.
    """
    return _code_digest(code).hex()[:CODE_HASH_LENGTH]


def _code_digest(code: types.CodeType) -> bytes:
    h = hashlib.sha256()
    h.update(b"code")
    h.update(code.co_code)
    h.update(b"consts")
    for const in code.co_consts:
        h.update(_const_digest(const))
    h.update(b"names")
    for name in code.co_names:
        h.update(name.encode("utf-8", "surrogatepass") + b"\x00")
    return h.digest()


def _const_digest(const: object) -> bytes:
    if isinstance(const, types.CodeType):
        return _code_digest(const)
    if isinstance(const, tuple):
        parts = [_const_digest(c) for c in const]
    elif isinstance(const, frozenset):
        parts = sorted(_const_digest(c) for c in const)
    else:
        text = f"{type(const).__qualname__}:{const!r}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return hashlib.sha256(type(const).__name__.encode() + b"".join(parts)).digest()
