"""Moving measurements between machines: JSON lines with the machine that measured them.

One line per profile::

    {"amorsize_profile": 1, "uid": ..., "source": "sample", "noisy": false,
     "measured_at": 1.7e9, "callsite": {"path", "line", "function", "executor",
     "length", "complexity": {...}}, "machine": {"fingerprint": ..., "system":
     SystemProfile.to_dict()}, "profile": WorkloadProfile.to_dict()}

The ``uid`` makes import idempotent. A project may commit such a file as
``.amorsize/profiles.jsonl``; the advisor reads it read-only beside the store.
Times measured on another machine are rescaled by the ratio of the two machines'
calibrated per-item pool cost (a measure of how fast each runs Python).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from amorsize_lsp.analysis.model import EXECUTOR_KINDS
from amorsize_lsp.daemon.paths import project_profiles_path
from amorsize_lsp.daemon.store import COMPLEXITY_COLUMNS, Store
from amorsize_lsp.engine.system import Calibration
from amorsize_lsp.engine.workload import WorkloadProfile

log = logging.getLogger("amorsize.daemon")

FORMAT_VERSION = 1
#: Rescaling factors outside this range mean a broken calibration, not a faster machine.
MAX_RESCALE = 10.0
_TIME_FIELDS = (
    "mean_s",
    "p50_s",
    "p95_s",
    "max_s",
    "arg_dumps_s",
    "arg_loads_s",
    "result_dumps_s",
    "result_loads_s",
)
#: One canonical executor name per kind, to rebuild a call-site object.
EXECUTOR_FOR_KIND: dict[str, str] = {}
for _name, _kind in EXECUTOR_KINDS.items():
    EXECUTOR_FOR_KIND.setdefault(_kind, _name)


#: Profile fields that the cost model computes with: they must be finite numbers.
_NUMBER_FIELDS = tuple(
    f.name for f in fields(WorkloadProfile) if f.type in ("float", "int") and f.name != "n_items"
)


class SharingError(ValueError):
    """A profiles file cannot be imported; the message names the line and the problem."""


@dataclass(slots=True)
class SharedProfile:
    """One parsed line of a profiles file."""

    uid: str
    callsite: dict[str, Any]
    profile: WorkloadProfile
    fingerprint: str
    system: dict[str, Any]
    measured_at: float
    source: str
    noisy: bool

    @property
    def code_hash(self) -> str | None:
        cx = self.callsite.get("complexity")
        h = cx.get("code_hash") if isinstance(cx, dict) else None
        return h if isinstance(h, str) and h else None


# ------------------------------------------------------------------- rescaling


def calibration_of(system: dict[str, Any] | None) -> Calibration | None:
    """The measured calibration in a ``SystemProfile.to_dict()``, None if assumed or absent."""
    if not isinstance(system, dict) or not isinstance(system.get("calibration"), dict):
        return None
    try:
        cal = Calibration.from_dict(system["calibration"])
    except (TypeError, ValueError):
        return None
    return cal if cal.measured and cal.pool_item_s > 0 else None


def rescale_factor(source: Calibration | None, target: Calibration | None) -> float | None:
    """Multiply times measured on ``source`` by this to get ``target``'s; None if unknown."""
    if source is None or target is None or not target.measured:
        return None
    if source.pool_item_s <= 0 or target.pool_item_s <= 0:
        return None
    factor = target.pool_item_s / source.pool_item_s
    if not math.isfinite(factor):
        return None
    return min(MAX_RESCALE, max(1 / MAX_RESCALE, factor))


def rescale(profile: WorkloadProfile, factor: float) -> WorkloadProfile:
    """A copy of ``profile`` with every time multiplied by ``factor`` (sizes unchanged)."""
    d = profile.to_dict()
    for name in _TIME_FIELDS:
        d[name] = float(d.get(name) or 0.0) * factor
    return WorkloadProfile.from_dict(d)


# ---------------------------------------------------------------------- export


def callsite_object(
    site: dict[str, Any], function: dict[str, Any] | None, *, path: str | None, length: Any
) -> dict[str, Any]:
    """A call-site object (the analysis's JSON keys) rebuilt from a stored row.

    ``site`` is a profiles or outcomes row; ``function`` its functions row (plain
    column names), or None.
    """
    cx: dict[str, Any] | None = None
    if site.get("code_hash"):
        fn = function or {}
        cx = {"resolved": True, "reason": None, "code_hash": site["code_hash"]}
        for c in COMPLEXITY_COLUMNS:
            v = fn.get(c)
            cx[c] = bool(v) if c in ("recursive", "blocking_io") and v is not None else v
        try:
            io = json.loads(fn.get("io_calls") or "[]")
        except (TypeError, ValueError):
            io = []
        cx["io_calls"] = io if isinstance(io, list) else []
    return {
        "path": path,
        "line": site.get("line"),
        "function": site.get("function"),
        "executor": EXECUTOR_FOR_KIND.get(site.get("executor_kind") or ""),
        "length": length,
        "complexity": cx,
    }


def _relative(path: str | None, project: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(project).as_posix()
    except (ValueError, OSError):
        return None


def export_profiles(store: Store, out: TextIO, *, project: Path | None = None) -> int:
    """Write the store's profiles as JSON lines; returns how many.

    With ``project``, only profiles measured on files under it, with paths
    relative to it (what a project commits as ``.amorsize/profiles.jsonl``).
    """
    root = Path(project).resolve() if project is not None else None
    machines: dict[str, dict[str, Any]] = {}
    n = 0
    for row in store.profiles():
        path = row.get("path")
        if root is not None:
            path = _relative(path, root)
            if path is None:
                continue
        fp = row.get("machine") or ""
        if fp not in machines:
            machines[fp] = store.machine(fp) or {}
        line = {
            "amorsize_profile": FORMAT_VERSION,
            "uid": row["uid"],
            "source": row["source"],
            "noisy": bool(row.get("noisy")),
            "measured_at": row["measured_at"],
            "callsite": callsite_object(
                row,
                {c: row.get(f"f_{c}") for c in (*COMPLEXITY_COLUMNS, "io_calls")},
                path=path,
                length=row.get("length"),
            ),
            "machine": {"fingerprint": fp, "system": machines[fp]},
            "profile": json.loads(row["profile"]),
        }
        out.write(json.dumps(line, sort_keys=True) + "\n")
        n += 1
    return n


# ---------------------------------------------------------------------- import


def parse_line(text: str) -> SharedProfile:
    """One profiles-file line; raises ValueError saying what is wrong."""
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(d, dict) or d.get("amorsize_profile") != FORMAT_VERSION:
        raise ValueError(f"not an amorsize profile line (format {FORMAT_VERSION})")
    uid, callsite, machine, prof = (
        d.get("uid"),
        d.get("callsite"),
        d.get("machine"),
        d.get("profile"),
    )
    if not isinstance(uid, str) or not uid:
        raise ValueError("'uid' must be a non-empty string")
    if not isinstance(callsite, dict):
        raise ValueError("'callsite' must be an object")
    if not isinstance(machine, dict) or not isinstance(machine.get("fingerprint"), str):
        raise ValueError("'machine' must be an object with a 'fingerprint' string")
    if not isinstance(prof, dict):
        raise ValueError("'profile' must be an object")
    for name in _NUMBER_FIELDS:
        v = prof.get(name, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"'profile.{name}' must be a finite number")
    if prof.get("mean_s", -1) < 0:
        raise ValueError("'profile.mean_s' must be a number ≥ 0")
    n_items = prof.get("n_items")
    if n_items is not None and (isinstance(n_items, bool) or not isinstance(n_items, int)):
        raise ValueError("'profile.n_items' must be an integer or null")
    try:
        profile = WorkloadProfile.from_dict(prof)
    except TypeError as exc:
        raise ValueError(f"'profile' is not a workload profile: {exc}") from None
    cx = callsite.get("complexity")
    if cx is not None and not isinstance(cx, dict):
        raise ValueError("'callsite.complexity' must be an object or null")
    when = d.get("measured_at")
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise ValueError("'measured_at' must be a number (seconds since the epoch)")
    system = machine.get("system")
    return SharedProfile(
        uid=uid,
        callsite=callsite,
        profile=profile,
        fingerprint=machine["fingerprint"],
        system=system if isinstance(system, dict) else {},
        measured_at=float(when),
        source=str(d.get("source") or "import"),
        noisy=bool(d.get("noisy", False)),
    )


def import_profiles(store: Store, lines: Iterable[str]) -> int:
    """Add the profiles of a JSON-lines file to the store; returns rows added.

    Every line is checked before anything is written, so a malformed file adds
    nothing (``SharingError`` names the first bad line). Importing the same file
    twice adds nothing the second time.
    """
    parsed: list[SharedProfile] = []
    for i, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            parsed.append(parse_line(text))
        except ValueError as exc:
            raise SharingError(f"line {i}: {exc}; nothing was imported") from None
    before = store.counts()["profiles"]
    for fp, system in {sp.fingerprint: sp.system for sp in parsed}.items():
        store.add_machine_dict(fp, system, replace=False)
    store.add_profiles(
        dict(
            callsite=sp.callsite,
            profile=sp.profile,
            source="import",
            machine=sp.fingerprint,
            noisy=sp.noisy,
            measured_at=sp.measured_at,
            uid=sp.uid,
        )
        for sp in parsed
    )
    return max(0, store.counts()["profiles"] - before)


def load_project_profiles(root: Path) -> list[SharedProfile]:
    """The profiles a project committed (read-only); bad lines are skipped with one log line."""
    path = project_profiles_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the project profiles %s: %s; ignoring them", path, exc)
        return []
    out: list[SharedProfile] = []
    bad: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse_line(line))
        except ValueError as exc:
            bad.append(f"line {i}: {exc}")
    if bad:
        log.warning(
            "%s: skipped %d malformed line(s) (first: %s); fix or regenerate it with "
            "'amorsize-daemon export --project'",
            path,
            len(bad),
            bad[0],
        )
    return out


def file_stamp(root: Path) -> tuple[int, int] | None:
    """(mtime, size) of a project's profiles file, to notice when it changes."""
    try:
        st = os.stat(project_profiles_path(root))
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
