"""The analysis entry point: bytes or text in, call sites with complexity out.

It owns the one decode path (size, NUL bytes, encoding) that every client goes
through, the textual
prefilter that skips files which cannot contain a pool call or constructor, and
attaching each call site's bytecode complexity.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Sequence

from .lines import position_of
from .model import POOL_ONLY_CALL, AnalysisError, ModuleAnalysis

#: Files larger than this are reported, not parsed: a generated blob is no one's pool code.
MAX_SOURCE_BYTES = 8 * 1024 * 1024

# Every call site is an attribute call ``<recv>.<method>(``: the dot, the method
# name and the opening parenthesis may be separated only by whitespace (and line
# continuations). Pool-only method names are reported even on unknown receivers.
_POOL_ONLY_CALL = re.compile(POOL_ONLY_CALL)
# ``.map`` and every pool constructor need a name that resolves into one of the
# pool modules, so the module's name must appear in the text (an import of it),
# and every pool class name (Pool, ThreadPool, ProcessPoolExecutor,
# ThreadPoolExecutor) contains "Pool", which an import or attribute must spell.
_POOL_MODULE = re.compile(r"multiprocessing|concurrent")


def may_contain_callsites(text: str) -> bool:
    """False only when ``text`` cannot hold a call site or a pool constructor.

    A resolved pool comes from an import of ``multiprocessing`` (also
    ``torch.multiprocessing``) or ``concurrent`` naming a ``*Pool*`` class; an
    unresolved receiver is
    reported only for pool-only method names. Checked against the full parse
    over the whole standard library by the test suite.
    """
    if "Pool" in text and _POOL_MODULE.search(text) is not None:
        return True
    return _POOL_ONLY_CALL.search(text) is not None


#: A PEP 263 coding declaration, on one of the first two lines.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


def declared_encoding(data: bytes) -> str | None:
    """The encoding a PEP 263 comment on the first two lines declares, if any."""
    head = b"\n".join(data.split(b"\n", 2)[:2])
    match = _CODING.search(head)
    return match.group(1).decode("ascii", "replace") if match else None


def decode_source(source: str | bytes, path: str) -> tuple[str, str]:
    """The one decode path: size and NUL checks, then decoding like Python: (text, encoding).

    Bytes are decoded per PEP 263 (BOM, coding comment, else UTF-8). Anything that is
    not source text raises :class:`AnalysisError` naming the first offending line, so
    no later step (the prefilter included) can hide it.
    """
    if len(source) > MAX_SOURCE_BYTES:
        unit = "MB" if isinstance(source, bytes) else "million characters"
        raise AnalysisError(
            path,
            f"file is {len(source) / 1e6:.1f} {unit}, over the "
            f"{MAX_SOURCE_BYTES // 2**20} MiB limit; exclude it from analysis",
        )
    if isinstance(source, str):
        if "\0" in source:
            line, column = position_of(source, source.index("\0"))
            raise AnalysisError(
                path, f"not a text file: NUL character at line {line}", line, column
            )
        return source, "utf-8"
    declared = declared_encoding(source)
    name = declared or "UTF-8"
    if b"\0" in source:
        line, column = position_of(source, source.index(b"\0"))
        raise AnalysisError(
            path,
            f"not a {name} text file: NUL byte at line {line}; if it is a binary file, exclude it",
            line,
            column,
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as exc:
        if declared is not None:
            raise AnalysisError(
                path,
                f"unknown encoding `{declared}` in the coding declaration; "
                "name a Python text encoding such as utf-8",
            ) from None
        encoding = "utf-8"  # undecodable bytes on the first lines: reported below
        del exc
    try:
        return source.decode(encoding), encoding
    except LookupError:
        raise AnalysisError(
            path,
            f"the coding declaration names `{encoding}`, which is not a text encoding; "
            "declare a text encoding such as utf-8",
        ) from None
    except UnicodeDecodeError as exc:
        line, column = position_of(source, exc.start)
        raise AnalysisError(
            path,
            f"not a {name} text file: byte 0x{source[exc.start]:02x} at line {line} is not "
            f"valid {encoding}; save it as {encoding} or declare its encoding in a coding "
            "comment",
            line,
            column,
        ) from None


def analyze_source(
    source: str | bytes,
    path: str,
    *,
    search_path: Sequence[str] = (),
    complexity: bool = True,
    prefilter: bool = True,
) -> ModuleAnalysis:
    """Analyse one module. Raises ``AnalysisError`` (only) for input it cannot read."""
    text, _ = decode_source(source, path)
    if prefilter and not may_contain_callsites(text):
        return ModuleAnalysis(path=path)
    from .callsites import analyze_text  # libcst loads only when a file needs it

    result = analyze_text(text, path)
    if complexity and result.callsites:
        from .bytecode import complexity_for

        for site in result.callsites:
            site.complexity = complexity_for(site.function, text, search_path=search_path)
    return result
