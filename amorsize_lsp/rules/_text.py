"""Small helpers that quote source text in rule messages."""

from __future__ import annotations

from amorsize_lsp.analysis.lines import line_starts, offset_of
from amorsize_lsp.analysis.model import Span

_FRIENDLY = {
    "multiprocessing.pool.Pool": "multiprocessing Pool",
    "torch.multiprocessing.Pool": "torch.multiprocessing Pool",
    "multiprocessing.pool.ThreadPool": "ThreadPool",
    "concurrent.futures.ProcessPoolExecutor": "ProcessPoolExecutor",
    "concurrent.futures.ThreadPoolExecutor": "ThreadPoolExecutor",
}


def text_at(source: str, span: Span) -> str:
    """The source text covered by ``span`` (code-point columns, end exclusive)."""
    starts = line_starts(source)
    begin = offset_of(source, starts, span.line, span.column, clamp=True)
    end = offset_of(source, starts, span.end_line, span.end_column, clamp=True)
    return source[begin:end]


def shorten(text: str, limit: int = 40) -> str:
    """One-line, bounded quote of source text for a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def callee(source: str, span: Span) -> str:
    """What the user calls: ``pool.imap`` for ``pool.imap(f, xs)``, and
    ``Pool(...).imap`` for ``Pool(4).imap(f, xs)`` (inner argument lists elided)."""
    text = text_at(source, span)
    head = _strip_arguments(text)
    return shorten("".join(head.split()), 40) or "the call"


def _strip_arguments(call: str) -> str:
    """The callee part of a call's text, with every parenthesised group shown as ``(...)``.

    Brackets inside string literals are rare in a receiver; they only make the quote
    shorter, never wrong about which method is called.
    """
    out: list[str] = []
    depth = 0
    for ch in call:
        if ch == "(":
            if depth == 0:
                out.append("(...)")
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    head = "".join(out)
    return head[: -len("(...)")] if head.endswith("(...)") else head


def friendly_executor(executor: str | None) -> str:
    if executor is None:
        return "an unknown pool"
    return _FRIENDLY.get(executor, executor)


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"
