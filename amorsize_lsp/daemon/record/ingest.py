"""Turn the hook's JSON lines into stored profiles and outcomes.

The hook only saw a running program: a file, a line, counts and times. Here each
call is matched to its statically analysed call site (for the code hash and the
complexity that the predictor learns from), its per-item costs are reconstructed
from the call's totals, and the pair is stored as a ``record`` profile plus an
outcome that keeps what the predictor expected beside what really happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.analysis.model import EXECUTOR_KINDS, PROCESS_POOL, AnalysisError
from amorsize_lsp.daemon.advisor import validate_callsite
from amorsize_lsp.daemon.knn import PREDICTOR_VERSION
from amorsize_lsp.engine import cost
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

#: Directory that ``record`` puts first on PYTHONPATH.
HOOK_DIR = Path(__file__).resolve().parent / "hook"
#: Above this share of CPU in the workers' busy time, the function is CPU-bound and
#: its item time is the workers' CPU time per item (excludes waiting and overhead).
CPU_BOUND = 0.8


def read_entries(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The well-formed entries of a record file (a torn last line is skipped)."""
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("v") == 1:
            out.append(entry)
    return out


class _Sites:
    """Call sites per file, analysed once per file."""

    def __init__(self) -> None:
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def at(self, path: str, line: int, method: str | None) -> dict[str, Any] | None:
        if path not in self._cache:
            try:
                data = Path(path).read_bytes()
                sites = [s.to_json() for s in analyze_source(data, path).callsites]
            except (OSError, AnalysisError):
                sites = []
            self._cache[path] = sites
        hits = [s for s in self._cache[path] if s["line"] <= line <= s["end_line"]]
        if not hits:
            return None
        same = [s for s in hits if s["method"] == method]
        return max(same or hits, key=lambda s: (s["line"], s["column"]))


def _fallback_callsite(entry: dict[str, Any], path: str) -> dict[str, Any]:
    """What is known without the analysis: the runtime's view of the call."""
    line = int(entry.get("line") or 0)
    return {
        "path": path,
        "line": line,
        "column": None,
        "end_line": line,
        "end_column": None,
        "method": entry.get("method"),
        "executor": entry.get("executor"),
        "start_method": entry.get("start_method"),
        "function": entry.get("function"),
        "function_kind": "unknown",
        "iterable": None,
        "length": None,
        "chunksize": None,
        "workers": None,
        "in_loop": None,
        "main_guarded": None,
        "closed": None,
        "complexity": None,
    }


def profile_from_entry(entry: dict[str, Any]) -> WorkloadProfile | None:
    """Per-item costs reconstructed from one recorded call's totals (None if unusable)."""
    n = entry.get("n_items")
    wall = entry.get("wall_s")
    workers = entry.get("workers") or 1
    if not isinstance(n, int) or n <= 0 or not isinstance(wall, int | float) or wall <= 0:
        return None
    busy = wall * min(workers, n)  # worker-seconds available during the call
    cpu = entry.get("worker_cpu_s")
    notes = [f"recorded run: {n} items on {workers} workers in {wall:.3g} s"]
    if isinstance(cpu, int | float) and cpu > 0:
        cpu_fraction = max(0.0, min(1.0, cpu / busy))
        if cpu_fraction >= CPU_BOUND:
            mean = cpu / n
            notes.append("per-item time is the workers' CPU time over the items")
        else:
            mean = busy / n
            notes.append("per-item time is the workers' busy wall time over the items")
    else:
        cpu_fraction = 1.0
        mean = busy / n
        notes.append("per-item time is reconstructed from the call's wall time")
    arg_dumps = float(entry.get("arg_dumps_s") or 0.0)
    res_dumps = float(entry.get("result_dumps_s") or 0.0)
    return WorkloadProfile(
        n_items=n,
        mean_s=mean,
        cv=0.0,
        p50_s=mean,
        p95_s=mean,
        max_s=mean,
        arg_bytes=float(entry.get("arg_bytes") or 0.0),
        result_bytes=float(entry.get("result_bytes") or 0.0),
        arg_dumps_s=arg_dumps,
        arg_loads_s=arg_dumps,
        result_dumps_s=res_dumps,
        result_loads_s=res_dumps,
        cpu_fraction=cpu_fraction,
        sample_size=n,
        source="measured",
        notes=notes,
    )


def calls_from_entries(entries: list[dict[str, Any]], cwd: str) -> list[dict[str, Any]]:
    """The ``record`` RPC's ``calls``: a call site, a profile and the configuration each."""
    sites = _Sites()
    calls = []
    for entry in entries:
        prof = profile_from_entry(entry)
        chunksize = entry.get("chunksize")
        workers = entry.get("workers")
        if prof is None or not isinstance(workers, int) or workers < 1:
            continue
        path = os.path.normpath(os.path.join(cwd, str(entry.get("file") or "")))
        line = int(entry.get("line") or 0)
        site = sites.at(path, line, entry.get("method")) or _fallback_callsite(entry, path)
        calls.append(
            {
                "callsite": site,
                "profile": prof.to_dict(),
                "n_jobs": workers,
                "chunksize": max(1, int(chunksize or 1)),
                "n_items": prof.n_items,
                "wall_s": float(entry["wall_s"]),
                "measured_at": entry.get("t"),
            }
        )
    return calls


def prediction_for(advisor: Any, system: SystemProfile, call: dict[str, Any]) -> dict[str, Any]:
    """What the predictor expected for the configuration that ran, before seeing this run.

    The advisor's profile for the call site (measured, shared or predicted) is
    priced by the cost model at the configuration the program really used; the
    advisor's own recommendation is kept beside it. Values are None when the
    advisor knew nothing about this call site.
    """
    out: dict[str, Any] = {
        "predicted_wall_s": None,
        "predicted_item_s": None,
        "recommended_n_jobs": None,
        "recommended_chunksize": None,
    }
    callsite = call["callsite"]
    kind = EXECUTOR_KINDS.get(callsite.get("executor") or "")
    try:
        found = advisor.find_profile(validate_callsite(callsite), kind)
        rec = advisor.recommend(callsite)
    except ValueError:
        return out
    if found is not None:
        prof = found.profile
        out["predicted_item_s"] = prof.mean_s
        p = cost.predict(
            prof,
            system,
            kind or PROCESS_POOL,
            call["n_jobs"],
            call["chunksize"],
            call.get("n_items") or prof.n_items,
        )
        out["predicted_wall_s"] = p.total_s
    if rec:
        out["recommended_n_jobs"] = rec.get("n_jobs")
        out["recommended_chunksize"] = rec.get("chunksize")
    return out


def store_recorded(
    store: Any, advisor: Any, system: SystemProfile, calls: list[dict[str, Any]]
) -> list[int]:
    """Store recorded calls: a profile each (source ``record``) and an outcome each.

    The outcome keeps what the predictor said for the configuration that ran,
    before this run's profile is added, so that ``stats`` can judge it.
    """
    ids: list[int] = []
    for call in calls:
        expected = prediction_for(advisor, system, call)
        profile = call["profile"]
        if isinstance(profile, dict):
            profile = WorkloadProfile.from_dict(profile)
        ids.append(
            store.add_profile(
                callsite=call["callsite"],
                profile=profile,
                source="record",
                machine=system.fingerprint,
                measured_at=call.get("measured_at"),
            )
        )
        store.add_outcome(
            callsite=call["callsite"],
            n_jobs=call["n_jobs"],
            chunksize=call["chunksize"],
            n_items=call["n_items"],
            wall_s=call["wall_s"],
            predictor_version=PREDICTOR_VERSION,
            machine=system.fingerprint,
            item_s=profile.mean_s,
            measured_at=call.get("measured_at"),
            **expected,
        )
        advisor.profile_added()
    return ids
