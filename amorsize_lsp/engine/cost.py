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
from amorsize_lsp.engine.system import START_METHODS, SystemProfile
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
#: A pool is recommended only when its predicted speedup reaches this. Below it the
#: gain is within what timings on a shared machine can resolve (the quality
#: benchmark treats ratios under ~1.1 as ties) and within the error of a model fed
#: by a small sample, so a slowdown could hide in it; and a pool that gains less is
#: not worth its processes. docs/cost-model.md explains the choice.
MIN_SPEEDUP = 1.10


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
    """A duration in the unit that keeps it readable: "1.23 s", "12.3 ms", "0.3 µs", "80 ns"."""
    if s <= 0:
        return "0 s"
    s = float(f"{s:.3g}")  # round first, so that 0.9997 s reads "1 s", not "1000 ms"
    if s >= 1:
        return f"{_sig(s)} s"
    if s >= 1e-3:
        return f"{_sig(s * 1e3)} ms"
    if s >= 1e-7:
        return f"{_sig(s * 1e6)} µs"
    return f"{max(1, round(s * 1e9))} ns"


def _sig(v: float) -> str:
    """At most three significant digits, never in exponent notation."""
    text = f"{v:.3g}"
    return f"{v:.0f}" if "e" in text else text


def _plural(n: int, word: str, plural: str | None = None) -> str:
    """The count with its noun in the right number: "1 worker", "2 workers"."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


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


def resolve_start_method(start_method: str | None, system: SystemProfile) -> tuple[str, str]:
    """(start method, why it applies): the call's own choice, else this system's default.

    The call's choice comes from the analysis (``get_context("spawn")`` on the
    receiver's chain, ``mp_context=`` of an executor). Raises ``ValueError`` for a
    name that is not a start method.
    """
    if start_method is not None:
        if start_method not in START_METHODS:
            raise ValueError(
                f"unknown start method {start_method!r}; expected one of {', '.join(START_METHODS)}"
            )
        return start_method, "chosen by the call"
    return system.start_method, (
        f"the call chooses none: the default of Python {system.python_version} here"
    )


def _startup_s(system: SystemProfile, executor_kind: str, method: str, workers: int) -> float:
    """Start-up and shutdown of a pool of ``workers`` processes under ``method``."""
    cal = system.calibration
    first, per = cal.startup_s, cal.startup_per_worker_s
    if executor_kind == PROCESS_EXECUTOR and method in cal.executor_startup_s:
        first, per = cal.executor_startup_s, cal.executor_startup_per_worker_s
    if method not in first:
        method = "spawn" if "spawn" in first else next(iter(first), "spawn")
    base = first.get(method, 0.1)
    return base + (workers - 1) * per.get(method, 0.1 * base)


def predict(
    profile: WorkloadProfile,
    system: SystemProfile,
    executor_kind: str,
    workers: int,
    chunksize: int,
    n_items: int | None = None,
    *,
    start_method: str | None = None,
) -> Prediction:
    """Predicted wall time of ``map`` over the workload with this configuration.

    ``start_method`` (process kinds) defaults to the system's. ``ThreadPoolExecutor.map``
    ignores its chunksize (one future per item), so it is taken as 1 there.
    """
    n = n_items if n_items is not None else (profile.n_items or ASSUMED_ITEMS)
    n = max(n, 1)
    w = max(1, workers)
    c = 1 if executor_kind == THREAD_EXECUTOR else max(1, min(chunksize, n))
    cal = system.calibration
    chunks = math.ceil(n / c)
    free = free_cores(system)
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
        method = start_method if start_method is not None else system.start_method
        startup = _startup_s(system, executor_kind, method, w)
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
    contention = cpu_demand / min(free, w + 1)
    body = max(parent, compute + tail, contention)
    return Prediction(w, c, startup + body, startup, parent, compute, tail, contention)


def free_cores(system: SystemProfile) -> float:
    """Cores of CPU work a pool can get: the usable cores, or fewer under other load.

    Never below 1: with one core's worth, a pool runs no faster than the loop, and
    the loop is the reference every speedup is measured against.
    """
    cores = float(max(1, system.usable_cores))
    cap = system.parallel_capacity
    if cap is None:
        return cores
    return max(1.0, min(cores, cap))


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
    profile: WorkloadProfile,
    system: SystemProfile,
    executor_kind: str,
    *,
    start_method: str | None = None,
    min_speedup: float = MIN_SPEEDUP,
) -> Recommendation:
    """The configuration with the least predicted wall time, or serial.

    Serial when no pool is predicted at least ``min_speedup`` times faster than the
    plain loop. ``start_method`` is the call's own (``get_context(...)``,
    ``mp_context=``); None means the system's default. Both name what they assumed
    in the reasons.
    """
    if executor_kind not in KINDS:
        raise ValueError(
            f"unknown executor kind {executor_kind!r}; expected one of {', '.join(KINDS)}"
        )
    method: str | None = None
    method_why = ""
    if not _is_thread(executor_kind):
        method, method_why = resolve_start_method(start_method, system)
    known = profile.n_items is not None
    n = profile.n_items if known else ASSUMED_ITEMS
    assert n is not None
    n = max(n, 1)
    reasons: list[str] = []
    t_serial = serial_time(profile, n)
    reasons.append(
        f"serial: {_plural(n, 'item')} × {_fmt_s(profile.mean_s)} = {_fmt_s(t_serial)}"
        + ("" if known else f" (item count unknown: assumed {ASSUMED_ITEMS})")
    )
    if method is not None:
        reasons.append(f"start method: {method} ({method_why})")
    free = free_cores(system)
    if free < system.usable_cores:
        reasons.append(
            f"other processes keep the machine busy: a pool gets about {free:.1f} of "
            f"{_plural(system.usable_cores, 'usable core')} now"
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
    # ThreadPoolExecutor.map ignores chunksize: one candidate.
    cands = [1] if executor_kind == THREAD_EXECUTOR else chunk_candidates(n, w_max)
    for w in range(1, w_max + 1):
        best: Prediction | None = None
        for c in cands:
            p = predict(profile, system, executor_kind, w, c, n, start_method=method)
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
    predicted = speedup(winner.total_s)
    use_pool = winner.total_s < t_serial and predicted >= min_speedup
    kind_note = _kind_notes(profile, system, executor_kind)
    reasons.extend(kind_note)
    reasons.extend(_part_reasons(winner, system, executor_kind, n, method))
    best_pool = f"{_plural(winner.workers, 'worker')}" + (
        "" if executor_kind == THREAD_EXECUTOR else f", chunksize {winner.chunksize}"
    )
    if use_pool:
        reasons.append(
            f"best: {best_pool} → {_fmt_s(winner.total_s)} predicted, {predicted:.2f}× serial"
        )
        n_jobs, chunksize, t_par = winner.workers, winner.chunksize, winner.total_s
    else:
        if winner.total_s >= t_serial:
            reasons.append(
                f"serial wins: the best pool ({best_pool}) is predicted at "
                f"{_fmt_s(winner.total_s)} against {_fmt_s(t_serial)} serial"
            )
        else:
            reasons.append(
                f"serial: the best pool ({best_pool}) is predicted only {predicted:.2f}× "
                f"faster than serial ({_fmt_s(winner.total_s)} against "
                f"{_fmt_s(t_serial)}), under the {min_speedup:.2f}× margin that covers "
                "the model's error"
            )
        # One chunk: what infinitely costly IPC would pick; keeps chunksize monotone.
        n_jobs, chunksize, t_par = 1, n, t_serial

    if profile.source == MEASURED and known:
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
        start_method=method,
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


def _part_reasons(
    p: Prediction, system: SystemProfile, kind: str, n: int, method: str | None
) -> list[str]:
    out: list[str] = []
    if _is_thread(kind):
        out.append(f"thread start-up ({_plural(p.workers, 'thread')}): {_fmt_s(p.startup_s)}")
    else:
        out.append(
            f"pool start-up and shutdown ({method}, {_plural(p.workers, 'worker')}): "
            f"{_fmt_s(p.startup_s)}"
        )
    chunks = math.ceil(n / p.chunksize)
    trips = (
        _plural(chunks, "future")
        if kind == THREAD_EXECUTOR
        else _plural(chunks, "chunk round trip")
    )
    what = "hand-offs" if _is_thread(kind) else "serialisation"
    out.append(
        f"parent-side work that does not parallelise ({what}, {trips}): {_fmt_s(p.parent_s)}"
    )
    out.append(
        f"compute over {_plural(p.workers, 'worker')}: {_fmt_s(p.compute_s)}"
        + (f", load-imbalance tail {_fmt_s(p.tail_s)}" if p.tail_s > 0 else "")
    )
    if p.contention_s > max(p.parent_s, p.compute_s + p.tail_s):
        out.append(
            f"CPU-bound overall: parent and workers share "
            f"{_plural(system.usable_cores, 'usable core')} ({_fmt_s(p.contention_s)})"
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
