"""The pure cost model on synthetic profiles, including Hypothesis monotonicity properties."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amorsize_lsp.analysis.model import (
    PROCESS_EXECUTOR,
    PROCESS_POOL,
    THREAD_EXECUTOR,
    THREAD_POOL,
)
from amorsize_lsp.engine.cost import (
    ASSUMED_ITEMS,
    HALF_CHUNK,
    JITTER,
    MIN_SPEEDUP,
    _fmt_s,
    chunk_candidates,
    free_cores,
    predict,
    recommend,
    serial_time,
)
from amorsize_lsp.engine.system import Calibration, SystemProfile
from amorsize_lsp.engine.workload import (
    HEURISTIC,
    MEASURED,
    PREDICTED,
    Recommendation,
    WorkloadProfile,
)


def wp(n: int | None, mean: float, **kw: object) -> WorkloadProfile:
    kw.setdefault("p50_s", mean)
    kw.setdefault("p95_s", mean)
    kw.setdefault("max_s", mean)
    kw.setdefault("sample_size", 64)
    return WorkloadProfile(n_items=n, mean_s=mean, **kw)  # type: ignore[arg-type]


SYS2 = SystemProfile.synthetic(2)
SYS8 = SystemProfile.synthetic(8)


def test_tiny_job_runs_serial() -> None:
    rec = recommend(wp(10, 10e-6), SYS8, PROCESS_POOL)
    assert not rec.use_pool
    assert rec.n_jobs == 1
    assert rec.expected_speedup == 1.0
    assert rec.parallel_time_s == rec.serial_time_s == pytest.approx(100e-6)
    assert any("serial wins" in r for r in rec.reasons)


def test_heavy_items_use_every_usable_core() -> None:
    rec = recommend(wp(200, 20e-3), SYS8, PROCESS_POOL)
    assert rec.use_pool
    assert rec.n_jobs == 8
    assert rec.expected_speedup > 5
    assert rec.parallel_time_s < rec.serial_time_s / 5


def test_usable_cores_cap_workers_not_logical_cores() -> None:
    container = SystemProfile.synthetic(2, logical_cores=32, physical_cores=16)
    rec = recommend(wp(1000, 10e-3), container, PROCESS_POOL)
    assert rec.n_jobs == 2
    assert [w for w, _ in rec.curve] == [1, 2]


def test_cheap_items_get_large_chunks_especially_on_the_executor() -> None:
    prof = wp(1_000_000, 5e-6)
    pool = recommend(prof, SYS8, PROCESS_POOL)
    ex = recommend(prof, SYS8, PROCESS_EXECUTOR)
    assert pool.use_pool and ex.use_pool
    assert pool.chunksize >= 256
    assert ex.chunksize >= pool.chunksize


def test_big_results_make_serial_win() -> None:
    # 100 KB results of 20 µs items: the parent's unpickling and copying dominate.
    prof = wp(2000, 20e-6, result_bytes=100_000, result_loads_s=30e-6, result_dumps_s=30e-6)
    rec = recommend(prof, SYS2, PROCESS_POOL)
    assert not rec.use_pool
    assert any("does not parallelise" in r for r in rec.reasons)


def test_predicted_time_has_every_part() -> None:
    prof = wp(10_000, 100e-6, arg_bytes=1000, arg_dumps_s=2e-6, result_loads_s=1e-6)
    p = predict(prof, SYS2, PROCESS_POOL, workers=2, chunksize=100)
    cal = SYS2.calibration
    assert p.startup_s == pytest.approx(cal.startup_s["fork"] + cal.startup_per_worker_s["fork"])
    per_item_parent = 2e-6 + 1e-6 + 1000 * cal.ipc_s_per_byte + cal.pool_item_s
    assert p.parent_s == pytest.approx(10_000 * per_item_parent + 100 * cal.pool_chunk_s)
    assert p.compute_s == pytest.approx(50 * 100 * 100e-6)
    assert p.total_s >= p.startup_s + max(p.parent_s, p.compute_s)


def test_start_method_changes_startup() -> None:
    prof = wp(100, 1e-3)
    fork = predict(prof, SYS2, PROCESS_POOL, 2, 10)
    spawn = predict(prof, dataclasses.replace(SYS2, start_method="spawn"), PROCESS_POOL, 2, 10)
    assert spawn.startup_s > fork.startup_s
    # 0.1 s of work: spawn's start-up eats the gain; fork's does not.
    assert recommend(prof, SYS2, PROCESS_POOL).use_pool
    spawn_sys = dataclasses.replace(SYS2, start_method="spawn")
    assert recommend(prof, spawn_sys, PROCESS_POOL).expected_speedup < 1.3


def test_imbalance_tail_prefers_smaller_chunks_for_sorted_heavy_tail() -> None:
    kw = dict(cv=2.0, p50_s=50e-6, p95_s=2e-3, max_s=2e-3)
    shuffled = recommend(wp(2000, 150e-6, **kw), SYS2, PROCESS_POOL)
    ordered = recommend(wp(2000, 150e-6, order_correlation=0.9, **kw), SYS2, PROCESS_POOL)
    assert shuffled.use_pool and ordered.use_pool
    assert ordered.chunksize < shuffled.chunksize
    hetero = predict(wp(2000, 150e-6, **kw), SYS2, PROCESS_POOL, 2, 500)
    uniform = predict(wp(2000, 150e-6), SYS2, PROCESS_POOL, 2, 500)
    # Uniform items keep the partial last round and the jitter share.
    assert hetero.tail_s > uniform.tail_s > 0
    assert uniform.tail_s == pytest.approx(0.5 * (HALF_CHUNK + JITTER) * 500 * 150e-6)


def test_memory_caps_workers() -> None:
    sys_ = SystemProfile.synthetic(8, memory_available_bytes=4 * 2**30)
    rec = recommend(wp(1000, 10e-3, worker_memory_bytes=1 * 2**30), sys_, PROCESS_POOL)
    assert rec.n_jobs == 3  # 0.8 × 4 GiB / 1 GiB
    assert any("memory caps workers at 3" in r for r in rec.reasons)


def test_threads_do_not_parallelise_cpu_bound_python_under_the_gil() -> None:
    rec = recommend(wp(1000, 1e-3, cpu_fraction=1.0), SYS8, THREAD_POOL)
    assert not rec.use_pool
    assert any("GIL" in r for r in rec.reasons)


def test_threads_overlap_waiting_work() -> None:
    rec = recommend(wp(1000, 10e-3, cpu_fraction=0.02), SYS2, THREAD_EXECUTOR)
    assert rec.use_pool
    assert rec.n_jobs > SYS2.usable_cores  # waiting threads may exceed the cores
    assert rec.expected_speedup > 5


def test_free_threaded_build_parallelises_threads() -> None:
    nogil = dataclasses.replace(SYS8, gil_enabled=False)
    rec = recommend(wp(1000, 1e-3, cpu_fraction=1.0), nogil, THREAD_POOL)
    assert rec.use_pool and rec.n_jobs > 1 and rec.expected_speedup > 3
    assert rec.start_method is None


def test_unknown_length_is_a_heuristic_with_low_confidence() -> None:
    rec = recommend(wp(None, 1e-3), SYS2, PROCESS_POOL)
    assert rec.source == HEURISTIC
    assert any(f"assumed {ASSUMED_ITEMS}" in r for r in rec.reasons)
    known = recommend(wp(ASSUMED_ITEMS, 1e-3), SYS2, PROCESS_POOL)
    assert known.source == MEASURED
    assert rec.confidence < known.confidence
    est = recommend(wp(1000, 1e-3, source=PREDICTED), SYS2, PROCESS_POOL)
    assert est.source == PREDICTED


def test_unpicklable_function_is_named_in_reasons() -> None:
    prof = wp(100, 1e-3, function_pickle_error="function <lambda>: PicklingError: nope")
    rec = recommend(prof, SYS2, PROCESS_POOL)
    assert any("cannot be pickled" in r and "<lambda>" in r for r in rec.reasons)


def test_curve_matches_expected_speedup() -> None:
    rec = recommend(wp(500, 2e-3), SYS8, PROCESS_EXECUTOR)
    assert [w for w, _ in rec.curve] == list(range(1, 9))
    assert max(s for _, s in rec.curve) == pytest.approx(rec.expected_speedup, rel=1e-3)
    assert rec.curve[0][1] < 1  # one worker is always slower than serial


def test_unknown_executor_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown executor kind 'pool'"):
        recommend(wp(10, 1.0), SYS2, "pool")


def test_chunk_candidates_include_pool_heuristic() -> None:
    cands = chunk_candidates(1000, 4)
    assert {63, 84, 125, 250} <= set(cands)  # ceil(1000 / 4w): Pool's own choice
    assert {334, 500, 1000} <= set(cands)  # one chunk per worker
    assert cands[0] == 1 and cands[-1] == 1000
    assert chunk_candidates(1, 4) == [1]


def test_records_round_trip_through_json() -> None:
    prof = wp(100, 1e-3, notes=["x"], function_pickle_error="e", order_correlation=0.5)
    assert WorkloadProfile.from_dict(json.loads(json.dumps(prof.to_dict()))) == prof
    rec = recommend(prof, SYS2, PROCESS_POOL)
    back = Recommendation.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec
    sys_back = SystemProfile.from_dict(json.loads(json.dumps(SYS2.to_dict())))
    assert sys_back == SYS2
    # Unknown keys from a newer writer are ignored, not fatal.
    assert WorkloadProfile.from_dict({**prof.to_dict(), "future": 1}) == prof


def test_model_is_deterministic() -> None:
    prof = wp(12345, 37e-6, cv=0.7, arg_bytes=300, result_bytes=80)
    a = recommend(prof, SYS8, PROCESS_POOL).to_dict()
    b = recommend(prof, SYS8, PROCESS_POOL).to_dict()
    assert a == b


# --------------------------------------------------------------------- properties

KINDS = st.sampled_from([PROCESS_POOL, PROCESS_EXECUTOR, THREAD_POOL, THREAD_EXECUTOR])


@st.composite
def profiles(draw: st.DrawFn) -> WorkloadProfile:
    mean = draw(st.floats(1e-7, 0.05))
    cv = draw(st.floats(0, 3))
    p95 = mean * draw(st.floats(1, 5))
    return WorkloadProfile(
        n_items=draw(st.one_of(st.none(), st.integers(1, 300_000))),
        mean_s=mean,
        cv=cv,
        p50_s=mean * draw(st.floats(0.2, 1)),
        p95_s=p95,
        max_s=p95 * draw(st.floats(1, 3)),
        arg_bytes=draw(st.floats(0, 200_000)),
        result_bytes=draw(st.floats(0, 200_000)),
        arg_dumps_s=draw(st.floats(0, 1e-4)),
        arg_loads_s=draw(st.floats(0, 1e-4)),
        result_dumps_s=draw(st.floats(0, 1e-4)),
        result_loads_s=draw(st.floats(0, 1e-4)),
        worker_memory_bytes=draw(st.sampled_from([0, 2**28, 2**30])),
        cpu_fraction=draw(st.floats(0, 1)),
        order_correlation=draw(st.floats(-1, 1)),
        sample_size=64,
    )


@st.composite
def systems(draw: st.DrawFn) -> SystemProfile:
    cal = Calibration(
        startup_s={"fork": draw(st.floats(1e-3, 0.05)), "spawn": 0.1, "forkserver": 0.09},
        pool_chunk_s=draw(st.floats(5e-6, 5e-4)),
        executor_chunk_s=draw(st.floats(5e-6, 1e-3)),
        pool_item_s=draw(st.floats(0, 5e-6)),
        ipc_s_per_byte=draw(st.floats(0, 1e-8)),
    )
    return SystemProfile.synthetic(
        draw(st.integers(1, 16)),
        memory_available_bytes=draw(st.sampled_from([2**30, 16 * 2**30])),
        gil_enabled=draw(st.booleans()),
        calibration=cal,
        parallel_capacity=draw(st.one_of(st.none(), st.floats(0.5, 16))),
    )


def _heavier(p: WorkloadProfile, k: float) -> WorkloadProfile:
    return dataclasses.replace(
        p, mean_s=p.mean_s * k, p50_s=p.p50_s * k, p95_s=p.p95_s * k, max_s=p.max_s * k
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles(), systems(), KINDS, st.floats(1.0, 100.0))
def test_heavier_item_never_means_fewer_workers(
    prof: WorkloadProfile, sys_: SystemProfile, kind: str, k: float
) -> None:
    light = recommend(prof, sys_, kind)
    heavy = recommend(_heavier(prof, k), sys_, kind)
    assert heavy.n_jobs >= light.n_jobs


def _costlier_ipc(s: SystemProfile, k: float) -> SystemProfile:
    c = s.calibration
    cal = dataclasses.replace(
        c,
        pool_chunk_s=c.pool_chunk_s * k,
        executor_chunk_s=c.executor_chunk_s * k,
        thread_chunk_s=c.thread_chunk_s * k,
    )
    return dataclasses.replace(s, calibration=cal)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles(), systems(), KINDS, st.floats(1.0, 100.0))
def test_larger_ipc_cost_never_means_smaller_chunksize(
    prof: WorkloadProfile, sys_: SystemProfile, kind: str, k: float
) -> None:
    cheap = recommend(prof, sys_, kind)
    dear = recommend(prof, _costlier_ipc(sys_, k), kind)
    assert dear.chunksize >= cheap.chunksize


@settings(max_examples=200, deadline=None)
@given(profiles(), systems(), KINDS)
def test_recommendation_never_predicted_slower_than_serial(
    prof: WorkloadProfile, sys_: SystemProfile, kind: str
) -> None:
    rec = recommend(prof, sys_, kind)
    assert rec.parallel_time_s <= rec.serial_time_s
    assert rec.expected_speedup >= 1.0
    # A pool only with a predicted gain past the margin; serial otherwise.
    assert rec.expected_speedup >= MIN_SPEEDUP if rec.use_pool else rec.expected_speedup == 1.0
    assert 1 <= rec.n_jobs <= max(sys_.usable_cores, 32)
    assert rec.chunksize >= 1
    assert 0 < rec.confidence < 1
    json.dumps(rec.to_dict())


# ------------------------------------------------------- start method and margin

SPAWN2 = dataclasses.replace(SYS2, start_method="spawn")


def test_call_start_method_overrides_the_system_default() -> None:
    prof = wp(1000, 300e-6)
    cal = SYS2.calibration
    fork = recommend(prof, SYS2, PROCESS_POOL)
    spawn = recommend(prof, SYS2, PROCESS_POOL, start_method="spawn")
    assert fork.start_method == "fork" and spawn.start_method == "spawn"
    assert any(r.startswith("start method: spawn (chosen by the call)") for r in spawn.reasons)
    assert any("start method: fork (the call chooses none" in r for r in fork.reasons)
    # The call's method is the one priced, whatever the system's default is.
    chosen = recommend(prof, SPAWN2, PROCESS_POOL, start_method="fork")
    assert dataclasses.replace(chosen, reasons=[]) == dataclasses.replace(fork, reasons=[])
    p = predict(prof, SYS2, PROCESS_POOL, 2, 100, start_method="spawn")
    assert p.startup_s == pytest.approx(cal.startup_s["spawn"] + cal.startup_per_worker_s["spawn"])


def test_spawn_startup_turns_a_marginal_pool_into_serial() -> None:
    # 0.24 s of 300 µs items: fork gains clearly; spawn's and forkserver's ~0.1 s
    # start-up leave a predicted gain under the margin.
    prof = wp(800, 300e-6)
    assert recommend(prof, SYS2, PROCESS_POOL).use_pool
    for method in ("spawn", "forkserver"):
        rec = recommend(prof, SYS2, PROCESS_POOL, start_method=method)
        assert not rec.use_pool, (method, rec.reasons)
        assert rec.n_jobs == 1 and rec.expected_speedup == 1.0
        assert any(f"{MIN_SPEEDUP:.2f}× margin" in r for r in rec.reasons), rec.reasons
    # Ten times the work pays for spawn's start-up.
    assert recommend(wp(10_000, 300e-6), SYS2, PROCESS_POOL, start_method="spawn").use_pool


def test_unknown_start_method_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown start method 'threads'.*fork, spawn"):
        recommend(wp(10, 1.0), SYS2, PROCESS_POOL, start_method="threads")


def test_threads_ignore_the_start_method() -> None:
    rec = recommend(wp(1000, 10e-3, cpu_fraction=0.02), SYS2, THREAD_POOL, start_method="spawn")
    assert rec.start_method is None
    assert not any(r.startswith("start method") for r in rec.reasons)


def test_margin_is_a_parameter_and_serial_names_it() -> None:
    prof = wp(800, 300e-6)
    free = recommend(prof, SYS2, PROCESS_POOL, start_method="spawn", min_speedup=1.0)
    assert free.use_pool and 1.0 < free.expected_speedup < MIN_SPEEDUP
    strict = recommend(prof, SYS2, PROCESS_POOL, min_speedup=100.0)
    assert not strict.use_pool
    assert any("100.00× margin" in r for r in strict.reasons)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("kind", [PROCESS_POOL, PROCESS_EXECUTOR])
def test_every_pool_recommended_clears_the_margin(kind: str, method: str) -> None:
    # A sweep of item costs and counts: whenever a pool is advised, its predicted
    # gain clears the margin, and serial is advised exactly when it does not.
    for n in (10, 100, 1000, 10_000):
        for mean in (1e-6, 30e-6, 300e-6, 3e-3):
            rec = recommend(wp(n, mean), SYS2, kind, start_method=method)
            best = max(s for _, s in rec.curve)
            assert rec.use_pool == (best >= MIN_SPEEDUP), (n, mean, rec.curve)


def test_executor_startup_is_priced_apart_from_pool() -> None:
    cal = dataclasses.replace(
        SYS2.calibration,
        executor_startup_s={"fork": 0.5, "spawn": 0.5, "forkserver": 0.5},
        executor_startup_per_worker_s={"fork": 0.0, "spawn": 0.0, "forkserver": 0.0},
    )
    sys_ = dataclasses.replace(SYS2, calibration=cal)
    prof = wp(1000, 1e-3)
    assert predict(prof, sys_, PROCESS_EXECUTOR, 2, 100).startup_s == pytest.approx(0.5)
    assert predict(prof, sys_, PROCESS_POOL, 2, 100).startup_s < 0.5
    assert recommend(prof, sys_, PROCESS_POOL).use_pool
    assert not recommend(prof, sys_, PROCESS_EXECUTOR).use_pool


def test_executor_round_trips_cost_more_than_pool_round_trips() -> None:
    # 20 000 items of 50 µs: at chunksize 1 the executor's ~95 µs per chunk is
    # more than the work itself, so it needs larger chunks than Pool does.
    prof = wp(20_000, 50e-6)
    p_pool = predict(prof, SYS2, PROCESS_POOL, 2, 1)
    p_ex = predict(prof, SYS2, PROCESS_EXECUTOR, 2, 1)
    cal = SYS2.calibration
    extra = 20_000 * (cal.executor_chunk_s - cal.pool_chunk_s)
    extra += 20_000 * (cal.executor_item_s - cal.pool_item_s)
    assert p_ex.parent_s - p_pool.parent_s == pytest.approx(extra)
    pool = recommend(prof, SYS2, PROCESS_POOL)
    ex = recommend(prof, SYS2, PROCESS_EXECUTOR)
    assert pool.use_pool and ex.use_pool
    assert ex.chunksize * cal.executor_chunk_s >= ex.chunksize * cal.pool_chunk_s
    assert predict(prof, SYS2, PROCESS_EXECUTOR, ex.n_jobs, ex.chunksize).parent_s < (
        serial_time(prof) / MIN_SPEEDUP
    )


def test_thread_executor_ignores_chunksize() -> None:
    prof = wp(1000, 10e-3, cpu_fraction=0.02)
    a = predict(prof, SYS2, THREAD_EXECUTOR, 4, 1)
    b = predict(prof, SYS2, THREAD_EXECUTOR, 4, 250)
    assert a == b and a.chunksize == 1
    rec = recommend(prof, SYS2, THREAD_EXECUTOR)
    assert rec.use_pool and rec.chunksize == 1
    assert any("1000 futures" in r for r in rec.reasons)
    # ThreadPool.map does honour it.
    assert predict(prof, SYS2, THREAD_POOL, 4, 250).chunksize == 250


# ---------------------------------------------------------------- readable reasons


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 s"),
        (80e-9, "80 ns"),
        (0.3e-6, "0.3 µs"),
        (1.5e-6, "1.5 µs"),
        (12.34e-6, "12.3 µs"),
        (150e-6, "150 µs"),
        (2.5e-3, "2.5 ms"),
        (0.9997, "1 s"),
        (12.3, "12.3 s"),
    ],
)
def test_durations_read_in_a_fitting_unit(seconds: float, text: str) -> None:
    assert _fmt_s(seconds) == text


def test_reasons_never_show_zero_durations_or_wrong_plurals() -> None:
    import re

    cases = [
        (wp(1_000_000, 0.3e-6), PROCESS_POOL, None),
        (wp(1, 80e-9), PROCESS_POOL, None),
        (wp(10, 10e-6), PROCESS_EXECUTOR, "spawn"),
        (wp(200, 20e-3), PROCESS_POOL, "forkserver"),
        (wp(1000, 10e-3, cpu_fraction=0.02), THREAD_EXECUTOR, None),
        (wp(1000, 1e-3), THREAD_POOL, None),
    ]
    seen_one_trip = False
    for prof, kind, method in cases:
        for sys_ in (SYS2, SystemProfile.synthetic(1)):
            rec = recommend(prof, sys_, kind, start_method=method)
            text = "\n".join(rec.reasons)
            assert not re.search(r"\b0\.0+ (s|ms|µs|ns)\b", text), text
            assert not re.search(r"\b1 (items|workers|threads|chunk round trips|futures)\b", text)
            assert not re.search(r"\b([02-9]|\d\d+) (item|worker|thread|chunk round trip)\b", text)
            seen_one_trip |= "1 chunk round trip)" in text
    assert seen_one_trip  # the serial one-chunk case reads in the singular
    rec = recommend(wp(1_000_000, 0.3e-6), SYS2, PROCESS_POOL)
    assert "1000000 items × 0.3 µs = 300 ms" in rec.reasons[0]


# ------------------------------------------------------------------- other load


def test_other_load_lowers_the_cores_a_pool_gets() -> None:
    prof = wp(400, 1e-3)
    idle = recommend(prof, SYS2, PROCESS_POOL)
    assert idle.use_pool and idle.n_jobs == 2
    assert not any("busy" in r for r in idle.reasons)
    half = dataclasses.replace(SYS2, parallel_capacity=1.4)
    busy = recommend(prof, half, PROCESS_POOL)
    assert busy.expected_speedup < idle.expected_speedup
    assert any("a pool gets about 1.4 of 2 usable cores now" in r for r in busy.reasons)
    # One core's worth of CPU: no pool can beat the loop.
    one = dataclasses.replace(SYS2, parallel_capacity=0.9)
    assert free_cores(one) == 1.0
    assert not recommend(prof, one, PROCESS_POOL).use_pool
    assert free_cores(dataclasses.replace(SYS2, parallel_capacity=7.0)) == 2.0
    assert free_cores(SYS2) == 2.0
