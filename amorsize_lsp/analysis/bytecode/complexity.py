"""The result type of the bytecode analysis."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

TOO_DEEP = "code nests too deeply to analyse (hundreds of nested functions or lambdas)"


@dataclass(frozen=True, slots=True)
class Complexity:
    """Static cost indicators of one function, nested code included.

    ``resolved`` is False (and every figure zero) when there is no Python bytecode
    to read; ``reason`` then says why, in words fit to show the user.
    """

    resolved: bool
    reason: str | None = None
    bytecode_size: int = 0
    instruction_count: int = 0
    loop_count: int = 0
    max_loop_depth: int = 0
    call_count: int = 0
    recursive: bool = False
    blocking_io: bool = False
    io_calls: tuple[str, ...] = ()
    code_hash: str | None = None

    @classmethod
    def unresolved(cls, reason: str) -> Complexity:
        """The zero complexity, with the reason there is nothing to measure."""
        return cls(resolved=False, reason=reason)

    def to_json(self) -> dict[str, Any]:
        """The ``complexity`` object of the call-site dump."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["io_calls"] = list(self.io_calls)
        return out
