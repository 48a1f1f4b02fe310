"""The analysis entry point: bytes or text in, call sites with complexity out.

It owns the checks on raw input (size, null bytes, encoding), the textual
prefilter that skips files which cannot contain a pool call or constructor, and
attaching each call site's bytecode complexity.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Sequence

from .callsites import analyze_text
from .model import AnalysisError, ModuleAnalysis
from .statements import POOL_ONLY_CALL

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


def decode_bytes(data: bytes, path: str) -> tuple[str, str]:
    """Decode like Python does (BOM, PEP 263 cookie, else UTF-8): text and encoding."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise AnalysisError(path, f"invalid encoding declaration: {exc}") from None
    try:
        return data.decode(encoding), encoding
    except (UnicodeDecodeError, LookupError) as exc:
        offset = getattr(exc, "start", 0)
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1)
        detail = (
            f"byte 0x{data[offset]:02x} at line {line} is not valid {encoding}"
            if isinstance(exc, UnicodeDecodeError)
            else f"unknown encoding {encoding}"
        )
        message = (
            f"cannot decode file: {detail}; save it as UTF-8 or declare its encoding "
            "in a coding comment"
        )
        raise AnalysisError(path, message, line, column) from None


def decode_source(data: bytes, path: str) -> str:
    """Size and null-byte checks, then :func:`decode_bytes`."""
    if len(data) > MAX_SOURCE_BYTES:
        raise AnalysisError(
            path,
            f"file is {len(data) / 1e6:.1f} MB, over the {MAX_SOURCE_BYTES // 2**20} MiB limit;"
            " exclude it from analysis",
        )
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise AnalysisError(path, "file contains a null byte; is it a binary file?", line)
    return decode_bytes(data, path)[0]


def analyze_source(
    source: str | bytes,
    path: str,
    *,
    search_path: Sequence[str] = (),
    complexity: bool = True,
    prefilter: bool = True,
) -> ModuleAnalysis:
    """Analyse one module. Raises ``AnalysisError`` (only) for input it cannot read."""
    text = decode_source(source, path) if isinstance(source, bytes) else source
    if isinstance(source, str):
        if len(text) > MAX_SOURCE_BYTES:
            raise AnalysisError(path, f"file has {len(text)} characters, over the size limit")
        if "\0" in text:
            raise AnalysisError(path, "source contains a null character")
    if prefilter and not may_contain_callsites(text):
        return ModuleAnalysis(path=path)
    result = analyze_text(text, path)
    if complexity and result.callsites:
        from .bytecode import complexity_for

        for site in result.callsites:
            site.complexity = complexity_for(site.function, text, search_path=search_path)
    return result
