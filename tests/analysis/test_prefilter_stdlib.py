"""The prefilters (file text, then statement selection) never cause a miss.

Reference: every statement of every standard-library file parsed with libcst,
no prefilter at all. Slow by design (the whole stdlib); run on two processes.
"""

from __future__ import annotations

import os
import sysconfig
from concurrent.futures import ProcessPoolExecutor

import pytest

from amorsize_lsp.analysis.callsites import analyze_text
from amorsize_lsp.analysis.driver import decode_source, may_contain_callsites
from amorsize_lsp.analysis.model import AnalysisError


def _stdlib_files() -> list[str]:
    root = sysconfig.get_paths()["stdlib"]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return out


def _fingerprint(result) -> tuple:
    sites = tuple(
        sorted((s.span.line, s.span.column, s.method, s.executor) for s in result.callsites)
    )
    ctors = tuple(sorted((c.span.line, c.span.column, c.executor) for c in result.constructors))
    return sites, ctors


def _compare(path: str) -> tuple[str, str] | None:
    """None when the fast path agrees with the full parse, else what differs."""
    try:
        with open(path, "rb") as fh:
            text, _ = decode_source(fh.read(), path)
        reference = _fingerprint(analyze_text(text, path, select_statements=False))
    except AnalysisError:
        return None  # unreadable or unparsable: nothing to miss
    if not may_contain_callsites(text):
        fast = ((), ())
    else:
        fast = _fingerprint(analyze_text(text, path))
    if fast != reference:
        return path, f"fast={fast} full={reference}"
    return None


@pytest.mark.slow
def test_prefilters_agree_with_full_parse_on_the_standard_library() -> None:
    files = _stdlib_files()
    assert len(files) > 500
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        mismatches = [m for m in pool.map(_compare, files, chunksize=16) if m is not None]
    assert mismatches == []
