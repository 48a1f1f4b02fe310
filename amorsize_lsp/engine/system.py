"""What this machine can really run: usable cores, memory, start method, measured costs.

``usable_cores()`` is cheap (files and syscalls only) because the lint rules call it
for every file. ``SystemProfile.detect()`` adds the calibrated costs, which are
measured once per machine fingerprint in a clean subprocess
(``python -m amorsize_lsp.engine.calibrate``) and cached as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Bump when the calibration procedure changes, so old caches are ignored.
#: 2: start-up of ProcessPoolExecutor measured apart from Pool's, per start method.
CALIBRATION_VERSION = 2

START_METHODS = ("fork", "spawn", "forkserver")

DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PROC_CGROUP = "/proc/self/cgroup"

_UNLIMITED_MEMORY = 1 << 60


# --------------------------------------------------------------------------- cores


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """The (v2 path, v1 cpu-controller path) of this process, from /proc/self/cgroup."""
    text = _read_text(proc_cgroup)
    if not text:
        return None, None
    v2: str | None = None
    v1: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(root: Path, rel: str | None) -> list[Path]:
    """``root/rel`` and each parent up to ``root``: a limit anywhere up the tree applies."""
    out: list[Path] = []
    if rel:
        p = root / rel.lstrip("/")
        while True:
            out.append(p)
            if p == root or root not in p.parents:
                break
            p = p.parent
    if root not in out:
        out.append(root)
    return out


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` ("quota period" or "max period") -> CPUs, or None if unlimited."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def cgroup_cpu_limit(
    cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT,
    proc_cgroup: str | os.PathLike[str] | None = DEFAULT_PROC_CGROUP,
) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (may be fractional), None if none.

    Reads cgroup v2 ``cpu.max`` along the cgroup's path and its ancestors, then v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; the smallest limit wins.
    ``proc_cgroup=None`` means "look only at the files directly under the root".
    """
    root = Path(cgroup_root)
    v2, v1 = _cgroup_paths(Path(proc_cgroup)) if proc_cgroup is not None else (None, None)
    limits: list[float] = []
    for d in _ancestors(root, v2):
        text = _read_text(d / "cpu.max")
        if text is not None:
            lim = parse_cpu_max(text)
            if lim is not None:
                limits.append(lim)
    v1_roots = [root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
    for base in [*v1_roots, root]:
        for d in _ancestors(base, v1):
            quota = _read_text(d / "cpu.cfs_quota_us")
            period = _read_text(d / "cpu.cfs_period_us")
            if quota is None or period is None:
                continue
            try:
                q, p = int(quota), int(period)
            except ValueError:
                continue
            if q > 0 and p > 0:
                limits.append(q / p)
    return min(limits) if limits else None


def usable_cores(
    cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT,
    proc_cgroup: str | os.PathLike[str] | None = DEFAULT_PROC_CGROUP,
) -> int:
    """The cores this process may really use: affinity, cgroup quota, process_cpu_count.

    Cheap: no calibration, no subprocess. A fractional quota rounds up (1.5 CPUs
    still lets two workers make progress). Never less than 1.
    """
    counts: list[int] = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        with contextlib.suppress(OSError):
            counts.append(len(os.sched_getaffinity(0)))
    if sys.version_info >= (3, 13):
        pcc = os.process_cpu_count()
        if pcc:
            counts.append(pcc)
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        counts.append(math.ceil(quota))
    return max(1, min(counts))


# -------------------------------------------------------------------------- memory


def cgroup_memory_available(
    cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT,
    proc_cgroup: str | os.PathLike[str] | None = DEFAULT_PROC_CGROUP,
) -> int | None:
    """Bytes left under this cgroup's memory limit (limit minus usage), None if unlimited."""
    root = Path(cgroup_root)
    v2, _ = _cgroup_paths(Path(proc_cgroup)) if proc_cgroup is not None else (None, None)
    best: int | None = None
    for d in _ancestors(root, v2):
        lim = _read_text(d / "memory.max")
        cur = _read_text(d / "memory.current")
        if lim is None or lim == "max":
            continue
        try:
            left = int(lim) - int(cur or 0)
        except ValueError:
            continue
        best = left if best is None else min(best, left)
    # cgroup v1: the memory controller's own path.
    v1_path: str | None = None
    if proc_cgroup is not None:
        text = _read_text(Path(proc_cgroup)) or ""
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and "memory" in parts[1].split(","):
                v1_path = parts[2]
    for d in _ancestors(root / "memory", v1_path):
        lim = _read_text(d / "memory.limit_in_bytes")
        cur = _read_text(d / "memory.usage_in_bytes")
        if lim is None:
            continue
        try:
            li = int(lim)
            left = li - int(cur or 0)
        except ValueError:
            continue
        if li >= _UNLIMITED_MEMORY:
            continue
        best = left if best is None else min(best, left)
    return max(0, best) if best is not None else None


def available_memory_bytes() -> int:
    """Memory a pool may still use: the cgroup's headroom when limited, else psutil's."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    cg = cgroup_memory_available()
    return min(avail, cg) if cg is not None else avail


# ------------------------------------------------------------------ start method


def platform_default_start_method(
    platform_name: str | None = None, version: tuple[int, int] | None = None
) -> str:
    """The start method Python picks when the program sets none, on this platform and version.

    spawn on macOS (since 3.8) and Windows, forkserver on other POSIX systems from
    Python 3.14, fork before.
    """
    plat = sys.platform if platform_name is None else platform_name
    ver = tuple(sys.version_info[:2]) if version is None else tuple(version[:2])
    if plat in ("win32", "darwin"):
        return "spawn"
    if ver >= (3, 14):
        return "forkserver"
    return "fork"


def default_start_method() -> str:
    """The start method a new Pool would use here, read without setting any global.

    ``get_start_method(allow_none=True)`` returns the user's choice when one was made;
    otherwise the platform default (``platform_default_start_method``).
    """
    import multiprocessing

    chosen = multiprocessing.get_start_method(allow_none=True)
    if chosen:
        return chosen
    return platform_default_start_method()


# ------------------------------------------------------------------ current load


def _burn(n: int) -> int:
    """CPU work with no I/O and no allocation: the probe's unit of work."""
    s = 0
    for i in range(n):
        s += i
    return s


def measure_parallel_capacity(cores: int | None = None, seconds: float = 0.1) -> float:
    """How many cores of CPU work a pool gets right now: C × t(1 job) / t(C jobs at once).

    It equals the usable core count C on an idle machine. Other processes lower
    it, and on a machine whose scheduler shares CPU between users or containers
    (not between processes) it can fall to about 1 however many workers run. Costs
    about 3 × ``seconds`` plus a fork-pool start-up; noisy, so callers may repeat it.
    """
    import multiprocessing

    c = cores or usable_cores()
    if c < 2:
        return 1.0
    t0 = time.perf_counter()
    _burn(50_000)
    per_iter = max((time.perf_counter() - t0) / 50_000, 1e-9)
    n = max(1000, round(seconds / per_iter))

    def alone() -> float:
        t = time.perf_counter()
        _burn(n)
        return time.perf_counter() - t

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        with ctx.Pool(c) as pool:
            pool.map(_burn, [1] * c, chunksize=1)  # workers started: not timed
            before = alone()
            t = time.perf_counter()
            pool.map(_burn, [n] * c, chunksize=1)
            together = time.perf_counter() - t
            after = alone()
    # The single job is timed before and after, so that a burst of other load
    # during one of them does not decide alone.
    return min(float(c), c * (before + after) / 2 / max(together, 1e-9))


def gil_enabled() -> bool:
    """False only on a free-threaded build running with the GIL disabled."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


# ------------------------------------------------------------------- calibration


@dataclass(slots=True)
class Calibration:
    """Costs measured on this machine (or assumed, when ``measured`` is False).

    Times are seconds. ``startup_s[m]`` is start, one trivial task and shutdown of a
    one-worker ``Pool`` under start method ``m``; each extra worker adds
    ``startup_per_worker_s[m]``. ``executor_startup_s`` and
    ``executor_startup_per_worker_s`` are the same for ``ProcessPoolExecutor``
    (it starts workers on demand under spawn and forkserver, all at once under fork).
    """

    startup_s: dict[str, float] = field(
        default_factory=lambda: {"fork": 0.0075, "spawn": 0.100, "forkserver": 0.090}
    )
    startup_per_worker_s: dict[str, float] = field(
        default_factory=lambda: {"fork": 0.002, "spawn": 0.010, "forkserver": 0.010}
    )
    executor_startup_s: dict[str, float] = field(
        default_factory=lambda: {"fork": 0.0075, "spawn": 0.110, "forkserver": 0.090}
    )
    executor_startup_per_worker_s: dict[str, float] = field(
        default_factory=lambda: {"fork": 0.002, "spawn": 0.010, "forkserver": 0.010}
    )
    #: Parent-side cost per chunk and per item of ``Pool.map`` (excluding user pickling).
    pool_chunk_s: float = 40e-6
    pool_item_s: float = 2e-6
    #: The same for ``ProcessPoolExecutor.map`` (a future and a work item per chunk).
    executor_chunk_s: float = 95e-6
    executor_item_s: float = 2e-6
    #: Thread pools: start-up per thread, and per-chunk hand-off.
    thread_startup_s: float = 0.0002
    thread_chunk_s: float = 15e-6
    #: Pickle throughput for a large bytes payload (bytes per second).
    dumps_bytes_per_s: float = 2e9
    loads_bytes_per_s: float = 2e9
    #: Pipe transfer cost per byte moved between parent and worker, beyond pickling.
    ipc_s_per_byte: float = 0.35e-9
    measured: bool = False
    #: Wall time the calibration took, seconds.
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def _cpu_model() -> str:
    text = _read_text(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_fingerprint(usable: int, memory_total: int) -> str:
    """A stable id for "the same machine": CPU model, usable cores, memory, OS, Python."""
    parts = [
        f"v{CALIBRATION_VERSION}",
        _cpu_model(),
        str(usable),
        str(round(memory_total / 2**30)),
        platform.system(),
        platform.release(),
        sys.implementation.name,
        platform.python_version(),
        "gil" if gil_enabled() else "nogil",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where the calibration JSON lives: ``$AMORSIZE_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("AMORSIZE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("amorsize-lsp"))


def run_calibration(python: str | None = None, timeout_s: float = 20.0) -> Calibration:
    """Measure this machine's costs in a clean subprocess; assumed values on failure.

    A subprocess, because spawn and forkserver children re-import the parent's
    ``__main__``: calibrating inside a user's script would re-run it.
    """
    cmd = [python or sys.executable, "-m", "amorsize_lsp.engine.calibrate"]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        return Calibration.from_dict(data)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, TypeError):
        return Calibration()


@dataclass(slots=True)
class SystemProfile:
    """Everything about the machine that the cost model needs."""

    logical_cores: int
    usable_cores: int
    physical_cores: int
    memory_available_bytes: int
    memory_total_bytes: int
    start_method: str
    gil_enabled: bool = True
    python_version: str = field(default_factory=platform.python_version)
    fingerprint: str = ""
    calibration: Calibration = field(default_factory=Calibration)
    #: Cores of CPU work a pool gets now (``measure_parallel_capacity``); None means
    #: every usable core. It changes with other processes' load, so it is measured
    #: only on request and never cached.
    parallel_capacity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibration"] = self.calibration.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SystemProfile:
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in names}
        kw["calibration"] = Calibration.from_dict(d.get("calibration") or {})
        return cls(**kw)

    @classmethod
    def synthetic(cls, usable: int = 2, **kw: Any) -> SystemProfile:
        """A profile with assumed costs, for tests and for when nothing can be measured."""
        base: dict[str, Any] = dict(
            logical_cores=usable,
            usable_cores=usable,
            physical_cores=usable,
            memory_available_bytes=8 * 2**30,
            memory_total_bytes=16 * 2**30,
            start_method="fork",
        )
        base.update(kw)
        return cls(**base)

    @classmethod
    def detect(
        cls, calibrate: bool = True, refresh: bool = False, *, measure_load: bool = False
    ) -> SystemProfile:
        """This machine's profile; calibrated costs come from the cache when present.

        ``calibrate=False`` keeps assumed costs (no subprocess); ``refresh=True``
        re-measures even when a cached calibration exists. ``measure_load=True``
        also measures the parallel capacity left by other processes now (~0.3 s).
        """
        import psutil

        vm = psutil.virtual_memory()
        usable = usable_cores()
        total = int(vm.total)
        fp = machine_fingerprint(usable, total)
        profile = cls(
            logical_cores=os.cpu_count() or 1,
            usable_cores=usable,
            physical_cores=psutil.cpu_count(logical=False) or usable,
            memory_available_bytes=available_memory_bytes(),
            memory_total_bytes=total,
            start_method=default_start_method(),
            gil_enabled=gil_enabled(),
            fingerprint=fp,
        )
        if calibrate:
            profile.calibration = cached_calibration(fp, refresh=refresh)
        if measure_load:
            profile.parallel_capacity = measure_parallel_capacity(usable)
        return profile


_LOCK = threading.Lock()
_MEMO: dict[tuple[str, str], Calibration] = {}


def cached_calibration(fingerprint: str, refresh: bool = False) -> Calibration:
    """Load the calibration for ``fingerprint`` from the cache, measuring it if missing.

    An unreadable or corrupt cache file is replaced; an unwritable cache directory
    only costs a re-measurement next time.
    """
    directory = cache_dir()
    key = (str(directory), fingerprint)
    path = directory / f"calibration-{fingerprint}.json"
    with _LOCK:
        if not refresh and key in _MEMO:
            return _MEMO[key]
        if not refresh:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("version") == CALIBRATION_VERSION:
                    cal = Calibration.from_dict(data["calibration"])
                    _MEMO[key] = cal
                    return cal
            except (OSError, ValueError, KeyError, TypeError):
                pass
        cal = run_calibration()
        if cal.measured:
            _write_atomic(path, {"version": CALIBRATION_VERSION, "calibration": cal.to_dict()})
        _MEMO[key] = cal
        return cal


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".calibration-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass
