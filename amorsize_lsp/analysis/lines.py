"""Line offsets and (line, column) <-> offset conversion: the one place positions are computed.

Lines are 1-based and end at ``\\n`` only, as in libcst; columns are 0-based code
points (or bytes, for byte strings). Kept free of libcst so that the rules, the CLI
and the server can convert positions without loading the parser.
"""

from __future__ import annotations

#: The last few texts (by identity) and their line starts: rules and fixes ask again
#: and again about the same source, once per call site, which made a big file quadratic.
_recent: list[tuple[str, list[int]]] = []
#: Shorter texts (the snippets of one call that edits parse) are not kept: they are
#: cheap to scan and would push the module out of ``_recent``.
_KEEP_FROM = 2048


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line (do not modify the list: it is shared)."""
    for seen, starts in _recent:
        if seen is text:
            return starts
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    if len(text) >= _KEEP_FROM:
        _recent.insert(0, (text, starts))
        del _recent[4:]
    return starts


def offset_of(text: str, starts: list[int], line: int, column: int, *, clamp: bool = False) -> int:
    """Offset of (1-based ``line``, 0-based ``column``); the column may be the line's end.

    Out-of-range positions raise ``ValueError`` naming the position, or with
    ``clamp`` are pulled back into the text (for quoting source in messages).
    """
    if not 1 <= line <= len(starts):
        if clamp:
            return len(text) if line > len(starts) else 0
        raise ValueError(f"line {line} is outside the source ({len(starts)} lines)")
    start = starts[line - 1]
    end = starts[line] - 1 if line < len(starts) else len(text)
    if not 0 <= column <= end - start:
        if clamp:
            return start + max(0, min(column, end - start))
        raise ValueError(f"column {column + 1} is outside line {line}")
    return start + column


def position_of(text: str | bytes, offset: int) -> tuple[int, int]:
    """(1-based line, 0-based column) of ``offset`` in ``text`` (str or bytes)."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line = text.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    return line, offset - (text.rfind(newline, 0, offset) + 1)  # type: ignore[arg-type]
