"""Line offsets of a source text, shared by edits and the rules' message quoting.

Kept free of libcst so that importing the rules does not load the parser.
"""

from __future__ import annotations


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line; lines end at ``\\n`` only, as in libcst."""
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts
