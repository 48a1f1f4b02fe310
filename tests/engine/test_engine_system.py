"""Usable cores from real cgroup files, memory headroom, start method, calibration cache."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from amorsize_lsp.engine import system
from amorsize_lsp.engine.system import (
    Calibration,
    SystemProfile,
    cgroup_cpu_limit,
    cgroup_memory_available,
    default_start_method,
    parse_cpu_max,
    usable_cores,
)


def affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_parse_cpu_max() -> None:
    assert parse_cpu_max("max 100000") is None
    assert parse_cpu_max("150000 100000") == 1.5
    assert parse_cpu_max("50000 100000") == 0.5
    assert parse_cpu_max("200000") == 2.0
    assert parse_cpu_max("garbage") is None
    assert parse_cpu_max("") is None


def test_cgroup_v2_quota_on_own_cgroup(tmp_path: Path) -> None:
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/user.slice/job\n")
    write(tmp_path / "root" / "user.slice" / "job" / "cpu.max", "50000 100000\n")
    assert cgroup_cpu_limit(tmp_path / "root", proc) == 0.5
    assert usable_cores(tmp_path / "root", proc) == 1


def test_cgroup_v2_limit_on_an_ancestor_applies(tmp_path: Path) -> None:
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/a/b\n")
    root = tmp_path / "root"
    write(root / "a" / "cpu.max", "100000 100000\n")
    write(root / "a" / "b" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(root, proc) == 1.0
    assert usable_cores(root, proc) == 1


def test_fractional_quota_rounds_up_and_affinity_still_caps(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "150000 100000\n")
    assert usable_cores(tmp_path, None) == min(2, affinity())
    write(tmp_path / "cpu.max", "6400000 100000\n")  # 64 CPUs of quota
    assert usable_cores(tmp_path, None) == affinity()


def test_unlimited_cgroup_means_affinity(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path, None) is None
    assert usable_cores(tmp_path, None) == affinity()
    assert usable_cores(tmp_path / "missing", None) == affinity()


def test_cgroup_v1_quota_over_period(tmp_path: Path) -> None:
    proc = tmp_path / "proc-cgroup"
    write(proc, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    d = tmp_path / "root" / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "100000\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path / "root", proc) == 1.0
    assert usable_cores(tmp_path / "root", proc) == 1
    write(d / "cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(tmp_path / "root", proc) is None


def test_never_less_than_one_core(tmp_path: Path) -> None:
    write(tmp_path / "cpu.max", "1000 100000\n")  # 0.01 CPU
    assert usable_cores(tmp_path, None) == 1


def test_cgroup_memory_headroom(tmp_path: Path) -> None:
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/svc\n")
    write(tmp_path / "svc" / "memory.max", str(2 * 2**30))
    write(tmp_path / "svc" / "memory.current", str(2**30))
    assert cgroup_memory_available(tmp_path, proc) == 2**30
    write(tmp_path / "svc" / "memory.max", "max")
    assert cgroup_memory_available(tmp_path, proc) is None
    write(proc, "9:memory:/grp\n")
    write(tmp_path / "memory" / "grp" / "memory.limit_in_bytes", str(3 * 2**30))
    write(tmp_path / "memory" / "grp" / "memory.usage_in_bytes", str(2**30))
    assert cgroup_memory_available(tmp_path, proc) == 2 * 2**30


def test_this_machine_has_at_least_one_usable_core() -> None:
    n = usable_cores()
    assert 1 <= n <= (os.cpu_count() or 1)


def test_default_start_method_reads_without_setting() -> None:
    before = multiprocessing.get_start_method(allow_none=True)
    method = default_start_method()
    assert method in multiprocessing.get_all_start_methods()
    assert multiprocessing.get_start_method(allow_none=True) == before


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SystemProfile]:
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("AMORSIZE_CACHE_DIR", str(cache))
    system._MEMO.clear()
    prof = SystemProfile.detect()
    yield cache, prof
    mp.undo()
    system._MEMO.clear()


def test_calibration_measures_and_caches(calibrated: tuple[Path, SystemProfile]) -> None:
    cache, prof = calibrated
    cal = prof.calibration
    assert cal.measured
    assert cal.duration_s > 0
    assert set(cal.startup_s) >= {"fork", "spawn", "forkserver"} or os.name == "nt"
    assert all(v > 0 for v in cal.startup_s.values())
    assert cal.pool_chunk_s > 0 and cal.executor_chunk_s > 0
    assert cal.dumps_bytes_per_s > 0 and cal.loads_bytes_per_s > 0
    files = list(cache.glob("calibration-*.json"))
    assert [f.name for f in files] == [f"calibration-{prof.fingerprint}.json"]
    stored = json.loads(files[0].read_text())
    assert stored["calibration"]["measured"] is True


def test_cached_calibration_is_reused_not_remeasured(
    calibrated: tuple[Path, SystemProfile], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, prof = calibrated
    path = cache / f"calibration-{prof.fingerprint}.json"
    data = json.loads(path.read_text())
    data["calibration"]["pool_chunk_s"] = 0.123  # a value only the file holds
    path.write_text(json.dumps(data))
    system._MEMO.clear()
    monkeypatch.setenv("AMORSIZE_CACHE_DIR", str(cache))

    def refuse(*a: object, **k: object) -> Calibration:
        raise AssertionError("calibration re-ran although a cache exists")

    monkeypatch.setattr(system, "run_calibration", refuse)
    again = SystemProfile.detect()
    assert again.fingerprint == prof.fingerprint
    assert again.calibration.pool_chunk_s == 0.123


def test_corrupt_cache_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMORSIZE_CACHE_DIR", str(tmp_path))
    system._MEMO.clear()
    fp = "deadbeef"
    (tmp_path / f"calibration-{fp}.json").write_text("{not json")
    measured = Calibration(measured=True, pool_chunk_s=7e-5)
    monkeypatch.setattr(system, "run_calibration", lambda *a, **k: measured)
    cal = system.cached_calibration(fp)
    assert cal.pool_chunk_s == 7e-5
    stored = json.loads((tmp_path / f"calibration-{fp}.json").read_text())
    assert stored["calibration"]["pool_chunk_s"] == 7e-5
    system._MEMO.clear()


def test_failed_calibration_falls_back_to_assumed_costs() -> None:
    cal = system.run_calibration(python="/nonexistent/python3")
    assert cal.measured is False
    assert cal.startup_s["fork"] == Calibration().startup_s["fork"]


def test_detect_without_calibration_is_cheap_and_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(system, "run_calibration", lambda *a, **k: pytest.fail("calibrated"))
    prof = SystemProfile.detect(calibrate=False)
    assert prof.usable_cores == usable_cores()
    assert prof.logical_cores >= prof.usable_cores
    assert prof.physical_cores >= 1
    assert 0 < prof.memory_available_bytes <= prof.memory_total_bytes
    assert prof.start_method == default_start_method()
    assert len(prof.fingerprint) == 16
    assert SystemProfile.from_dict(json.loads(json.dumps(prof.to_dict()))) == prof


def test_parallel_capacity_is_measured_on_request_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = SystemProfile.detect(calibrate=False)
    assert plain.parallel_capacity is None
    loaded = SystemProfile.detect(calibrate=False, measure_load=True)
    assert loaded.parallel_capacity is not None
    # Real processes doing real work: some capacity, never more than the cores.
    assert 0 < loaded.parallel_capacity <= loaded.usable_cores
    assert system.measure_parallel_capacity(1) == 1.0
    assert SystemProfile.from_dict(json.loads(json.dumps(loaded.to_dict()))) == loaded
