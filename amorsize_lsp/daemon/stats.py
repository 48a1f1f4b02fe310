"""What the store knows about its own accuracy (``amorsize-daemon stats``).

- Predictor error, median and p90 of |predicted − measured| / measured, for the
  per-item time and for the call's wall time: from ``outcomes`` (real runs, per
  predictor version) and from leave-one-out over the stored profiles (the current
  version; the wall time there is the cost model's, under the predicted profile
  against under the measured one, at the configuration the measured one picks).
- How often the recommendation was within 10% of the best configuration recorded
  for the same call site and item count.
- Which static features matter: permutation importance, the rise of the
  leave-one-out error when one feature's values are shuffled across functions.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from amorsize_lsp.analysis.model import EXECUTOR_KINDS, PROCESS_POOL
from amorsize_lsp.daemon.features import FEATURES
from amorsize_lsp.daemon.knn import CONFIDENCE_THRESHOLD, KNN, PREDICTOR_VERSION, Example
from amorsize_lsp.daemon.store import COMPLEXITY_COLUMNS
from amorsize_lsp.engine import cost
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

if TYPE_CHECKING:
    from amorsize_lsp.daemon.advisor import Advisor

#: Within this share of the best recorded wall time counts as "as good as the best".
WITHIN = 0.10
#: Permutation importance runs on at most this many functions, this many shuffles each.
IMPORTANCE_MAX_EXAMPLES = 150
IMPORTANCE_REPEATS = 3

_EXECUTOR_FOR_KIND: dict[str, str] = {}
for _name, _kind in EXECUTOR_KINDS.items():
    _EXECUTOR_FOR_KIND.setdefault(_kind, _name)


def summary(values: Sequence[float]) -> dict[str, Any] | None:
    """``{"n", "median", "p90"}`` of relative errors, None when there are none."""
    xs = sorted(v for v in values if math.isfinite(v))
    if not xs:
        return None
    p90 = xs[min(len(xs) - 1, math.ceil(0.9 * len(xs)) - 1)]
    return {"n": len(xs), "median": round(statistics.median(xs), 4), "p90": round(p90, 4)}


def rel_error(predicted: float, measured: float) -> float:
    """|predicted − measured| / measured (inf when nothing was measured)."""
    return abs(predicted - measured) / measured if measured > 0 else math.inf


# ------------------------------------------------------------------- outcomes


def outcome_errors(advisor: Advisor) -> list[dict[str, Any]]:
    """Per predictor version: item-time and wall-time errors of real recorded runs."""
    rows = advisor.store.query(
        "SELECT predictor_version, wall_s, predicted_wall_s, item_s, predicted_item_s "
        "FROM outcomes ORDER BY predictor_version"
    )
    by_version: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        item, wall = by_version.setdefault(r["predictor_version"] or "unknown", ([], []))
        if r["predicted_wall_s"] is not None and r["wall_s"]:
            wall.append(rel_error(r["predicted_wall_s"], r["wall_s"]))
        if r["predicted_item_s"] is not None and r["item_s"]:
            item.append(rel_error(r["predicted_item_s"], r["item_s"]))
    return [
        {
            "predictor_version": v,
            "from": "outcomes",
            "item_time": summary(item),
            "wall_time": summary(wall),
        }
        for v, (item, wall) in sorted(by_version.items())
    ]


# -------------------------------------------------------------- leave-one-out


def _n(profile: WorkloadProfile) -> int:
    return profile.n_items or cost.ASSUMED_ITEMS


def wall_error(
    predicted: WorkloadProfile, measured: WorkloadProfile, system: SystemProfile
) -> float:
    """Relative error of the cost model's wall time under the predicted profile, at the
    configuration the measured profile leads to."""
    n = _n(measured)
    m = WorkloadProfile.from_dict({**measured.to_dict(), "n_items": n})
    p = WorkloadProfile.from_dict({**predicted.to_dict(), "n_items": n})
    rec = cost.recommend(m, system, PROCESS_POOL)
    if not rec.use_pool:
        return rel_error(cost.serial_time(p, n), cost.serial_time(m, n))
    pw = cost.predict(p, system, PROCESS_POOL, rec.n_jobs, rec.chunksize, n).total_s
    mw = cost.predict(m, system, PROCESS_POOL, rec.n_jobs, rec.chunksize, n).total_s
    return rel_error(pw, mw)


def loo_errors(model: KNN, system: SystemProfile) -> dict[str, Any]:
    """Leave-one-out over the model's functions: item-time and wall-time errors."""
    item: list[float] = []
    wall: list[float] = []
    confident: list[float] = []
    for example, pred in model.leave_one_out():
        if pred is None:
            continue
        err = rel_error(pred.profile.mean_s, example.profile.mean_s)
        item.append(err)
        wall.append(wall_error(pred.profile, example.profile, system))
        if pred.confidence >= CONFIDENCE_THRESHOLD:
            confident.append(err)
    return {
        "predictor_version": PREDICTOR_VERSION,
        "from": "leave-one-out",
        "item_time": summary(item),
        "wall_time": summary(wall),
        "confident": {
            "threshold": CONFIDENCE_THRESHOLD,
            "share": round(len(confident) / len(item), 4) if item else None,
            "item_time": summary(confident),
        },
    }


def loo_log_error(examples: Sequence[Example], k: int) -> float | None:
    """Mean |log(predicted / measured)| item time, leave-one-out, with a fixed k."""
    model = KNN(examples, k=k)
    errs = [
        abs(math.log(p.profile.mean_s / e.profile.mean_s))
        for e, p in model.leave_one_out()
        if p is not None and p.profile.mean_s > 0
    ]
    return statistics.fmean(errs) if errs else None


def permutation_importance(model: KNN, seed: int = 0) -> list[dict[str, Any]]:
    """Per feature: how much the leave-one-out error grows when its values are shuffled.

    In units of mean |ln(predicted / measured)|; 0 for features that never vary.
    """
    rng = random.Random(seed)
    examples = list(model.examples)
    if len(examples) > IMPORTANCE_MAX_EXAMPLES:
        examples = rng.sample(examples, IMPORTANCE_MAX_EXAMPLES)
    base = loo_log_error(examples, model.k)
    out = []
    for j, name in enumerate(FEATURES):
        if base is None or j not in model.active:
            out.append({"feature": name, "importance": 0.0})
            continue
        rises = []
        for _ in range(IMPORTANCE_REPEATS):
            col = [e.features[j] for e in examples]
            rng.shuffle(col)
            shuffled = [
                Example((*e.features[:j], v, *e.features[j + 1 :]), e.profile, e.group, e.label)
                for e, v in zip(examples, col, strict=True)
            ]
            err = loo_log_error(shuffled, model.k)
            if err is not None:
                rises.append(err - base)
        imp = statistics.fmean(rises) if rises else 0.0
        out.append({"feature": name, "importance": round(imp, 4)})
    out.sort(key=lambda d: -d["importance"])
    return out


# ------------------------------------------------------------ best configuration


def _callsite(row: dict[str, Any], fn: dict[str, Any] | None) -> dict[str, Any]:
    cx = None
    if row.get("code_hash"):
        cx = {"resolved": True, "code_hash": row["code_hash"], "io_calls": []}
        for c in COMPLEXITY_COLUMNS:
            v = (fn or {}).get(c)
            cx[c] = bool(v) if c in ("recursive", "blocking_io") and v is not None else v
    return {
        "path": row.get("path"),
        "line": row.get("line"),
        "function": row.get("function"),
        "executor": _EXECUTOR_FOR_KIND.get(row.get("executor_kind") or ""),
        "length": row.get("n_items"),
        "complexity": cx,
    }


def within_best(advisor: Advisor) -> dict[str, Any]:
    """How often the recommended configuration ran within 10% of the best one recorded.

    Per call site (code hash, else path and function) and item count: the
    recommendation recorded with the runs when there is one, else the advisor's
    current one. Sites where the recommended configuration never ran are counted
    apart.
    """
    rows = advisor.store.query("SELECT * FROM outcomes ORDER BY measured_at, id")
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        site = r["code_hash"] or f"{r['path']}:{r['function']}"
        groups.setdefault((site, r["n_items"]), []).append(r)
    functions = {
        f["code_hash"]: f
        for f in advisor.store.query(
            "SELECT * FROM functions WHERE code_hash IN "
            "(SELECT DISTINCT code_hash FROM outcomes WHERE code_hash IS NOT NULL)"
        )
    }
    considered = within = not_run = no_rec = 0
    for runs in groups.values():
        recorded = [r for r in runs if r["recommended_n_jobs"] is not None]
        if recorded:
            last = recorded[-1]
            want = (last["recommended_n_jobs"], last["recommended_chunksize"])
        else:
            rec = advisor.recommend(_callsite(runs[-1], functions.get(runs[-1]["code_hash"])))
            if rec is None:
                no_rec += 1
                continue
            want = (rec["n_jobs"], rec["chunksize"])
        best = min(r["wall_s"] for r in runs)
        matching = [
            r["wall_s"]
            for r in runs
            if r["n_jobs"] == want[0] and (want[0] == 1 or r["chunksize"] == want[1])
        ]
        if not matching:
            not_run += 1
            continue
        considered += 1
        if min(matching) <= best * (1 + WITHIN):
            within += 1
    return {
        "call_sites": considered,
        "within_10pct": within,
        "share": round(within / considered, 4) if considered else None,
        "recommended_never_run": not_run,
        "no_recommendation": no_rec,
    }


# ----------------------------------------------------------------------- all


def compute(advisor: Advisor) -> dict[str, Any]:
    """The whole report (JSON-safe)."""
    model = advisor.model()
    errors = outcome_errors(advisor)
    model_info: dict[str, Any] | None = None
    importance: list[dict[str, Any]] = []
    if model is not None:
        model_info = {
            "examples": len(model.examples),
            "functions": model.groups,
            "k": model.k,
            "confidence_threshold": CONFIDENCE_THRESHOLD,
        }
        if model.groups >= 2:
            errors.append(loo_errors(model, advisor.system))
            importance = permutation_importance(model)
    return {
        "predictor_version": PREDICTOR_VERSION,
        "counts": advisor.store.counts(),
        "model": model_info,
        "error": errors,
        "within_10pct_of_best": within_best(advisor),
        "feature_importance": importance,
    }
