"""The in-process library API: recommend(func, data) on real functions and iterables."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amorsize_lsp.analysis.model import PROCESS_EXECUTOR, PROCESS_POOL, THREAD_POOL
from amorsize_lsp.engine import SampleError, profile_workload, recommend
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import Recommendation

SYS4 = SystemProfile.synthetic(4)
ROOT = Path(__file__).resolve().parents[2]


def spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i
    return s


def test_heavy_function_gets_a_pool() -> None:
    rec = recommend(spin, [300_000] * 64, system=SYS4, budget_s=0.3)
    assert isinstance(rec, Recommendation)
    assert rec.use_pool and rec.n_jobs == 4
    assert rec.expected_speedup > 2
    assert rec.source == "measured"
    assert rec.data is None  # a list is never consumed


def test_trivial_function_stays_serial() -> None:
    rec = recommend(abs, list(range(20)), system=SYS4, budget_s=0.2)
    assert not rec.use_pool and rec.n_jobs == 1


def test_generator_is_consumed_only_as_far_as_the_sample() -> None:
    produced = []

    def gen():
        for i in range(100_000):
            produced.append(i)
            yield i

    rec = recommend(spin, gen(), system=SYS4, budget_s=0.2)
    sampled = len(produced)
    assert 3 <= sampled <= 256
    assert rec.source == "heuristic"
    assert any("iterator" in r for r in rec.reasons)
    # The rebuilt iterable yields every item exactly once, in order.
    assert rec.data is not None
    assert list(rec.data) == list(range(100_000))


def test_sets_are_sampled_without_being_rebuilt() -> None:
    data = set(range(500))
    prof, rebuilt, seconds = profile_workload(spin, data, budget_s=0.2)
    assert rebuilt is None
    assert prof.n_items == 500 and not prof.sampled_prefix
    assert seconds > 0


def test_sequence_is_sampled_across_its_length() -> None:
    # Cost grows with position: a first-k sampler would see only cheap items.
    data = list(range(0, 200_000, 500))
    prof, _, _ = profile_workload(spin, data, budget_s=0.3)
    assert prof.order_correlation > 0.5
    assert prof.max_s > 1.5 * prof.p50_s  # the last items cost about twice the median


def test_starmap_arguments() -> None:
    prof, _, _ = profile_workload(pow, [(2, 10), (3, 5)] * 10, budget_s=0.2, star=True)
    assert prof.sample_size >= 3


def test_exception_in_func_is_a_sample_error() -> None:
    def bad(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(SampleError, match=r"bad raised KeyError: 0 on item 0") as info:
        recommend(bad, [0, 1, 2], system=SYS4)
    assert info.value.kind == "exception"


def test_closure_pickling_error_is_reported_for_process_kinds() -> None:
    k = 3

    def local(x: int) -> int:
        return x * k

    rec = recommend(local, list(range(50)), executor_kind=PROCESS_EXECUTOR, system=SYS4)
    assert any("cannot be pickled" in r and "local" in r for r in rec.reasons)
    threads = recommend(local, list(range(50)), executor_kind=THREAD_POOL, system=SYS4)
    assert not any("cannot be pickled" in r for r in threads.reasons)


def test_bad_executor_kind() -> None:
    with pytest.raises(ValueError, match="unknown executor kind"):
        recommend(spin, [1], executor_kind="processes")


def test_recommendation_is_json_safe() -> None:
    rec = recommend(spin, [1000] * 100, executor_kind=PROCESS_POOL, system=SYS4)
    assert Recommendation.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_benchmark_quick_smoke(tmp_path: Path) -> None:
    """The quality benchmark's quick mode runs end to end: one table per start method."""
    import multiprocessing

    methods = [m for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()]
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "recommendation_quality.py"),
            "--quick",
            "--only",
            "tiny job",
            "--no-joblib",
            "--start-methods",
            ",".join(methods),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**__import__("os").environ, "AMORSIZE_CACHE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    for m in methods:
        assert f"== start method {m} ==" in proc.stdout
    assert "rec/best geomean" in proc.stdout
    data = json.loads(out.read_text())
    assert [s["method"] for s in data["summaries"]] == methods
    assert len(data["rows"]) == len(methods)
    for row in data["rows"]:
        assert row["name"].startswith("tiny job")
        for label in ("Pool", "PPE"):
            result = row["by_exec"][label]
            assert result["rec"] == "serial"  # 0.1 ms of work: no pool pays its start-up
            assert result["rec_over_serial"] == 1.0  # judged by the serial timing itself
            assert result["default_over_best"] > 1


def test_start_method_is_honoured_and_a_bad_one_fails_before_sampling() -> None:
    rec = recommend(spin, [1000] * 100, system=SYS4, start_method="spawn", budget_s=0.2)
    assert rec.start_method == "spawn"
    assert any(r.startswith("start method: spawn (chosen by the call)") for r in rec.reasons)
    default = recommend(spin, [1000] * 100, system=SYS4, budget_s=0.2)
    assert default.start_method == SYS4.start_method
    consumed: list[int] = []

    def gen() -> Iterator[int]:
        for i in range(10):
            consumed.append(i)
            yield i

    with pytest.raises(ValueError, match="unknown start method 'fork-exec'"):
        recommend(spin, gen(), system=SYS4, start_method="fork-exec")
    assert consumed == []  # nothing was taken from the caller's iterator
