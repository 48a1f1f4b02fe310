"""The engine's records: what a workload costs, and what we recommend for it.

Both are plain dataclasses with JSON-safe ``to_dict``/``from_dict`` because the
daemon stores them in SQLite and the sampler sends a profile over a pipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# Where a profile or a recommendation comes from. ``WorkloadProfile.source`` is
# MEASURED when the sampler timed the function (the only source the engine writes
# into a profile). ``Recommendation.source`` uses the whole vocabulary: the cost
# model writes MEASURED, PREDICTED (a profile with a known length that was not
# measured) or HEURISTIC (the length, or the cost, is unknown); the daemon writes
# RECORDED (a stored measurement of this call site), SHARED (a measurement of
# another call site with the same function) and PREDICTED (k-NN over stored ones).
MEASURED = "measured"
RECORDED = "recorded"
SHARED = "shared"
PREDICTED = "predicted"
HEURISTIC = "heuristic"
SOURCES = (MEASURED, RECORDED, SHARED, PREDICTED, HEURISTIC)


def _from_dict(cls: Any, d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        # Newer writers may add fields; older readers ignore them rather than fail.
        d = {k: v for k, v in d.items() if k in names}
    return cls(**d)


@dataclass(slots=True)
class WorkloadProfile:
    """Per-item costs of one mapped function on its items.

    Times are seconds per item, sizes bytes per item (means over the sample).
    ``n_items`` is None when the iterable's length is unknown.
    """

    n_items: int | None
    mean_s: float
    cv: float = 0.0
    p50_s: float = 0.0
    p95_s: float = 0.0
    max_s: float = 0.0
    arg_bytes: float = 0.0
    result_bytes: float = 0.0
    arg_dumps_s: float = 0.0
    arg_loads_s: float = 0.0
    result_dumps_s: float = 0.0
    result_loads_s: float = 0.0
    #: Peak resident memory one worker needs (0 = unknown).
    worker_memory_bytes: int = 0
    #: CPU time over wall time while calling the function: below 1 means it waits
    #: (I/O, sleep, a lock), which threads overlap even under the GIL.
    cpu_fraction: float = 1.0
    #: Rank correlation of cost with position: near 1 means the heavy items come last.
    order_correlation: float = 0.0
    sample_size: int = 0
    #: True when only the first items of an iterator were sampled.
    sampled_prefix: bool = False
    #: MEASURED when the sampler timed it; any other value (a profile built from
    #: static estimates) makes the cost model call its recommendation PREDICTED.
    source: str = MEASURED
    #: Pickling problems, each a precise message (None when fine).
    function_pickle_error: str | None = None
    args_pickle_error: str | None = None
    result_pickle_error: str | None = None
    #: "pickle"; "cloudpickle" when the standard pickler failed; "none" when neither
    #: could (cloudpickle missing or failing too).
    pickled_with: str = "pickle"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkloadProfile:
        return _from_dict(cls, d)

    @property
    def tail_mean_s(self) -> float:
        """Mean cost of the heaviest ~5% of items, from p95 and max."""
        hi = max(self.max_s, self.p95_s, self.mean_s)
        return max(self.mean_s, (max(self.p95_s, self.mean_s) + hi) / 2)


@dataclass(slots=True)
class Recommendation:
    """What to run: workers and chunksize, with the predicted effect and the reasons."""

    n_jobs: int
    chunksize: int
    executor_kind: str
    expected_speedup: float
    serial_time_s: float
    parallel_time_s: float
    #: False when serial wins: run the plain loop (n_jobs 1), not a pool.
    use_pool: bool = True
    #: (workers, predicted speedup at that worker count's best chunksize).
    curve: list[tuple[int, float]] = field(default_factory=list)
    source: str = PREDICTED
    confidence: float = 0.5
    reasons: list[str] = field(default_factory=list)
    start_method: str | None = None
    #: (workers, chunksize, predicted speedup) of the call as written, when whoever
    #: made the recommendation knew the call (the daemon does; AMZ100 compares).
    current: tuple[int, int, float] | None = None
    #: The rebuilt iterable when sampling consumed part of an iterator (library API).
    #: Never serialised.
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "data"}
        d["curve"] = [[int(w), float(s)] for w, s in self.curve]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recommendation:
        d = dict(d)
        d.pop("data", None)
        d["curve"] = [(int(w), float(s)) for w, s in d.get("curve", [])]
        current = d.get("current")
        d["current"] = (int(current[0]), int(current[1]), float(current[2])) if current else None
        return _from_dict(cls, d)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:  # NaN is not JSON
        return None
    return v
