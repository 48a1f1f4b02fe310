"""How good are the engine's recommendations? Measured against grid search, in one run.

For every start method (fork, spawn, forkserver) and both process executors
(``multiprocessing.Pool`` and ``concurrent.futures.ProcessPoolExecutor``) it times,
with pool start-up and shutdown included in every figure (a rewritten call pays
them too):
- recommend()'s choice for that start method and executor (sampling excluded,
  reported in its own column: in the editor a call site is sampled once and the
  rewritten call runs many times);
- every configuration of a grid: workers 1..cores × chunksize, per executor;
- serial; the stdlib defaults (Pool.map's chunksize ⌈N/4w⌉ and
  ProcessPoolExecutor.map's chunksize 1, both with every core);
- joblib.Parallel with auto batching (cold: its reusable executor is shut down
  first; it uses its own loky processes whatever the start method).

Before each workload it measures the machine's parallel capacity now (the engine's
``measure_parallel_capacity``: other agents' load) and gives it to the cost model,
as the daemon may; the "blind" column is the advice without it (only measured apart
when it differs).

It prints one table per start method: rec/best (best = the fastest of that
executor's grid and serial), rec/serial, the defaults and joblib over the same best,
and the predicted speedup beside the measured one. Timings are medians of
interleaved repetitions; ratios under ~1.1 are ties on this shared machine.

    python benchmarks/recommendation_quality.py                 # everything
    python benchmarks/recommendation_quality.py --quick         # smoke run, seconds
    python benchmarks/recommendation_quality.py --start-methods spawn --executors ppe
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import random
import statistics
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from amorsize_lsp.analysis.model import PROCESS_EXECUTOR, PROCESS_POOL
from amorsize_lsp.engine import cost, profile_workload
from amorsize_lsp.engine.system import SystemProfile, measure_parallel_capacity

#: Configurations that would need more chunks than this are left out of the grid:
#: at the measured per-chunk cost they cannot beat the coarser ones.
MAX_CHUNKS = 4000
#: After the first round, a config slower than this multiple of the best so far is
#: not repeated (it cannot be the best); the recommendations and serial always are.
CUTOFF = 1.5
#: The PPE default (chunksize 1) runs on a prefix of this many items when N is larger,
#: and its time is scaled to N (marked "~").
PREFIX_ITEMS = 3000

ITERS_PER_US = 30.0  # replaced by calibrate_spin()

START_METHODS = ("fork", "spawn", "forkserver")
_HAS_FORK = "fork" in multiprocessing.get_all_start_methods()
#: Executors by their command-line name: (label, executor kind for recommend()).
EXECUTORS = {"pool": ("Pool", PROCESS_POOL), "ppe": ("PPE", PROCESS_EXECUTOR)}
#: The issue's targets, per start method and executor.
TARGET_GEOMEAN = 1.05
TARGET_WORST = 1.20
TARGET_VS_SERIAL = 1.05


# ------------------------------------------------------------------- work functions


def spin(k: int) -> int:
    s = 0
    for i in range(k):
        s += i
    return s


def square(x: int) -> int:
    return x * x + 1


def spin_big_result(k: int) -> bytes:
    spin(k)
    return bytes(100_000)


def crc_arg(b: bytes) -> int:
    return zlib.crc32(b)


def calibrate_spin() -> float:
    """Loop iterations per microsecond of ``spin`` on this machine (median of 5)."""
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        spin(200_000)
        rates.append(200_000 / ((time.perf_counter() - t0) * 1e6))
    return statistics.median(rates)


def us(x: float) -> int:
    return max(1, round(x * ITERS_PER_US))


# ------------------------------------------------------------------------ workloads


@dataclass
class Workload:
    name: str
    func: Callable[[Any], Any]
    make: Callable[[float], list[Any]]
    note: str = ""


def _hetero(scale: float) -> list[int]:
    rng = random.Random(4)
    n = int(2000 * scale)
    return [us(rng.expovariate(1 / 150)) for _ in range(max(n, 10))]


def _sorted_tail(scale: float) -> list[int]:
    n = max(int(2000 * scale), 20)
    heavy = n // 20
    return sorted([us(50)] * (n - heavy) + [us(2000)] * heavy)


def workloads(scale: float) -> list[Workload]:
    def n(x: float) -> int:
        return max(10, int(x * scale))

    return [
        Workload("1e6 x 0.3us", square, lambda s: list(range(n(1_000_000)))),
        Workload("1e5 x 1us", spin, lambda s: [us(1)] * n(100_000)),
        Workload("3e4 x 10us", spin, lambda s: [us(10)] * n(30_000)),
        Workload("4e3 x 100us", spin, lambda s: [us(100)] * n(4_000)),
        Workload("400 x 1ms", spin, lambda s: [us(1000)] * n(400)),
        Workload("20 x 20ms", spin, lambda s: [us(20_000)] * max(4, int(20 * s))),
        Workload("10 x 20ms", spin, lambda s: [us(20_000)] * 10),
        Workload("2e3 x 100KB result", spin_big_result, lambda s: [us(20)] * n(2000)),
        Workload(
            "2e3 x 100KB arg",
            crc_arg,
            lambda s: [bytes([i % 256]) * 100_000 for i in range(n(2000))],
        ),
        Workload("2e3 CV~1 150us", spin, _hetero),
        Workload("2e3 sorted heavy tail", spin, _sorted_tail),
        Workload("tiny job 10 x 10us", spin, lambda s: [us(10)] * 10),
    ]


# -------------------------------------------------------------------------- runners

#: The start method of the table being measured (set by main, read by the runners).
METHOD = "fork"


def ctx() -> Any:
    return multiprocessing.get_context(METHOD)


def run_serial(func: Callable[[Any], Any], items: list[Any], *_: Any) -> float:
    t0 = time.perf_counter()
    list(map(func, items))
    return time.perf_counter() - t0


def run_pool(func: Callable[[Any], Any], items: list[Any], w: int, c: int | None) -> float:
    t0 = time.perf_counter()
    with ctx().Pool(w) as pool:
        pool.map(func, items, chunksize=c)
    return time.perf_counter() - t0


def run_ppe(func: Callable[[Any], Any], items: list[Any], w: int, c: int) -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(w, mp_context=ctx()) as ex:
        for _ in ex.map(func, items, chunksize=c):
            pass
    return time.perf_counter() - t0


def run_ppe_default(func: Callable[[Any], Any], items: list[Any], w: int, _: Any) -> float:
    """chunksize 1; on a prefix scaled to N when N is large (a full run takes minutes)."""
    if len(items) <= PREFIX_ITEMS:
        return run_ppe(func, items, w, 1)
    return run_ppe(func, items[:PREFIX_ITEMS], w, 1) * len(items) / PREFIX_ITEMS


def run_joblib(func: Callable[[Any], Any], items: list[Any], w: int, _: Any) -> float:
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # cold, like every other configuration
    t0 = time.perf_counter()
    Parallel(n_jobs=w)(delayed(func)(x) for x in items)
    return time.perf_counter() - t0


RUNNERS = {"Pool": run_pool, "PPE": run_ppe}
DEFAULTS = {"Pool": (run_pool, None), "PPE": (run_ppe_default, 1)}


def chunk_grid(n: int, w: int) -> list[int]:
    top = max(1, math.ceil(n / w))
    out = {top, max(1, math.ceil(n / (2 * w))), max(1, math.ceil(n / (4 * w)))}
    out |= {max(1, math.ceil(n / (8 * w))), max(1, math.ceil(n / (16 * w)))}
    c = 1
    while c < top:
        out.add(c)
        c *= 4
    return sorted(x for x in out if math.ceil(n / x) <= MAX_CHUNKS)


@dataclass
class Config:
    label: str
    runner: Callable[..., float]
    workers: int
    chunksize: int | None
    times: list[float] = field(default_factory=list)
    approx: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.inf


@dataclass
class ExecResult:
    """One executor on one workload under one start method."""

    rec: str  # "w/c" or "serial"
    use_pool: bool
    blind: str  # the advice without the load measurement
    blind_over_best: float
    rec_over_best: float
    rec_over_serial: float
    default_over_best: float
    best_label: str
    best_s: float
    predicted: float
    measured: float


@dataclass
class Row:
    name: str
    n: int
    method: str
    capacity: float
    by_exec: dict[str, ExecResult]
    serial_s: float
    joblib_over_best: float | None
    sampling_s: float
    approx_ppe: bool


def bench_workload(
    wl: Workload,
    items: list[Any],
    prof: Any,
    sampling_s: float,
    reps: int,
    system: SystemProfile,
    executors: list[str],
    use_joblib: bool,
) -> Row:
    n = len(items)
    cores = system.usable_cores
    serial = Config("serial", run_serial, 1, None)
    grids: dict[str, list[Config]] = {}
    recs: dict[str, Any] = {}
    rec_cfgs: dict[str, Config] = {}
    blind_recs: dict[str, Any] = {}
    blind_cfgs: dict[str, Config] = {}
    defaults: dict[str, Config] = {}
    # The median of three probes: one probe can land in a burst of other load.
    capacity = statistics.median(measure_parallel_capacity(cores) for _ in range(3))
    loaded = dataclasses.replace(system, parallel_capacity=capacity)
    blind_system = dataclasses.replace(system, parallel_capacity=None)
    for name in executors:
        label, kind = EXECUTORS[name]
        rec = cost.recommend(prof, loaded, kind, start_method=METHOD)
        recs[label] = rec
        grids[label] = [
            Config(f"{label} w={w} c={c}", RUNNERS[label], w, c)
            for w in range(1, cores + 1)
            for c in chunk_grid(n, w)
        ]
        # Advice to run serial is judged by the serial measurement itself.
        rec_cfgs[label] = (
            Config(f"rec {label}", RUNNERS[label], rec.n_jobs, rec.chunksize)
            if rec.use_pool
            else serial
        )
        blind = cost.recommend(prof, blind_system, kind, start_method=METHOD)
        blind_recs[label] = blind
        if (blind.use_pool, blind.n_jobs, blind.chunksize) == (
            rec.use_pool,
            rec.n_jobs,
            rec.chunksize,
        ):
            blind_cfgs[label] = rec_cfgs[label]
        elif blind.use_pool:
            blind_cfgs[label] = Config(
                f"blind {label}", RUNNERS[label], blind.n_jobs, blind.chunksize
            )
        else:
            blind_cfgs[label] = serial
        runner, chunk = DEFAULTS[label]
        defaults[label] = Config(
            f"{label} default", runner, cores, chunk, approx=label == "PPE" and n > PREFIX_ITEMS
        )
    pool_recs = [c for c in rec_cfgs.values() if c is not serial]
    pool_recs += [c for c in blind_cfgs.values() if c is not serial and c not in rec_cfgs.values()]
    extra = [serial, *pool_recs, *defaults.values()]
    joblib_cfg = Config("joblib", run_joblib, cores, None) if use_joblib else None
    if joblib_cfg is not None:
        extra.append(joblib_cfg)
    grid_all = [c for g in grids.values() for c in g]
    everything = extra + grid_all
    always = (serial, *pool_recs)
    run_serial(wl.func, items)  # warm-up (allocator, caches): not timed
    for rep in range(reps):
        # Interleaved rounds: drift in the machine's load hits every config alike.
        best_so_far = min((c.median for c in everything if c.times), default=math.inf)
        for cfg in everything:
            if rep > 0 and cfg.median > CUTOFF * best_so_far and cfg not in always:
                continue
            cfg.times.append(cfg.runner(wl.func, items, cfg.workers, cfg.chunksize))

    by_exec: dict[str, ExecResult] = {}
    for label, grid in grids.items():
        best = min([*grid, serial], key=lambda c: c.median)
        rec, cfg = recs[label], rec_cfgs[label]
        blind = blind_recs[label]
        by_exec[label] = ExecResult(
            rec=f"{rec.n_jobs}/{rec.chunksize}" if rec.use_pool else "serial",
            use_pool=rec.use_pool,
            blind=f"{blind.n_jobs}/{blind.chunksize}" if blind.use_pool else "serial",
            blind_over_best=blind_cfgs[label].median / best.median,
            rec_over_best=cfg.median / best.median,
            rec_over_serial=cfg.median / serial.median,
            default_over_best=defaults[label].median / best.median,
            best_label=best.label,
            best_s=best.median,
            predicted=rec.expected_speedup,
            measured=serial.median / cfg.median,
        )
    overall = min([*grid_all, serial], key=lambda c: c.median)
    return Row(
        name=wl.name,
        n=n,
        method=METHOD,
        capacity=capacity,
        by_exec=by_exec,
        serial_s=serial.median,
        joblib_over_best=joblib_cfg.median / overall.median if joblib_cfg else None,
        sampling_s=sampling_s,
        approx_ppe=n > PREFIX_ITEMS,
    )


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else math.nan


def print_table(method: str, rows: list[Row], labels: list[str]) -> dict[str, Any]:
    """One start method's table and its summary against the targets."""
    use_joblib = any(r.joblib_over_best is not None for r in rows)
    head = f"{'workload':<22}{'N':>8}{'cap':>5}"
    for lb in labels:
        head += f" |{'rec ' + lb:>9}{'rec/best':>9}{'rec/ser':>8}{'dflt/best':>10}"
        head += f"{'pred':>6}{'meas':>6}{'blind':>9}{'bl/best':>8}{'best ' + lb:>17}"
    if use_joblib:
        head += f" |{'joblib/best':>12}"
    print(f"\n== start method {method} ==")
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r.name:<22}{r.n:>8}{r.capacity:>5.2f}"
        for lb in labels:
            e = r.by_exec[lb]
            mark = "~" if lb == "PPE" and r.approx_ppe else ""
            line += f" |{e.rec:>9}{e.rec_over_best:>9.2f}{e.rec_over_serial:>8.2f}"
            line += f"{mark + format(e.default_over_best, '.2f'):>10}"
            line += f"{e.predicted:>6.2f}{e.measured:>6.2f}{e.blind:>9}{e.blind_over_best:>8.2f}"
            line += f"{e.best_label:>17}"
        if use_joblib:
            line += f" |{r.joblib_over_best:>12.2f}"
        print(line)
    summary: dict[str, Any] = {"method": method}
    for lb in labels:
        rb = [r.by_exec[lb].rec_over_best for r in rows]
        vs = [r.by_exec[lb].rec_over_serial for r in rows if r.by_exec[lb].use_pool]
        dflt = [r.by_exec[lb].default_over_best for r in rows]
        blind = [r.by_exec[lb].blind_over_best for r in rows]
        g, worst = geomean(rb), max(rb)
        worst_serial = max(vs) if vs else math.nan
        ok = g <= TARGET_GEOMEAN and worst <= TARGET_WORST
        ok_serial = not vs or worst_serial <= TARGET_VS_SERIAL
        summary[lb] = {
            "geomean_rec_over_best": g,
            "max_rec_over_best": worst,
            "max_rec_over_serial_when_pool": worst_serial,
            "pools_recommended": len(vs),
            "geomean_default_over_best": geomean(dflt),
            "geomean_blind_over_best": geomean(blind),
            "max_blind_over_best": max(blind),
            "met": ok and ok_serial,
        }
        print(
            f"{method:>10} {lb:<4} rec/best geomean {g:.3f} (target ≤ {TARGET_GEOMEAN}), "
            f"max {worst:.3f} (≤ {TARGET_WORST}); rec/serial max {worst_serial:.3f} over "
            f"{len(vs)} pools advised (≤ {TARGET_VS_SERIAL}) -> "
            f"{'met' if ok and ok_serial else 'MISSED'}; "
            f"{lb} default/best geomean {geomean(dflt):.2f}; "
            f"load-blind rec/best geomean {geomean(blind):.3f}, max {max(blind):.3f}"
        )
    if use_joblib:
        jb = [r.joblib_over_best for r in rows if r.joblib_over_best is not None]
        summary["geomean_joblib_over_best"] = geomean(jb)
        print(f"{method:>10} joblib/best(any executor) geomean {geomean(jb):.2f}")
    summary["max_sampling_s"] = max(r.sampling_s for r in rows)
    return summary


def main(argv: list[str] | None = None) -> int:
    global ITERS_PER_US, METHOD
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: few workloads, 1 rep")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (median); default 5")
    ap.add_argument("--only", action="append", default=[], help="workload name substring")
    ap.add_argument(
        "--start-methods",
        default=",".join(START_METHODS),
        help="comma-separated start methods to measure (default: all available)",
    )
    ap.add_argument(
        "--executors", default="pool,ppe", help="comma-separated: pool, ppe (default both)"
    )
    ap.add_argument("--no-joblib", action="store_true", help="skip joblib")
    ap.add_argument("--json", help="write rows and summaries to this file")
    ap.add_argument("--cached", action="store_true", help="reuse the cached calibration")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+

    available = multiprocessing.get_all_start_methods()
    methods = [m.strip() for m in args.start_methods.split(",") if m.strip()]
    for m in methods:
        if m not in START_METHODS:
            ap.error(f"unknown start method {m!r}; expected some of {', '.join(START_METHODS)}")
    skipped = [m for m in methods if m not in available]
    for m in skipped:
        print(f"start method {m} is not available on this platform: skipped")
    methods = [m for m in methods if m in available]
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    for e in executors:
        if e not in EXECUTORS:
            ap.error(f"unknown executor {e!r}; expected some of {', '.join(EXECUTORS)}")
    labels = [EXECUTORS[e][0] for e in executors]

    t0 = time.perf_counter()
    ITERS_PER_US = calibrate_spin()
    system = SystemProfile.detect(refresh=not args.cached)
    cal = system.calibration
    print(
        f"usable cores {system.usable_cores}, default start method {system.start_method}, "
        f"calibration {'measured' if cal.measured else 'ASSUMED'} in {cal.duration_s:.2f} s: "
        f"Pool chunk {cal.pool_chunk_s * 1e6:.0f} µs, "
        f"PPE chunk {cal.executor_chunk_s * 1e6:.0f} µs, "
        f"IPC {cal.ipc_s_per_byte * 1e9:.2f} ns/byte"
    )
    for m in methods:
        print(
            f"  start-up {m}: Pool {cal.startup_s.get(m, math.nan) * 1e3:.1f} ms "
            f"+ {cal.startup_per_worker_s.get(m, math.nan) * 1e3:.1f} ms/worker, "
            f"PPE {cal.executor_startup_s.get(m, math.nan) * 1e3:.1f} ms "
            f"+ {cal.executor_startup_per_worker_s.get(m, math.nan) * 1e3:.1f} ms/worker"
        )
    cap0 = measure_parallel_capacity(system.usable_cores)
    print(f"parallel capacity now: {cap0:.2f} of {system.usable_cores} cores (other load)")
    scale = 0.1 if args.quick else 1.0
    reps = args.reps or (1 if args.quick else 5)
    wls = workloads(scale)
    if args.quick and not args.only:
        wls = [
            w for w in wls if w.name in ("400 x 1ms", "2e3 x 100KB result", "tiny job 10 x 10us")
        ]
    if args.only:
        wls = [w for w in wls if any(o in w.name for o in args.only)]
    use_joblib = not args.no_joblib
    if use_joblib:
        try:
            import joblib  # noqa: F401
        except ImportError:
            print("joblib not installed: its column is skipped")
            use_joblib = False

    # Items and profiles once per workload: every start method judges the same sample.
    prepared = []
    for wl in wls:
        items = wl.make(scale)
        prof, _, sampling_s = profile_workload(wl.func, items)
        prepared.append((wl, items, prof, sampling_s))
    all_rows: list[Row] = []
    summaries: list[dict[str, Any]] = []
    for method in methods:
        METHOD = method
        if method == "forkserver":
            run_pool(square, [1], 1, 1)  # the server starts once per process: not timed
        rows = []
        for wl, items, prof, sampling_s in prepared:
            t = time.perf_counter()
            rows.append(
                bench_workload(wl, items, prof, sampling_s, reps, system, executors, use_joblib)
            )
            print(
                f"  [{method}] {wl.name}: {time.perf_counter() - t:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        summary = print_table(method, rows, labels)
        summary["parallel_capacity_after"] = measure_parallel_capacity(system.usable_cores)
        print(
            f"{method:>10} parallel capacity after: "
            f"{summary['parallel_capacity_after']:.2f} of {system.usable_cores} cores"
        )
        all_rows.extend(rows)
        summaries.append(summary)
        if args.json:
            _write_json(args.json, all_rows, summaries, cal.to_dict(), cap0)
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.0f} s")
    return 0


def _write_json(
    path: str, rows: list[Row], summaries: list[dict[str, Any]], cal: dict[str, Any], cap0: float
) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(
            {
                "rows": [
                    {**r.__dict__, "by_exec": {k: v.__dict__ for k, v in r.by_exec.items()}}
                    for r in rows
                ],
                "summaries": summaries,
                "calibration": cal,
                "parallel_capacity_start": cap0,
            },
            fh,
            indent=1,
        )


if __name__ == "__main__":
    sys.exit(main())
