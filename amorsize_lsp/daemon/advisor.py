"""From a call site to a recommendation: an exact measurement if there is one, else k-NN.

Order of trust:
1. a profile of the same code hash measured on this machine (``measured``, or
   ``recorded`` when it came from a real run), the newest quiet one first;
2. the same code hash measured elsewhere: imported, or in a project's committed
   ``.amorsize/profiles.jsonl`` (``shared``, its times rescaled to this machine);
3. the k-NN's predicted profile when its confidence clears the threshold
   (``predicted``);
4. nothing (None): the editor shows nothing rather than noise.

The item count comes from the call site when it is known statically, from the
profile otherwise. The engine's cost model makes the recommendation for this
machine; the first reason says where the profile came from.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.model import EXECUTOR_KINDS, PROCESS_POOL
from amorsize_lsp.analysis.stdlib_defaults import default_chunksize, default_workers
from amorsize_lsp.daemon import features, sharing
from amorsize_lsp.daemon.knn import (
    CONFIDENCE_THRESHOLD,
    KNN,
    MAX_EXAMPLES,
    PREDICTOR_VERSION,
    Example,
)
from amorsize_lsp.daemon.store import Store, row_profile
from amorsize_lsp.engine import cost
from amorsize_lsp.engine.cost import _fmt_s
from amorsize_lsp.engine.system import Calibration, SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

MEASURED = "measured"
RECORDED = "recorded"
SHARED = "shared"
PREDICTED = "predicted"

#: Confidence multipliers.
NOISY_FACTOR = 0.7
SHARED_FACTOR = 0.85
UNSCALED_FACTOR = 0.7
#: Cached recommendations (per call-site shape).
CACHE_SIZE = 4096
#: How often (seconds) to look for changes made by other processes.
FRESHNESS_S = 1.0

_COMPLEXITY_INTS = ("bytecode_size", "instruction_count", "loop_count", "max_loop_depth")


@dataclass(slots=True)
class Found:
    """A profile for a call site, where it came from, and how far to trust it."""

    profile: WorkloadProfile
    source: str
    #: Multiplies the cost model's confidence (measured) or caps it (predicted).
    confidence: float
    reasons: list[str]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _literal(text: Any) -> int | None:
    """A positive integer literal written at the call (``"4"``), else None."""
    if isinstance(text, str) and text.strip().isdigit():
        value = int(text.strip())
        return value if value > 0 else None
    return None


def _call_config(
    callsite: dict[str, Any], kind: str, n_items: int | None, cores: int
) -> tuple[int, int] | None:
    """(workers, chunksize) the call runs with here, or None when either is an
    expression that only running the code would tell."""
    text = callsite.get("workers")
    workers = default_workers(kind, cores) if text is None else _literal(text)
    if workers is None:
        return None
    text = callsite.get("chunksize")
    method = callsite.get("method") if isinstance(callsite.get("method"), str) else "map"
    if text is None:
        chunksize = default_chunksize(method, kind, n_items, workers)
    else:
        chunksize = _literal(text)
    return (workers, chunksize) if chunksize is not None else None


def validate_callsite(callsite: Any) -> dict[str, Any]:
    """The call site if its keys have the right types; ValueError naming the key if not.

    Missing keys are fine (they count as unknown); wrong types are not.
    """
    if not isinstance(callsite, dict):
        raise ValueError(f"callsite must be a JSON object, not {type(callsite).__name__}")

    def check(key: str, ok: bool, want: str, where: dict[str, Any], prefix: str = "") -> None:
        if not ok:
            got = type(where[key]).__name__ if where[key] is not None else "null"
            raise ValueError(f"callsite.{prefix}{key} must be {want}, not {got}")

    for key in ("path", "function", "executor", "method"):
        if key in callsite:
            v = callsite[key]
            check(key, v is None or isinstance(v, str), "a string or null", callsite)
    for key in ("line", "length"):
        if key in callsite:
            v = callsite[key]
            check(key, v is None or (_is_int(v) and v >= 0), "an integer ≥ 0 or null", callsite)
    cx = callsite.get("complexity")
    if cx is not None:
        check("complexity", isinstance(cx, dict), "an object or null", callsite)
        for key in (*_COMPLEXITY_INTS, "call_count"):
            if key in cx and cx[key] is not None:
                check(key, _is_int(cx[key]), "an integer", cx, "complexity.")
        for key in ("recursive", "blocking_io", "resolved"):
            if key in cx and cx[key] is not None:
                check(key, isinstance(cx[key], bool), "a boolean", cx, "complexity.")
        if "code_hash" in cx:
            v = cx["code_hash"]
            check(
                "code_hash", v is None or isinstance(v, str), "a string or null", cx, "complexity."
            )
        if "io_calls" in cx:
            v = cx["io_calls"]
            check("io_calls", v is None or isinstance(v, list), "a list", cx, "complexity.")
    return callsite


def _ago(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 90:
        return "just now"
    if s < 90 * 60:
        return f"{s / 60:.0f} min ago"
    if s < 36 * 3600:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} days ago"


class Advisor:
    """Recommendations for call sites from the store, project files and the k-NN."""

    def __init__(
        self, store: Store, system: SystemProfile, *, project_roots: Sequence[Path] = ()
    ) -> None:
        self.store = store
        self.system = system
        self.project_roots = [Path(r) for r in project_roots]
        self.fingerprint = system.fingerprint
        if not store.readonly:
            self.fingerprint = store.record_machine(system)
        cal = system.calibration
        self.calibration: Calibration | None = cal if cal.measured else None
        self.machine_item_s: float | None = cal.pool_item_s if cal.measured else None
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[Any, ...], dict[str, Any] | None] = OrderedDict()
        self._model: KNN | None = None
        self._model_built = False
        self._project: dict[str, list[tuple[Path, sharing.SharedProfile]]] = {}
        self._project_stamps: list[tuple[int, int] | None] = []
        self._machines: dict[str, dict[str, Any] | None] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._refresh(force=True)

    # ---------------------------------------------------------------- freshness

    def profile_added(self) -> None:
        """Forget cached answers and the model: a profile was stored or a file changed."""
        with self._lock:
            self._cache.clear()
            self._model = None
            self._model_built = False
            self._machines.clear()
            self._checked = 0.0

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < FRESHNESS_S:
            return
        self._checked = now
        stamp = self.store.change_stamp()
        stamps = [sharing.file_stamp(r) for r in self.project_roots]
        if force or stamp != self._stamp or stamps != self._project_stamps:
            if not force:
                self.profile_added()
                self._checked = now
            self._stamp = stamp
            if force or stamps != self._project_stamps:
                self._project_stamps = stamps
                self._load_project()

    def _load_project(self) -> None:
        index: dict[str, list[tuple[Path, sharing.SharedProfile]]] = {}
        for root in self.project_roots:
            for sp in sharing.load_project_profiles(root):
                if sp.code_hash:
                    index.setdefault(sp.code_hash, []).append((root, sp))
        self._project = index

    # ----------------------------------------------------------------- recommend

    def recommend(self, callsite: dict[str, Any]) -> dict[str, Any] | None:
        """``Recommendation.to_dict()`` with source and confidence set, or None.

        Raises ValueError (naming the key) when a key has the wrong type.
        """
        validate_callsite(callsite)
        executor = callsite.get("executor")
        kind = EXECUTOR_KINDS.get(executor) if isinstance(executor, str) else None
        cx = callsite.get("complexity") if isinstance(callsite.get("complexity"), dict) else None
        code_hash = cx.get("code_hash") if cx else None
        vec = features.from_callsite(callsite, kind, self.machine_item_s)
        key = (
            code_hash,
            callsite.get("length"),
            kind,
            None if code_hash else (callsite.get("path"), callsite.get("function")),
            vec,
            # The call as written: its start method and the configuration it is judged in.
            tuple(
                v if isinstance(v, str) else None
                for v in (
                    callsite.get(k) for k in ("start_method", "method", "workers", "chunksize")
                )
            ),
        )
        with self._lock:
            self._refresh()
            if key in self._cache:
                self._cache.move_to_end(key)
                return _copy(self._cache[key])
            result = self._compute(callsite, kind)
            self._cache[key] = result
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return _copy(result)

    def _compute(self, callsite: dict[str, Any], kind: str | None) -> dict[str, Any] | None:
        found = self.find_profile(callsite, kind)
        if found is None:
            return None
        reasons = list(found.reasons)
        if kind is None:
            kind = PROCESS_POOL
            reasons.append("executor not known statically: assumed multiprocessing.Pool")
        length = callsite.get("length")
        prof = WorkloadProfile.from_dict(found.profile.to_dict())
        if _is_int(length):
            prof.n_items = length
            reasons.append(f"item count {length}, from the call site")
        elif prof.n_items is not None:
            reasons.append(f"item count {prof.n_items}, from the profile (unknown at the call)")
        prof.source = "estimated" if found.source == PREDICTED else "measured"
        method = callsite.get("start_method")
        method = method if isinstance(method, str) and method else None
        rec = cost.recommend(prof, self.system, kind, start_method=method)
        config = _call_config(callsite, kind, prof.n_items, self.system.usable_cores)
        if config is not None:
            workers, chunksize = config
            now = cost.predict(
                prof, self.system, kind, workers, chunksize, start_method=rec.start_method
            )
            if now.total_s > 0:
                rec.current = (workers, chunksize, round(rec.serial_time_s / now.total_s, 4))
        rec.source = found.source
        if found.source == PREDICTED:
            rec.confidence = round(min(rec.confidence, found.confidence), 3)
        else:
            rec.confidence = round(rec.confidence * found.confidence, 3)
        rec.reasons = reasons + rec.reasons
        return rec.to_dict()

    # ----------------------------------------------------------------- profiles

    def find_profile(self, callsite: dict[str, Any], kind: str | None) -> Found | None:
        """The best profile for a (validated) call site, or None when nothing is known."""
        exact = self._exact(callsite)
        if exact is not None:
            return exact
        return self._predicted(callsite, kind)

    def _machine(self, fingerprint: str) -> dict[str, Any] | None:
        if fingerprint not in self._machines:
            self._machines[fingerprint] = self.store.machine(fingerprint)
        return self._machines[fingerprint]

    def _exact(self, callsite: dict[str, Any]) -> Found | None:
        cx = callsite.get("complexity")
        code_hash = cx.get("code_hash") if isinstance(cx, dict) else None
        now = time.time()
        cands: list[tuple[tuple[Any, ...], Any]] = []
        if code_hash:
            rows = self.store.profiles("p.code_hash = ?", (code_hash,))
        elif callsite.get("path") and callsite.get("function"):
            rows = self.store.profiles(
                "p.code_hash IS NULL AND p.path = ? AND p.function = ?",
                (callsite["path"], callsite["function"]),
            )
        else:
            rows = []
        for row in rows:
            local = row["machine"] == self.fingerprint and row["source"] != "import"
            cands.append(((local, not row["noisy"], row["measured_at"]), row))
        for root, sp in self._project.get(code_hash or "", []):
            cands.append(((False, not sp.noisy, sp.measured_at), (root, sp)))
        if not cands:
            return None
        (local, quiet, when), best = max(cands, key=lambda c: c[0])
        ago = _ago(now - when)
        extra: list[str] = []
        factor = 1.0
        if isinstance(best, dict):
            prof = row_profile(best)
            where = "an imported file" if best["source"] == "import" else "the store"
            fingerprint = best["machine"]
            system = self._machine(fingerprint)
            origin_source = best["source"]
        else:
            root, sp = best
            prof = sp.profile
            where = f"the project file {sharing.project_profiles_path(root)}"
            fingerprint = sp.fingerprint
            system = sp.system
            origin_source = sp.source
        per_item = f"{_fmt_s(prof.mean_s)} per item"
        if prof.sample_size:
            per_item += f" over {prof.sample_size} items"
        if local and origin_source == "record":
            source = RECORDED
            head = f"profile recorded from a real run on this machine {ago}: {per_item}"
        elif local:
            source = MEASURED
            head = f"profile sampled on this machine {ago}: {per_item}"
        else:
            source = SHARED
            factor = SHARED_FACTOR
            if fingerprint == self.fingerprint:
                head = f"profile shared from {where}, measured on this machine {ago}: {per_item}"
            else:
                scale = sharing.rescale_factor(sharing.calibration_of(system), self.calibration)
                head = f"profile shared from {where}, measured on machine {fingerprint[:8]} {ago}"
                if scale is None:
                    factor *= UNSCALED_FACTOR
                    head += f": {per_item}, not rescaled (a machine's calibration is missing)"
                else:
                    prof = sharing.rescale(prof, scale)
                    head += (
                        f": times ×{scale:.2f} by the two machines' calibrated per-item cost, "
                        f"{_fmt_s(prof.mean_s)} per item here"
                    )
        if not quiet:
            factor *= NOISY_FACTOR
            extra.append("it was measured while the machine was busy (noisy): less confidence")
        return Found(prof, source, factor, [head, *extra])

    def model(self) -> KNN | None:
        """The k-NN over every measured function, built lazily after a change."""
        with self._lock:
            if not self._model_built:
                examples = self.training_examples()
                self._model = KNN(examples) if examples else None
                self._model_built = True
            return self._model

    def training_examples(self) -> list[Example]:
        """One example per function and machine: its newest quiet profile (project files too)."""
        latest: dict[tuple[str, str], tuple[tuple[int, float], dict[str, Any]]] = {}
        for row in self.store.profiles("p.code_hash IS NOT NULL"):
            k = (row["code_hash"], row["machine"])
            rank = (0 if row["noisy"] else 1, row["measured_at"])
            if k not in latest or rank >= latest[k][0]:
                latest[k] = (rank, row)
        examples: list[Example] = []
        newest = sorted(latest.items(), key=lambda kv: kv[1][1]["measured_at"])[-MAX_EXAMPLES:]
        for (code_hash, machine), (_, row) in newest:
            item = self._item_cost(self._machine(machine))
            vec = features.from_row(row, item)
            if vec is None:
                continue
            examples.append(Example(vec, row_profile(row), code_hash, row.get("function") or ""))
        seen = set(latest)
        for code_hash, sps in self._project.items():
            for _, sp in sps:
                if (code_hash, sp.fingerprint) in seen:
                    continue
                seen.add((code_hash, sp.fingerprint))
                if len(examples) >= MAX_EXAMPLES:
                    break
                executor = sp.callsite.get("executor")
                kind = EXECUTOR_KINDS.get(executor) if isinstance(executor, str) else None
                vec = features.from_callsite(sp.callsite, kind, self._item_cost(sp.system))
                if vec is not None:
                    label = str(sp.callsite.get("function") or "")
                    examples.append(Example(vec, sp.profile, code_hash, label))
        return examples

    @staticmethod
    def _item_cost(system: dict[str, Any] | None) -> float | None:
        cal = sharing.calibration_of(system)
        return cal.pool_item_s if cal is not None else None

    def _predicted(self, callsite: dict[str, Any], kind: str | None) -> Found | None:
        vec = features.from_callsite(callsite, kind, self.machine_item_s)
        if vec is None:
            return None
        model = self.model()
        if model is None:
            return None
        pred = model.predict(vec)
        if pred is None or pred.confidence < CONFIDENCE_THRESHOLD:
            return None
        names = ", ".join(e.label or e.group for e, _ in pred.neighbours[:3])
        head = (
            f"profile predicted ({PREDICTOR_VERSION}, k={model.k}) from {len(pred.neighbours)} "
            f"similar measured functions ({names}): {_fmt_s(pred.profile.mean_s)} per item, "
            f"confidence {pred.confidence:.2f}; sample it for a measured answer"
        )
        return Found(pred.profile, PREDICTED, pred.confidence, [head])

    # --------------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """What the store knows about its own accuracy (JSON-safe); see ``stats``."""
        from amorsize_lsp.daemon import stats

        with self._lock:
            return stats.compute(self)


def _copy(d: dict[str, Any] | None) -> dict[str, Any] | None:
    if d is None:
        return None
    out = dict(d)
    out["reasons"] = list(d["reasons"])
    out["curve"] = [list(p) for p in d["curve"]]
    return out
