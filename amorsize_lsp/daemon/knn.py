"""k-nearest-neighbour prediction of a workload profile from static features.

It learns only from measurements (sampled, recorded or shared profiles), never
from its own outputs. What it predicts is the *profile* (per-item time, spread,
pickled sizes); the cost model turns that into workers and chunksize for the
machine at hand.

- Features are z-scored with the training mean and standard deviation (log-scaled
  upstream, see ``features``); a missing value takes the training median; a
  feature that never varies is left out.
- k is chosen by leave-one-out over the training set, leaving out every example
  of the same function (code hash) at once, so a function measured on two
  machines cannot find itself.
- Neighbours are weighted by inverse distance.
- The confidence falls with the distance to the neighbours (against the typical
  nearest-neighbour distance in the training set) and with their disagreement
  (the weighted spread of their log item times).

Plain Python: the training sets are small (one row per function and machine),
and ``math.dist`` keeps a query over a few thousand rows well under a millisecond.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from amorsize_lsp.daemon.features import FEATURES, Vector
from amorsize_lsp.engine.workload import WorkloadProfile

#: Stored with outcomes; bump when the predictor's behaviour changes.
PREDICTOR_VERSION = "knn-1"
#: Fewer distinct functions than this: no prediction at all.
MIN_GROUPS = 3
MAX_K = 12
#: Leave-one-out for k uses at most this many queries (the rest only serve as neighbours).
MAX_LOO_QUERIES = 300
#: Spread of the neighbours' log item times (natural log) that divides confidence by e.
SPREAD_SCALE = math.log(10)
#: Below this confidence the advisor says nothing.
CONFIDENCE_THRESHOLD = 0.3

#: Profile fields averaged as ratios to the mean item time.
_RATIO_FIELDS = ("p50_s", "p95_s", "max_s")
#: Profile fields averaged arithmetically.
_LINEAR_FIELDS = ("cv", "cpu_fraction", "order_correlation")
#: Sizes (bytes) and small times (seconds) averaged on a log1p scale.
_LOG_BYTES = ("arg_bytes", "result_bytes")
_LOG_TIMES = ("arg_dumps_s", "arg_loads_s", "result_dumps_s", "result_loads_s")


@dataclass(slots=True)
class Example:
    """One measured function: its features, its profile, and who it is."""

    features: Vector
    profile: WorkloadProfile
    #: Examples of one group are left out together (the code hash).
    group: str
    label: str = ""


@dataclass(slots=True)
class Prediction:
    """A predicted profile with how far and how unanimous its neighbours were."""

    profile: WorkloadProfile
    confidence: float
    distance: float
    spread: float
    neighbours: list[tuple[Example, float]] = field(default_factory=list)


class KNN:
    """A fitted k-NN over measured examples. Immutable after construction."""

    def __init__(
        self,
        examples: Sequence[Example],
        *,
        k: int | None = None,
        max_k: int = MAX_K,
        seed: int = 0,
    ) -> None:
        self.examples = [e for e in examples if e.profile.mean_s > 0]
        self.groups = len({e.group for e in self.examples})
        self._fit_scaling()
        self._vectors = [self._scale(e.features) for e in self.examples]
        self._logs = [math.log(e.profile.mean_s) for e in self.examples]
        self._rng = random.Random(seed)
        self.ref_distance = self._reference_distance()
        if k is not None:
            self.k = max(1, k)
            self.loo_error: float | None = None
        else:
            self.k, self.loo_error = self._choose_k(max_k)

    # ------------------------------------------------------------------ fitting

    def _fit_scaling(self) -> None:
        n = len(FEATURES)
        self.medians: list[float] = []
        self.means: list[float] = []
        self.scales: list[float] = []
        #: Indexes of the features that vary in the training set.
        self.active: list[int] = []
        for j in range(n):
            col = [e.features[j] for e in self.examples if e.features[j] is not None]
            med = statistics.median(col) if col else 0.0
            filled = [v if v is not None else med for v in (e.features[j] for e in self.examples)]
            mean = statistics.fmean(filled) if filled else 0.0
            sd = statistics.pstdev(filled) if len(filled) > 1 else 0.0
            self.medians.append(med)
            self.means.append(mean)
            self.scales.append(sd if sd > 1e-12 else 1.0)
            if sd > 1e-12:
                self.active.append(j)

    def _scale(self, features: Vector) -> tuple[float, ...]:
        out = []
        for j in self.active:
            v = features[j]
            if v is None:
                v = self.medians[j]
            out.append((v - self.means[j]) / self.scales[j])
        return tuple(out)

    def _reference_distance(self) -> float:
        """The median distance from a training example to its nearest other function."""
        if self.groups < 2:
            return 1.0
        idx = self._query_indexes()
        near = []
        for i in idx:
            g = self.examples[i].group
            best = min(
                (
                    math.dist(self._vectors[i], v)
                    for v, e in zip(self._vectors, self.examples, strict=True)
                    if e.group != g
                ),
                default=math.inf,
            )
            if math.isfinite(best):
                near.append(best)
        ref = statistics.median(near) if near else 1.0
        # Identical feature vectors are common (same shape, other constants): keep a floor.
        return max(ref, 0.25)

    def _query_indexes(self) -> list[int]:
        idx = list(range(len(self.examples)))
        if len(idx) > MAX_LOO_QUERIES:
            idx = sorted(self._rng.sample(idx, MAX_LOO_QUERIES))
        return idx

    def _choose_k(self, max_k: int) -> tuple[int, float | None]:
        """k with the least leave-one-out mean |log(predicted / measured)| item time."""
        if self.groups < MIN_GROUPS:
            return 1, None
        top = max(1, min(max_k, self.groups - 1))
        errors = [0.0] * (top + 1)
        count = 0
        for i in self._query_indexes():
            ranked = self._ranked(self._vectors[i], self.examples[i].group, top)
            if not ranked:
                continue
            count += 1
            for k in range(1, top + 1):
                errors[k] += abs(self._log_mean(ranked[:k]) - self._logs[i])
        if not count:
            return 1, None
        best = min(range(1, top + 1), key=lambda k: (errors[k], k))
        return best, errors[best] / count

    # ---------------------------------------------------------------- predicting

    def _ranked(
        self, q: tuple[float, ...], exclude: str | None, limit: int
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest examples as (index, distance), nearest first."""
        ds = (
            (i, math.dist(q, v))
            for i, v in enumerate(self._vectors)
            if exclude is None or self.examples[i].group != exclude
        )
        return heapq.nsmallest(limit, ds, key=lambda t: t[1])

    def _weight(self, d: float) -> float:
        return 1.0 / (d + 0.1 * self.ref_distance)

    def _log_mean(self, nb: Sequence[tuple[int, float]]) -> float:
        ws = [self._weight(d) for _, d in nb]
        return sum(w * self._logs[i] for w, (i, _) in zip(ws, nb, strict=True)) / sum(ws)

    def predict(self, features: Vector, *, exclude: str | None = None) -> Prediction | None:
        """The predicted profile for ``features`` (None with too few measured functions).

        ``exclude`` leaves out a group (leave-one-out evaluation).
        """
        groups = self.groups - (1 if exclude is not None else 0)
        if groups < MIN_GROUPS or len(features) != len(FEATURES):
            return None
        q = self._scale(features)
        nb = self._ranked(q, exclude, self.k)
        if not nb:
            return None
        ws = [self._weight(d) for _, d in nb]
        total = sum(ws)
        mu = sum(w * self._logs[i] for w, (i, _) in zip(ws, nb, strict=True)) / total
        var = sum(w * (self._logs[i] - mu) ** 2 for w, (i, _) in zip(ws, nb, strict=True)) / total
        spread = math.sqrt(max(var, 0.0))
        distance = sum(w * d for w, (_, d) in zip(ws, nb, strict=True)) / total
        conf_distance = 1.0 / (1.0 + (distance / (2 * self.ref_distance)) ** 2)
        conf_agree = math.exp(-spread / SPREAD_SCALE)
        confidence = conf_distance * conf_agree * (1.0 if len(nb) > 1 else 0.8)
        profile = self._blend(nb, ws, math.exp(mu))
        return Prediction(
            profile=profile,
            confidence=round(confidence, 3),
            distance=distance,
            spread=spread,
            neighbours=[(self.examples[i], d) for i, d in nb],
        )

    def _blend(
        self, nb: Sequence[tuple[int, float]], ws: Sequence[float], mean_s: float
    ) -> WorkloadProfile:
        total = sum(ws)
        profs = [self.examples[i].profile for i, _ in nb]

        def avg(values: Sequence[float]) -> float:
            return sum(w * v for w, v in zip(ws, values, strict=True)) / total

        kw: dict[str, float] = {}
        for name in _RATIO_FIELDS:
            kw[name] = mean_s * avg([getattr(p, name) / p.mean_s for p in profs])
        for name in _LINEAR_FIELDS:
            kw[name] = avg([float(getattr(p, name)) for p in profs])
        for name in _LOG_BYTES:
            kw[name] = math.expm1(avg([math.log1p(max(getattr(p, name), 0.0)) for p in profs]))
        for name in _LOG_TIMES:
            us = avg([math.log1p(max(getattr(p, name), 0.0) * 1e6) for p in profs])
            kw[name] = math.expm1(us) / 1e6
        names = ", ".join(e.label or e.group for e in (self.examples[i] for i, _ in nb[:3]))
        return WorkloadProfile(
            n_items=None,
            mean_s=mean_s,
            source="estimated",
            notes=[f"predicted from {len(nb)} measured functions ({names})"],
            **kw,
        )

    def leave_one_out(self) -> list[tuple[Example, Prediction | None]]:
        """Each example with the prediction made without its function (all examples)."""
        return [(e, self.predict(e.features, exclude=e.group)) for e in self.examples]
