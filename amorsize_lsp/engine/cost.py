"""The cost model: predicted wall time for every (workers, chunksize), and the argmin.

Pure: no I/O, no clock, no globals. Everything it knows comes from a
``WorkloadProfile`` (what one item costs) and a ``SystemProfile`` (what this machine
charges for a pool). docs/cost-model.md gives the formulas and names which
constants are calibrated and which are assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amorsize_lsp.analysis.model import (
    PROCESS_EXECUTOR,
    PROCESS_POOL,
    THREAD_EXECUTOR,
    THREAD_POOL,
)
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import (
    HEURISTIC,
    MEASURED,
    PREDICTED,
    Recommendation,
    WorkloadProfile,
)

KINDS = (PROCESS_POOL, THREAD_POOL, PROCESS_EXECUTOR, THREAD_EXECUTOR)

#: Items assumed when the length is unknown (a generator): stated in the reasons.
ASSUMED_ITEMS = 1000
#: Share of the available memory that workers may fill before we cap their number.
MEMORY_SHARE = 0.8
#: How many chunk standard deviations the slowest worker runs past the mean (random order).
TAIL_Z = 1.0
#: The last round of chunks is partial: on average half a chunk of idle per worker.
HALF_CHUNK = 0.5
#: Share of a chunk's duration by which a worker may finish late for reasons the
#: sample cannot see (preemption on a shared machine, cache and frequency effects).
JITTER = 0.1
#: Relative difference in predicted time below which two worker counts tie.
TIE = 0.02
#: Thread pools may exceed the core count when the function mostly waits.
MAX_WAITING_THREADS = 32


@dataclass(frozen=True, slots=True)
class Prediction:
    """Predicted wall time of one configuration, split into its parts (seconds)."""

    workers: int
    chunksize: int
    total_s: float
    startup_s: float
    parent_s: float
    compute_s: float
    tail_s: float
    contention_s: float


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} µs"


def _fmt_bytes(b: float) -> str:
    if b >= 2**20:
        return f"{b / 2**20:.1f} MiB"
    if b >= 1024:
        return f"{b / 1024:.0f} KiB"
    return f"{b:.0f} B"


def chunk_candidates(n_items: int, max_workers: int) -> list[int]:
    """Powers of two up to N, plus ``ceil(N / w)`` and Pool's ``ceil(N / 4w)`` for each w.

    One set for every worker count, so that the choice of workers and of chunksize
    are made over a product grid (the monotonicity properties rely on it).
    """
    n = max(1, n_items)
    out = {1, n}
    c = 2
    while c < n:
        out.add(c)
        c *= 2
    for w in range(1, max(1, max_workers) + 1):
        out.add(max(1, math.ceil(n / w)))
        out.add(max(1, math.ceil(n / (4 * w))))
    return sorted(out)


def _is_thread(kind: str) -> bool:
    return kind in (THREAD_POOL, THREAD_EXECUTOR)


def predict(
    profile: WorkloadProfile,
    system: SystemProfile,
    executor_kind: str,
    workers: int,
    chunksize: int,
    n_items: int | None = None,
) -> Prediction:
    """Predicted wall time of ``map`` over the workload with this configuration."""
    n = n_items if n_items is not None else (profile.n_items or ASSUMED_ITEMS)
    n = max(n, 1)
    w = max(1, workers)
    c = max(1, min(chunksize, n))
    cal = system.calibration
    chunks = math.ceil(n / c)
    cores = max(1, system.usable_cores)
    mean = max(profile.mean_s, 0.0)

    if _is_thread(executor_kind):
        startup = cal.thread_startup_s * (1 + 0.1 * (w - 1))
        # Hand-off of a chunk takes the GIL: it is serial work in the parent.
        parent = chunks * cal.thread_chunk_s
        u = mean
        cpu_work = n * mean * min(max(profile.cpu_fraction, 0.0), 1.0)
        if system.gil_enabled:
            # CPU-bound Python holds the GIL: that part runs one thread at a time.
            parent += cpu_work
        cpu_demand = cpu_work + chunks * cal.thread_chunk_s
    else:
        method = system.start_method if system.start_method in cal.startup_s else "spawn"
        startup = cal.startup_s.get(method, 0.1) + (w - 1) * cal.startup_per_worker_s.get(
            method, 0.01
        )
        if executor_kind == PROCESS_EXECUTOR:
            chunk_cost, item_cost = cal.executor_chunk_s, cal.executor_item_s
        else:
            chunk_cost, item_cost = cal.pool_chunk_s, cal.pool_item_s
        per_item_parent = (
            profile.arg_dumps_s
            + profile.result_loads_s
            + (profile.arg_bytes + profile.result_bytes) * cal.ipc_s_per_byte
            + item_cost
        )
        parent = n * per_item_parent + chunks * chunk_cost
        u = mean + profile.arg_loads_s + profile.result_dumps_s
        cpu_demand = parent + n * u

    # Compute: the work spread evenly, but never shorter than one chunk.
    avg_chunk = n / chunks
    compute = max(n / w, c) * u
    # Load-imbalance tail: how far the slowest worker's last chunk runs past the others:
    # heterogeneous or sorted costs, and (with more chunks than workers) a partial last
    # round. Never more than the whole work.
    tail = 0.0
    busy = min(w, chunks)
    if busy > 1:
        sorted_share = min(max(profile.order_correlation, 0.0), 1.0)
        frac = min(1.0, avg_chunk / n)
        spread = (1 - sorted_share) * TAIL_Z * math.sqrt(avg_chunk) * profile.cv * mean
        heavy = sorted_share * avg_chunk * (_top_mean(profile, frac) - mean)
        grain = (HALF_CHUNK if chunks > w else 0.0) + JITTER
        tail = (1 - 1 / busy) * min(grain * avg_chunk * u + spread + heavy, n * u)
    contention = cpu_demand / min(cores, w + 1)
    body = max(parent, compute + tail, contention)
    return Prediction(w, c, startup + body, startup, parent, compute, tail, contention)


def _top_mean(profile: WorkloadProfile, frac: float) -> float:
    """Mean cost of the heaviest ``frac`` of items: tail mean below 5%, the mean at 100%."""
    top = profile.tail_mean_s
    if frac <= 0.05:
        return top
    # Linear between the top-5% mean and the overall mean.
    return top + (profile.mean_s - top) * (frac - 0.05) / 0.95


def serial_time(profile: WorkloadProfile, n_items: int | None = None) -> float:
    n = n_items if n_items is not None else (profile.n_items or ASSUMED_ITEMS)
    return max(n, 1) * max(profile.mean_s, 0.0)


def max_workers(profile: WorkloadProfile, system: SystemProfile, executor_kind: str) -> int:
    """Candidate worker counts go up to this: cores, or more threads if the work waits."""
    cores = max(1, system.usable_cores)
    if _is_thread(executor_kind) and profile.cpu_fraction < 0.5:
        return max(cores, MAX_WAITING_THREADS)
    if _is_thread(executor_kind) or profile.worker_memory_bytes <= 0:
        return cores
    cap = int(MEMORY_SHARE * system.memory_available_bytes // profile.worker_memory_bytes)
    return max(1, min(cores, cap))


def recommend(
    profile: WorkloadProfile, system: SystemProfile, executor_kind: str
) -> Recommendation:
    """The configuration with the least predicted wall time, or serial when serial wins."""
    if executor_kind not in KINDS:
        raise ValueError(
            f"unknown executor kind {executor_kind!r}; expected one of {', '.join(KINDS)}"
        )
    known = profile.n_items is not None
    n = profile.n_items if known else ASSUMED_ITEMS
    assert n is not None
    n = max(n, 1)
    reasons: list[str] = []
    t_serial = serial_time(profile, n)
    reasons.append(
        f"serial: {n} items × {_fmt_s(profile.mean_s)} = {_fmt_s(t_serial)}"
        + ("" if known else f" (item count unknown: assumed {ASSUMED_ITEMS})")
    )
    w_max = max_workers(profile, system, executor_kind)
    if (
        not _is_thread(executor_kind)
        and profile.worker_memory_bytes > 0
        and w_max < system.usable_cores
    ):
        reasons.append(
            f"memory caps workers at {w_max}: each needs "
            f"{_fmt_bytes(profile.worker_memory_bytes)} of "
            f"{_fmt_bytes(system.memory_available_bytes)} available"
        )

    best_by_w: list[Prediction] = []
    cands = chunk_candidates(n, w_max)
    for w in range(1, w_max + 1):
        best: Prediction | None = None
        for c in cands:
            p = predict(profile, system, executor_kind, w, c, n)
            # Ties (the parent's work often hides the workers' differences) go to the
            # better-balanced chunk, then to the larger one: fewer round trips.
            if best is None or (p.total_s, p.compute_s + p.tail_s) <= (
                best.total_s,
                best.compute_s + best.tail_s,
            ):
                best = p
        assert best is not None
        best_by_w.append(best)
    fastest = min(p.total_s for p in best_by_w)
    # Predictions within TIE of the fastest are ties (timings on a shared machine
    # differ by more): ties go to more workers, which pay off as items get heavier.
    winner = max(
        (p for p in best_by_w if p.total_s <= fastest * (1 + TIE)), key=lambda p: p.workers
    )

    def speedup(t: float) -> float:
        return t_serial / t if t > 0 else 1.0

    curve = [(p.workers, round(speedup(p.total_s), 4)) for p in best_by_w]
    use_pool = winner.total_s < t_serial
    kind_note = _kind_notes(profile, system, executor_kind)
    reasons.extend(kind_note)
    reasons.extend(_part_reasons(winner, system, executor_kind, n))
    if use_pool:
        reasons.append(
            f"best: {winner.workers} workers, chunksize {winner.chunksize} → "
            f"{_fmt_s(winner.total_s)} predicted, {speedup(winner.total_s):.2f}× serial"
        )
        n_jobs, chunksize, t_par = winner.workers, winner.chunksize, winner.total_s
    else:
        reasons.append(
            f"serial wins: the best pool ({winner.workers} workers, chunksize "
            f"{winner.chunksize}) is predicted at {_fmt_s(winner.total_s)} against "
            f"{_fmt_s(t_serial)} serial"
        )
        # One chunk: what infinitely costly IPC would pick; keeps chunksize monotone.
        n_jobs, chunksize, t_par = 1, n, t_serial

    if profile.source == "measured" and known:
        source = MEASURED
    elif known and profile.mean_s > 0:
        source = PREDICTED
    else:
        source = HEURISTIC
    confidence = _confidence(profile, source, winner.total_s, t_serial)
    return Recommendation(
        n_jobs=n_jobs,
        chunksize=chunksize,
        executor_kind=executor_kind,
        expected_speedup=round(speedup(t_par), 4),
        serial_time_s=t_serial,
        parallel_time_s=t_par,
        use_pool=use_pool,
        curve=curve,
        source=source,
        confidence=confidence,
        reasons=reasons,
        start_method=None if _is_thread(executor_kind) else system.start_method,
    )


def _kind_notes(profile: WorkloadProfile, system: SystemProfile, kind: str) -> list[str]:
    notes: list[str] = []
    if _is_thread(kind):
        if system.gil_enabled and profile.cpu_fraction > 0.5:
            notes.append(
                f"threads: {profile.cpu_fraction:.0%} of each call is CPU time, which "
                "the GIL runs one thread at a time"
            )
        elif not system.gil_enabled:
            notes.append("threads: free-threaded build (GIL disabled), compute runs in parallel")
    else:
        for what, err in (
            ("the function", profile.function_pickle_error),
            ("an argument", profile.args_pickle_error),
            ("a result", profile.result_pickle_error),
        ):
            if err:
                notes.append(f"{what} cannot be pickled, the pool will fail: {err}")
    if profile.sampled_prefix:
        notes.append(f"an iterator: only its first {profile.sample_size} items were sampled")
    return notes


def _part_reasons(p: Prediction, system: SystemProfile, kind: str, n: int) -> list[str]:
    out: list[str] = []
    if _is_thread(kind):
        out.append(f"thread start-up ({p.workers} threads): {_fmt_s(p.startup_s)}")
    else:
        out.append(
            f"pool start-up and shutdown ({system.start_method}, {p.workers} workers): "
            f"{_fmt_s(p.startup_s)}"
        )
    chunks = math.ceil(n / p.chunksize)
    out.append(
        f"parent-side work that does not parallelise (serialisation, {chunks} chunk "
        f"round trips): {_fmt_s(p.parent_s)}"
    )
    out.append(
        f"compute over {p.workers} workers: {_fmt_s(p.compute_s)}"
        + (f", load-imbalance tail {_fmt_s(p.tail_s)}" if p.tail_s > 0 else "")
    )
    if p.contention_s > max(p.parent_s, p.compute_s + p.tail_s):
        out.append(
            f"CPU-bound overall: parent and workers share {system.usable_cores} usable "
            f"cores ({_fmt_s(p.contention_s)})"
        )
    return out


def _confidence(profile: WorkloadProfile, source: str, t_best: float, t_serial: float) -> float:
    """How much to trust the decision: sample size, spread, and the margin it won by."""
    base = {MEASURED: 0.85, PREDICTED: 0.55, HEURISTIC: 0.3}[source]
    if profile.sample_size and profile.sample_size < 10:
        base *= 0.8
    if profile.cv > 1:
        base *= 0.85
    if profile.sampled_prefix:
        base *= 0.85
    margin = abs(t_serial - t_best) / max(t_serial, t_best, 1e-12)
    if margin < 0.1:
        base *= 0.7
    return round(min(0.95, max(0.05, base)), 3)
