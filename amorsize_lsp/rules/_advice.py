"""What the recommendation rules (AMZ1xx) share: which advice to trust, and the call's
current configuration as the cost model sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from amorsize_lsp.analysis.model import CallSite, ModuleAnalysis
from amorsize_lsp.analysis.stdlib_defaults import default_chunksize, default_workers

from .model import RuleContext

if TYPE_CHECKING:
    from amorsize_lsp.engine.workload import Recommendation

#: Provenances that are measurements (or rescaled measurements).
MEASURED_SOURCES = frozenset({"measured", "recorded", "shared"})
#: A predicted recommendation counts only above this confidence (the daemon's k-NN
#: gives no prediction at all below the same threshold).
MIN_PREDICTED_CONFIDENCE = 0.3


def trusted(rec: Recommendation | None) -> bool:
    """Whether a recommendation is sure enough to report."""
    if rec is None:
        return False
    if rec.source in MEASURED_SOURCES:
        return True
    return rec.source == "predicted" and rec.confidence > MIN_PREDICTED_CONFIDENCE


def advice(site: CallSite, ctx: RuleContext) -> Recommendation | None:
    """The trusted recommendation for ``site``, or None."""
    if ctx.recommend is None:
        return None
    rec = ctx.recommend(site)
    return rec if trusted(rec) else None


def advised(analysis: ModuleAnalysis, ctx: RuleContext, *, use_pool: bool):
    """(site, recommendation) for each call site with trusted advice that does (or,
    with ``use_pool=False``, does not) recommend a pool."""
    for site in analysis.callsites:
        rec = advice(site, ctx)
        if rec is not None and rec.use_pool is use_pool:
            yield site, rec


def current_workers(site: CallSite, ctx: RuleContext) -> int:
    """The worker count the call runs with: the constructor's literal, else the default."""
    ctor = site.constructor
    if ctor is not None and ctor.workers_value:
        return ctor.workers_value
    return default_workers(site.kind, ctx.target_cores)


def current_chunksize(site: CallSite, workers: int) -> int | None:
    """The chunksize the call runs with, when it can be known statically."""
    if site.chunksize_value:
        return site.chunksize_value
    if site.chunksize is not None:
        return None  # given, but not a literal
    return default_chunksize(site.method, site.kind, site.length, workers)


def speedup_at(rec: Recommendation, workers: int) -> float | None:
    """The curve's speedup at ``workers`` (the nearest measured point at or below it)."""
    points = sorted((int(w), float(s)) for w, s in rec.curve)
    below = [s for w, s in points if w <= workers]
    if below:
        return below[-1]
    return points[0][1] if points else None


def best_pool_speedup(rec: Recommendation) -> float | None:
    """The best speedup any pool reaches on the curve (more than one worker)."""
    pools = [float(s) for w, s in rec.curve if int(w) > 1]
    return max(pools) if pools else None
