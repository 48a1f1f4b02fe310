"""Decisions: system profile, cost model, sampler, and the in-process library API.

``recommend(func, data)`` is for benchmarks, notebooks and scripts: it samples the
function in this process (the caller already trusts its own function), builds the
``SystemProfile`` and asks the pure cost model. The editor and CLI go through
``sampler.sample_callsite`` instead, which isolates user code in a subprocess.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from amorsize_lsp.analysis.model import PROCESS_POOL
from amorsize_lsp.engine import cost
from amorsize_lsp.engine._sampler_child import SampleError, measure
from amorsize_lsp.engine.system import SystemProfile, usable_cores
from amorsize_lsp.engine.workload import Recommendation, WorkloadProfile

__all__ = [
    "Recommendation",
    "SampleError",
    "SystemProfile",
    "WorkloadProfile",
    "profile_workload",
    "recommend",
    "usable_cores",
]


def profile_workload(
    func: Callable[..., Any],
    data: Iterable[Any],
    *,
    budget_s: float = 1.0,
    star: bool = False,
) -> tuple[WorkloadProfile, Iterable[Any] | None, float]:
    """Sample ``func`` on ``data`` in this process.

    Returns (profile, rebuilt iterable or None, sampling seconds). The rebuilt
    iterable is set when sampling consumed items from an iterator: it yields the
    consumed items, then the rest, so nothing is lost.
    """
    raw = measure(func, data, budget_s=budget_s, star=star)
    consumed = raw.pop("consumed", None)
    seconds = float(raw.pop("sampling_s", 0.0))
    rebuilt: Iterable[Any] | None = None
    if consumed is not None:
        rebuilt = itertools.chain(consumed, data)
    return WorkloadProfile.from_dict(raw), rebuilt, seconds


def recommend(
    func: Callable[..., Any],
    data: Iterable[Any],
    *,
    executor_kind: str = PROCESS_POOL,
    budget_s: float = 1.0,
    system: SystemProfile | None = None,
    star: bool = False,
    start_method: str | None = None,
    measure_load: bool = False,
) -> Recommendation:
    """Workers and chunksize for ``map(func, data)`` on this machine.

    ``start_method`` is the one the pool will use (``"fork"``, ``"spawn"``,
    ``"forkserver"``); None means this interpreter's default. ``measure_load=True``
    measures how many cores other processes leave free now (~0.3 s) when ``system``
    is not given. A generator is consumed only as far as the sample;
    ``Recommendation.data`` then holds an iterable with every item, to pass to the
    pool instead of ``data``.
    Raises ``SampleError`` when ``func`` raises or exits on a sampled item.
    """
    if executor_kind not in cost.KINDS:
        raise ValueError(
            f"unknown executor kind {executor_kind!r}; expected one of {', '.join(cost.KINDS)}"
        )
    if system is None:
        system = SystemProfile.detect(measure_load=measure_load)
    cost.resolve_start_method(start_method, system)  # a bad name fails before sampling
    profile, rebuilt, _ = profile_workload(func, data, budget_s=budget_s, star=star)
    rec = cost.recommend(profile, system, executor_kind, start_method=start_method)
    rec.data = rebuilt
    return rec
