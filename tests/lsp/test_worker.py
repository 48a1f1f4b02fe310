"""The analysis worker contains native crashes and hangs: a real child process."""

from __future__ import annotations

import pytest
from lsp_helpers import POOL_SOURCE

from amorsize_lsp.check import CheckSettings
from amorsize_lsp.lsp.spawn import spawn
from amorsize_lsp.lsp.worker import AnalysisWorker, WorkerFailed


async def test_a_native_crash_is_reported_and_the_worker_restarts():
    worker = AnalysisWorker(timeout_s=30)
    try:
        first = await worker.call({"op": "ping"})
        with pytest.raises(WorkerFailed, match=r"crashed \((signal 11|exit \d+)\)"):
            await worker.call({"op": "crash", "path": "/p/bad.py"})
        second = await worker.call({"op": "ping"})
        assert second != first and worker.restarts == 1
        snap = await worker.call(
            {"op": "check", "path": "/p/a.py", "text": POOL_SOURCE, "settings": CheckSettings()}
        )
        assert [i.code for i in snap.issues] == ["AMZ001"]
    finally:
        await worker.close()


async def test_a_hang_is_stopped_by_the_time_limit():
    worker = AnalysisWorker(timeout_s=30)
    try:
        first = await worker.call({"op": "ping"})
        with pytest.raises(WorkerFailed, match=r"did not finish within 1 s"):
            await worker.call({"op": "hang", "path": "/p/slow.py"}, timeout_s=1)
        assert await worker.call({"op": "ping"}) != first
    finally:
        await worker.close()


async def test_an_exception_in_analysis_names_the_file_and_keeps_the_worker():
    worker = AnalysisWorker(timeout_s=30)
    try:
        pid = await worker.call({"op": "ping"})
        with pytest.raises(WorkerFailed, match=r"/p/x\.py: KeyError"):
            await worker.call({"op": "check", "path": "/p/x.py"})
        assert await worker.call({"op": "ping"}) == pid
    finally:
        await worker.close()


async def test_newer_syntax_is_analysed_not_reported_as_an_error():
    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("`type` statements are valid syntax here")
    worker = AnalysisWorker(timeout_s=60)
    try:
        text = POOL_SOURCE + "\ntype Alias = int\n"
        snap = await worker.call(
            {"op": "check", "path": "/p/a.py", "text": text, "settings": CheckSettings()}
        )
        assert snap.errors == [] and [i.code for i in snap.issues] == ["AMZ001"]
        assert snap.blocks == []  # no reuse for a file this Python cannot parse
        broken = await worker.call(
            {
                "op": "check",
                "path": "/p/a.py",
                "text": "def f(:\n" + POOL_SOURCE,
                "settings": CheckSettings(),
            }
        )
        assert broken.how == "syntax" and [e.code for e in broken.errors] == ["E999"]
    finally:
        await worker.close()


async def test_a_worker_started_before_the_server_is_adopted_and_replaced_when_it_dies():
    started = spawn()
    worker = AnalysisWorker(timeout_s=30, started=started)
    try:
        assert await worker.call({"op": "ping"}) == started.pid
        with pytest.raises(WorkerFailed, match=r"crashed"):
            await worker.call({"op": "crash", "path": "/p/bad.py"})
        assert started.poll() is not None  # the adopted child is gone and reaped
        replacement = await worker.call({"op": "ping"})
        assert replacement != started.pid and worker.restarts == 1
    finally:
        await worker.close()


async def test_closing_before_adopting_stops_the_early_worker():
    started = spawn()
    worker = AnalysisWorker(timeout_s=30, started=started)
    await worker.close()
    assert started.poll() is not None
