"""What ``amorsize-daemon record`` costs a program: the same workloads with and without it.

The workloads are in the spirit of the engine's benchmark (``recommendation_quality.py``):
spinning functions of 0.1, 1 and 10 ms per item, tiny items in big chunks, large
results, through ``Pool.map``, ``imap``, ``imap_unordered``, ``starmap`` and
``ProcessPoolExecutor.map``. Each round runs the program twice as fresh processes,
plain and with the recording hook (alternating which goes first), and the
program times each of its pool calls itself. Reported per workload: the median
over rounds of the time with the hook over the time without it. Separately, a
few whole runs of ``python prog.py`` against ``amorsize-daemon record -- python
prog.py`` (no daemon: the store file is written) show the cost end to end,
start-up and storing included.

    python benchmarks/record_overhead.py            # 7 rounds (~2 min on 2 cores)
    python benchmarks/record_overhead.py --quick    # 2 rounds

Target (issue 7): overhead under 5% on these workloads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amorsize_lsp.daemon.record.ingest import HOOK_DIR

PROGRAM = r"""
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool

ITERS_PER_MS = int(sys.argv[1])


def spin(k):
    s = 0
    for i in range(k):
        s += i
    return s


def square(x):
    return x * x + 1


def big_result(k):
    spin(k)
    return bytes(100_000)


def add_spin(a, k):
    return a + spin(k)


def timed(name, fn, out):
    t0 = time.perf_counter()
    fn()
    out[name] = time.perf_counter() - t0


def workloads(pool, ex, ms):
    return {
        "map 0.1 ms x 4000": lambda: pool.map(spin, [ms // 10] * 4000),
        "map 1 ms x 400": lambda: pool.map(spin, [ms] * 400),
        "map 10 ms x 40": lambda: pool.map(spin, [10 * ms] * 40, chunksize=1),
        "map tiny x 200000": lambda: pool.map(square, range(200_000), chunksize=5000),
        "imap 1 ms x 400": lambda: list(pool.imap(spin, [ms] * 400, chunksize=8)),
        "imap_unordered 1 ms x 400": lambda: list(pool.imap_unordered(spin, iter([ms] * 400))),
        "starmap 1 ms x 400": lambda: pool.starmap(add_spin, [(i, ms) for i in range(400)]),
        "map 100 kB results x 200": lambda: pool.map(big_result, [ms] * 200),
        "executor 1 ms x 400": lambda: list(ex.map(spin, [ms] * 400, chunksize=20)),
    }


def patch_switch(hook_file, record_file):
    # Load the recording hook here; return a function that turns its patches on or off.
    import concurrent.futures.process as cfp
    import importlib.util
    import multiprocessing.pool as mpp
    import os

    names = ["map", "starmap", "imap", "imap_unordered"]
    plain = {n: getattr(mpp.Pool, n) for n in names}
    plain_ex = cfp.ProcessPoolExecutor.map
    os.environ["AMORSIZE_RECORD_FILE"] = record_file
    spec = importlib.util.spec_from_file_location("amorsize_record_hook", hook_file)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    patched = {n: getattr(mpp.Pool, n) for n in names}
    patched_ex = cfp.ProcessPoolExecutor.map
    assert patched["map"] is not plain["map"] and patched_ex is not plain_ex

    def switch(on):
        for n in names:
            setattr(mpp.Pool, n, (patched if on else plain)[n])
        cfp.ProcessPoolExecutor.map = patched_ex if on else plain_ex

    return switch, hook


def bookkeeping_us(hook, pool, ms, n=300):
    # The hook's own work for one call (caller, counts, /proc CPU of the workers,
    # pickled sizes of a few items, one JSON line), without the map itself.
    data = [ms] * 400
    results = [spin(ms)] * 400
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call = hook._pool_call(pool, "map", spin, data, None)
        call.results = hook._spread(results, len(results))
        call.finish()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e6 * times[len(times) // 2]


if __name__ == "__main__":
    ms = ITERS_PER_MS
    out = {}
    with Pool(2) as pool, ProcessPoolExecutor(2) as ex:
        if len(sys.argv) > 2:  # interleaved: rounds, hook file, record file
            rounds, hook_file, record_file = int(sys.argv[2]), sys.argv[3], sys.argv[4]
            switch, hook = patch_switch(hook_file, record_file)
            out["bookkeeping_us"] = bookkeeping_us(hook, pool, ms)
            for r in range(rounds):
                for name, fn in workloads(pool, ex, ms).items():
                    for on in ((False, True) if r % 2 == 0 else (True, False)):
                        switch(on)
                        key = "recorded" if on else "plain"
                        t0 = time.perf_counter()
                        fn()
                        out.setdefault(key, {}).setdefault(name, []).append(
                            time.perf_counter() - t0
                        )
            switch(False)
        else:
            for name, fn in workloads(pool, ex, ms).items():
                timed(name, fn, out)
    print(json.dumps(out))
"""


def iters_per_ms() -> int:
    """Loop iterations of ``spin`` per millisecond on this machine (best of a few)."""
    best = float("inf")
    k = 200_000
    for _ in range(5):
        t0 = time.perf_counter()
        s = 0
        for i in range(k):
            s += i
        best = min(best, time.perf_counter() - t0)
    return max(1, round(k / (best * 1e3)))


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def table(plain: dict[str, list[float]], recorded: dict[str, list[float]]) -> list[float]:
    """Print one row per workload (medians); return the ratios."""
    print("| workload | without (s) | with hook (s) | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for w in plain:
        a, b = statistics.median(plain[w]), statistics.median(recorded[w])
        ratios.append(b / a)
        print(f"| {w} | {a:.3f} | {b:.3f} | {b / a:.3f} |")
    return ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--end-to-end", type=int, default=3, help="whole runs of each kind")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.end_to_end = 2, 1

    tmp = Path(tempfile.mkdtemp(prefix="amz-rec-", dir="/tmp"))
    try:
        prog = tmp / "prog.py"
        prog.write_text(PROGRAM)
        k = str(iters_per_ms())
        base = {k2: v for k2, v in os.environ.items() if not k2.startswith("AMORSIZE_")}
        base["AMORSIZE_SOCKET"] = str(tmp / "no-daemon.sock")
        hooked = dict(base, PYTHONPATH=str(HOOK_DIR), AMORSIZE_RECORD_FILE=str(tmp / "r.jsonl"))
        plain_cmd = [sys.executable, str(prog), k]
        inter_file = tmp / "inter.jsonl"
        inter, _ = run(
            [*plain_cmd, str(args.rounds), str(HOOK_DIR / "sitecustomize.py"), str(inter_file)],
            base,
            tmp,
        )
        inter_entries = len(inter_file.read_text().splitlines())
        book_us = inter.pop("bookkeeping_us")
        times: dict[str, dict[str, list[float]]] = {"plain": {}, "recorded": {}}
        for r in range(args.rounds):
            order = [("plain", base), ("recorded", hooked)]
            if r % 2:
                order.reverse()
            for name, env in order:
                got, _ = run(plain_cmd, env, tmp)
                for w, t in got.items():
                    times[name].setdefault(w, []).append(t)
        entries = (tmp / "r.jsonl").read_text().splitlines()
        per_round = len(times["plain"])
        assert len(entries) == per_round * args.rounds, "the hook missed calls"

        walls: dict[str, list[float]] = {"plain": [], "record": []}
        record_cmd = [
            sys.executable,
            "-m",
            "amorsize_lsp.daemon",
            "record",
            "--db",
            str(tmp / "store.db"),
            "--",
            *plain_cmd,
        ]
        for r in range(args.end_to_end):
            order = [("plain", plain_cmd), ("record", record_cmd)]
            if r % 2:
                order.reverse()
            for name, cmd in order:
                walls[name].append(run(cmd, base, tmp)[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"spin calibrated at {k} iterations per ms; medians over {args.rounds} rounds")
    print()
    print("Per call, interleaved in one process (the hook's wrappers on and off by turns):")
    iratios = table(inter["plain"], inter["recorded"])
    ia = sum(statistics.median(v) for v in inter["plain"].values())
    ib = sum(statistics.median(v) for v in inter["recorded"].values())
    print(f"| all pool calls | {ia:.3f} | {ib:.3f} | {ib / ia:.3f} |")
    print(
        f"geomean ratio {statistics.geometric_mean(iratios):.3f}, worst {max(iratios):.3f}; "
        f"{inter_entries} lines recorded"
    )
    shortest = min(statistics.median(v) for v in inter["plain"].values())
    print(
        f"the hook's own work per call (median of 300, without the map): {book_us:.0f} µs = "
        f"{book_us / 1e4 / shortest:.3f}% of the shortest workload ({shortest:.3f} s)"
    )
    print()
    print("Whole programs, fresh processes, plain and hooked alternating:")
    ratios = table(times["plain"], times["recorded"])
    total_a = statistics.median(
        sum(v[i] for v in times["plain"].values()) for i in range(args.rounds)
    )
    total_b = statistics.median(
        sum(v[i] for v in times["recorded"].values()) for i in range(args.rounds)
    )
    geo = statistics.geometric_mean(ratios)
    print(f"| all pool calls | {total_a:.3f} | {total_b:.3f} | {total_b / total_a:.3f} |")
    print(f"geomean ratio {geo:.3f}, worst {max(ratios):.3f} (separate processes: noisier)")
    pa, pb = statistics.median(walls["plain"]), statistics.median(walls["record"])
    print(
        f"end to end ({args.end_to_end} runs each, medians): python prog.py {pa:.2f} s, "
        f"amorsize-daemon record -- python prog.py {pb:.2f} s "
        f"(+{pb - pa:.2f} s: the CLI's start-up, analysing the file and writing the store)"
    )
    print(
        f"target: < 5% on the interleaved per-call figure -> "
        f"{'OK' if ib / ia < 1.05 else 'OVER'} ({(ib / ia - 1) * 100:+.1f}%)"
    )
    return 0 if ib / ia < 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
