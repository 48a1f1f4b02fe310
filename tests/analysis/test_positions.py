"""``positions.node_spans`` agrees with libcst's own ``PositionProvider``.

``positions.py`` tracks positions during code generation to avoid computing a
range for every node. This checks every call site and constructor (and their
argument spans) in the standard library's pool files: the files that pass the
prefilter and hold a call site or constructor. Each file is parsed whole with
libcst and its ``PositionProvider`` ranges are the reference. Slow (it walks
the whole standard library), so marked ``slow``; CI runs it.
"""

from __future__ import annotations

import functools
import os
import sysconfig

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from amorsize_lsp.analysis.callsites import EXECUTOR_CLASSES, _argument, analyze_text
from amorsize_lsp.analysis.driver import decode_source, may_contain_callsites
from amorsize_lsp.analysis.model import AnalysisError, ModuleAnalysis, Span


@functools.cache
def _pool_files() -> list[tuple[str, str, ModuleAnalysis]]:
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                data = fh.read()
            try:
                text, _ = decode_source(data, path)
                if not may_contain_callsites(text):
                    continue
                result = analyze_text(text, path)
            except AnalysisError:
                continue
            if result.callsites or result.constructors:
                found.append((path, text, result))
    return found


pytestmark = pytest.mark.slow


def _span(pos) -> Span:
    return Span(pos.start.line, pos.start.column, pos.end.line, pos.end.column)


def test_the_standard_library_has_pool_files() -> None:
    assert _pool_files(), "no pool code in the standard library: the check checks nothing"


def test_spans_match_libcsts_position_provider() -> None:
    for path, text, result in _pool_files():
        _check_file(path, text, result)


def _check_file(path: str, text: str, result: ModuleAnalysis) -> None:
    positions = MetadataWrapper(cst.parse_module(text)).resolve(PositionProvider)
    calls = {_span(pos): node for node, pos in positions.items() if isinstance(node, cst.Call)}

    def arg_span(call: cst.Call, index: int | None, *names: str) -> Span | None:
        arg = _argument(call, index, *names)
        return _span(positions[arg.value]) if arg is not None else None

    for site in result.callsites:
        call = calls.get(site.span)
        assert call is not None, f"{path}: no call has the span {site.span} of {site.method}"
        assert isinstance(call.func, cst.Attribute) and call.func.attr.value == site.method
        executor = site.executor in EXECUTOR_CLASSES
        assert site.iterable_span == arg_span(call, 1, "iterable")
        assert site.chunksize_span == arg_span(call, None if executor else 2, "chunksize")
        assert site.function.span == arg_span(call, 0, "func", "fn")
    for ctor in result.constructors:
        call = calls.get(ctor.span)
        assert call is not None, f"{path}: no call has the constructor span {ctor.span}"
        executor = ctor.executor in EXECUTOR_CLASSES
        workers = arg_span(call, 0, "max_workers" if executor else "processes")
        assert ctor.workers_span == workers
