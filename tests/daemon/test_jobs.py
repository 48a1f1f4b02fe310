"""Sampling jobs: finding the call site, judging noise, and surviving hostile functions."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from daemon_helpers import RunningDaemon, line_of, write_module

from amorsize_lsp.daemon.jobs import JOB_ENV, JobFailure, assess_noise, find_callsite

HOSTILE = """\
import ctypes
import time
from multiprocessing import Pool


def hang(x):
    time.sleep(3600)


def segfault(x):
    return ctypes.string_at(0)


def hog(x):
    chunks = []
    while True:
        chunks.append(bytearray(50 * 2**20))


def fine(x):
    return sum(range(x * 100))


DATA = list(range(50))

if __name__ == "__main__":
    with Pool(2) as pool:
        pool.map(hang, DATA)
        pool.map(segfault, DATA)
        pool.map(hog, DATA)
        pool.map(fine, DATA)
"""


# ----------------------------------------------------------------- call sites


def test_find_callsite_matches_the_line_and_says_where_the_calls_are(short_tmp: Path) -> None:
    mod = write_module(short_tmp, HOSTILE)
    line = line_of(mod, "pool.map(fine")
    site = find_callsite(str(mod), line)
    assert site["function"] == "fine" and site["line"] == line
    assert site["complexity"]["code_hash"]
    with pytest.raises(JobFailure) as e:
        find_callsite(str(mod), 1)
    calls = [str(line_of(mod, f"pool.map({f}")) for f in ("hang", "segfault", "hog", "fine")]
    assert e.value.kind == "no_callsite"
    assert e.value.message == (
        f"{mod}:1: no pool-map call on this line; the call sites in this file are on "
        f"line(s) {', '.join(calls)}"
    )


def test_find_callsite_failures_are_precise(short_tmp: Path) -> None:
    missing = short_tmp / "missing.py"
    with pytest.raises(JobFailure) as e:
        find_callsite(str(missing), 3)
    assert e.value.kind == "unreadable" and str(missing) in e.value.message
    broken = write_module(short_tmp, "from multiprocessing import Pool\ndef f(:\n", "broken.py")
    with pytest.raises(JobFailure) as e:
        find_callsite(str(broken), 2)
    assert e.value.kind == "analysis" and str(broken) in e.value.message
    empty = write_module(short_tmp, "x = 1\n", "empty.py")
    with pytest.raises(JobFailure) as e:
        find_callsite(str(empty), 1)
    assert e.value.message == f"{empty}:1: this file has no pool-map call sites"


# ---------------------------------------------------------------------- noise


def test_noise_from_load_average_and_from_a_preempted_sampler() -> None:
    assert assess_noise(0.2, 2, cpu_s=0.95, wall_s=1.0, cpu_fraction=1.0) == []
    busy = assess_noise(1.6, 2, cpu_s=0.95, wall_s=1.0, cpu_fraction=1.0)
    assert len(busy) == 1 and "load average was 1.60, above 1.5" in busy[0]
    preempted = assess_noise(0.2, 2, cpu_s=0.4, wall_s=1.0, cpu_fraction=1.0)
    assert len(preempted) == 1 and "0.40 s of CPU in 1.00 s" in preempted[0]
    # A function that waits is expected to use little CPU: not noise.
    assert assess_noise(0.2, 2, cpu_s=0.1, wall_s=1.0, cpu_fraction=0.2) == []
    # More cores, same load: quiet.
    assert assess_noise(1.6, 8, cpu_s=None, wall_s=1.0, cpu_fraction=1.0) == []
    assert len(assess_noise(9.0, 8, cpu_s=0.1, wall_s=1.0, cpu_fraction=1.0)) == 2


# ---------------------------------------------------------- hostile functions


def _sample(d: RunningDaemon, mod: Path, func: str, budget: float = 0.2) -> dict[str, Any]:
    with d.client() as c:
        job = c.call(
            "sample",
            {"path": str(mod), "line": line_of(mod, f"pool.map({func}"), "budget_s": budget},
        )
        return c.wait_job(job["id"], timeout_s=120, poll_s=0.1)


@pytest.fixture
def hostile_daemon(daemon_factory: Any) -> RunningDaemon:
    return daemon_factory("--sample-memory-mb", "400")


def test_a_hanging_function_fails_its_job_and_the_daemon_carries_on(
    hostile_daemon: RunningDaemon, short_tmp: Path
) -> None:
    mod = write_module(short_tmp, HOSTILE)
    final = _sample(hostile_daemon, mod, "hang")
    assert final["state"] == "failed"
    assert final["error"]["kind"] == "timeout"
    assert "hang" in final["error"]["message"] and "limit" in final["error"]["message"]
    assert _sample(hostile_daemon, mod, "fine")["state"] == "done"


def test_a_segfault_fails_its_job_and_the_daemon_carries_on(
    hostile_daemon: RunningDaemon, short_tmp: Path
) -> None:
    mod = write_module(short_tmp, HOSTILE)
    final = _sample(hostile_daemon, mod, "segfault")
    assert final["state"] == "failed"
    assert final["error"]["kind"] == "crash"
    assert "SIGSEGV" in final["error"]["message"]
    assert final["error"]["returncode"] < 0
    assert hostile_daemon.call("status")["jobs"]["failed"] == 1


def test_unbounded_allocation_fails_its_job_and_the_daemon_carries_on(
    hostile_daemon: RunningDaemon, short_tmp: Path
) -> None:
    mod = write_module(short_tmp, HOSTILE)
    final = _sample(hostile_daemon, mod, "hog")
    assert final["state"] == "failed"
    assert final["error"]["kind"] == "memory"
    assert "memory" in final["error"]["message"]
    st = hostile_daemon.call("status")
    assert st["jobs"]["failed"] == 1
    assert st["rss_bytes"] < 400 * 2**20  # the allocation happened elsewhere


def test_cancel_kills_a_running_sampler(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp, HOSTILE)
    with daemon.client() as c:
        job = c.call(
            "sample", {"path": str(mod), "line": line_of(mod, "pool.map(hang"), "budget_s": 5}
        )
        samplers: list[psutil.Process] = []
        deadline = time.monotonic() + 60
        while not samplers and time.monotonic() < deadline:
            for p in psutil.Process(daemon.proc.pid).children(recursive=True):
                try:
                    if p.environ().get(JOB_ENV) == job["id"]:
                        samplers.append(p)
                except psutil.Error:
                    pass
            time.sleep(0.05)
        assert samplers, "the sampler never started"
        c.call("cancel", {"id": job["id"]})
        final = c.wait_job(job["id"], timeout_s=30, poll_s=0.05)
    assert final["state"] == "cancelled"
    _gone, alive = psutil.wait_procs(samplers, timeout=10)
    assert alive == []
    assert daemon.call("status")["jobs"]["cancelled"] == 1


def test_jobs_run_one_at_a_time_in_order(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp, HOSTILE)
    line = line_of(mod, "pool.map(fine")
    with daemon.client() as c:
        jobs = [
            c.call("sample", {"path": str(mod), "line": line, "budget_s": 0.1}) for _ in range(3)
        ]
        queued_positions = [j["position"] for j in jobs]
        finals = [c.wait_job(j["id"], timeout_s=120, poll_s=0.1) for j in jobs]
    assert [f["state"] for f in finals] == ["done"] * len(jobs)
    # Each started only after the one before had finished.
    for before, after in itertools.pairwise(finals):
        assert after["started_at"] >= before["finished_at"]
    assert queued_positions[-1] in (len(jobs) - 1, len(jobs))
    counts = daemon.call("status")["db"]["counts"]
    assert counts["profiles"] == len(jobs)


def test_cancel_a_queued_job(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp, HOSTILE)
    with daemon.client() as c:
        first = c.call(
            "sample", {"path": str(mod), "line": line_of(mod, "pool.map(hang"), "budget_s": 5}
        )
        second = c.call(
            "sample", {"path": str(mod), "line": line_of(mod, "pool.map(fine"), "budget_s": 0.1}
        )
        cancelled = c.call("cancel", [second["id"]])
        assert cancelled["state"] == "cancelled" and cancelled["started_at"] is None
        c.call("cancel", {"id": first["id"]})
        assert c.wait_job(first["id"], timeout_s=30, poll_s=0.05)["state"] == "cancelled"
