"""Load on the daemon: 50 clients x 200 ``recommend`` calls, beside a do-nothing floor server.

The store is seeded with at least 5,000 profiles; the call sites are real ones,
made by the analysis from generated modules of varied shapes (some measured,
some only predictable by the k-NN, some unknown). In the same run the same load
goes to a trivial asyncio NDJSON server that answers every request with
``null``: with 50 clients in a closed loop latency is mostly queueing, and that
server is the floor for any Python server on this machine. Both servers run as
their own processes; the load generator is the same for both. Rounds alternate
(floor, daemon, floor, daemon, ...) so that a burst of other work on this shared
machine hits both.

    python benchmarks/daemon_load.py               # 50 x 200, 5,000 profiles, 3 rounds
    python benchmarks/daemon_load.py --quick       # a smoke run

Targets (issue 7): p99 <= max(10 ms, 2 x floor p99); zero errors; daemon RSS < 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.daemon.client import DaemonClient, DaemonError, serve_command
from amorsize_lsp.daemon.store import Store
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

HERE = Path(__file__).resolve()


# --------------------------------------------------------------------- floor


async def _floor_main(path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                req = json.loads(line)
                writer.write(
                    json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "result": None}).encode()
                    + b"\n"
                )
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=path)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------ the data


def _module(i: int, rng: random.Random) -> str:
    """A module with one mapped function whose shape varies with ``i``."""
    depth = i % 4
    calls = rng.randint(0, 6)
    body = ["    s = 0"]
    indent = "    "
    for d in range(depth):
        body.append(f"{indent}for i{d} in range(x + {d}):")
        indent += "    "
    body.append(f"{indent}s += {i % 7 + 1}")
    body += [f"    s += len(str(s + {k}))" for k in range(calls)]
    if i % 5 == 0:
        body.append("    s = sorted([s, x, 3])[1]")
    body.append("    return s")
    length = rng.choice([None, 100, 1000, 10_000])
    items = f"list(range({length}))" if length else "(j for j in range(50))"
    executor = rng.choice(
        [
            ("from multiprocessing import Pool", "Pool()"),
            ("from concurrent.futures import ProcessPoolExecutor", "ProcessPoolExecutor()"),
        ]
    )
    return (
        f"{executor[0]}\n\n\ndef work_{i}(x):\n" + "\n".join(body) + "\n\n\n"
        "if __name__ == '__main__':\n"
        f"    with {executor[1]} as pool:\n"
        f"        list(pool.map(work_{i}, {items}))\n"
    )


def make_callsites(directory: Path, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    sites = []
    for i in range(n):
        path = directory / f"mod_{i}.py"
        path.write_text(_module(i, rng))
        sites += [c.to_json() for c in analyze_source(path.read_bytes(), str(path)).callsites]
    return sites


def seed_store(db: Path, sites: list[dict[str, Any]], n_profiles: int, seed: int) -> dict[str, int]:
    """``n_profiles`` profiles: most call sites get some, a quarter get none."""
    rng = random.Random(seed)
    measured = sites[: len(sites) * 3 // 4]
    system = SystemProfile.detect()
    store = Store(db, synchronous="NORMAL", max_profiles=max(50_000, 2 * n_profiles))
    machine = store.record_machine(system)
    t0 = time.time() - 86400
    for k in range(n_profiles):
        site = measured[k % len(measured)]
        cx = site["complexity"] or {}
        mean = 1e-5 * (1 + (cx.get("instruction_count") or 10)) * rng.uniform(0.5, 2.0)
        store.add_profile(
            callsite=site,
            profile=WorkloadProfile(
                n_items=site["length"] or 100,
                mean_s=mean,
                cv=rng.uniform(0, 0.5),
                p50_s=mean,
                p95_s=mean * 1.3,
                max_s=mean * 2,
                arg_bytes=20.0,
                result_bytes=20.0,
                sample_size=30,
            ),
            source="sample",
            machine=machine,
            measured_at=t0 + k,
        )
    counts = store.counts()
    store.close()
    return counts


# ------------------------------------------------------------------ the load


async def _client(
    path: str, requests: list[bytes], latencies: list[float], errors: list[str]
) -> None:
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
    except OSError as e:
        errors.append(f"connect: {e}")
        return
    try:
        for req in requests:
            t0 = time.perf_counter()
            writer.write(req)
            line = await reader.readline()
            latencies.append(time.perf_counter() - t0)
            if not line:
                errors.append("closed")
                return
            reply = json.loads(line)
            if "error" in reply:
                errors.append(reply["error"]["message"])
    finally:
        writer.close()


async def run_load(
    path: str, sites: list[dict[str, Any]], clients: int, calls: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    plans = []
    for c in range(clients):
        reqs = []
        for k in range(calls):
            site = rng.choice(sites)
            msg = {
                "jsonrpc": "2.0",
                "id": c * calls + k,
                "method": "recommend",
                "params": {"callsite": site},
            }
            reqs.append(json.dumps(msg).encode() + b"\n")
        plans.append(reqs)
    latencies: list[float] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(path, p, latencies, errors) for p in plans))
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "calls": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": 1e3 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "throughput": len(lat) / wall,
    }


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if path.exists():
            try:
                with DaemonClient(path, timeout_s=2) as c:
                    c.call("status")
                return
            except DaemonError:
                pass
        time.sleep(0.05)
    raise SystemExit(f"{path} did not answer within {timeout} s")


def _peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return psutil.Process(pid).memory_info().rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--profiles", type=int, default=5000)
    ap.add_argument("--modules", type=int, default=120, help="distinct call sites")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--floor-server", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_server:
        asyncio.run(_floor_main(args.floor_server))
        return 0
    if args.quick:
        args.clients, args.calls, args.profiles, args.modules, args.rounds = 10, 50, 500, 30, 1

    tmp = Path(tempfile.mkdtemp(prefix="amz-load-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.perf_counter()
        sites = make_callsites(tmp, args.modules, args.seed)
        db = tmp / "store.db"
        counts = seed_store(db, sites, args.profiles, args.seed)
        print(
            f"store: {counts['profiles']} profiles over {counts['functions']} functions; "
            f"{len(sites)} real call sites (3/4 measured, 1/4 only predictable); "
            f"seeded in {time.perf_counter() - t0:.1f} s"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMORSIZE_")}
        dsock, fsock = tmp / "d.sock", tmp / "f.sock"
        daemon = subprocess.Popen(
            serve_command(dsock, db, "--idle-timeout", "0"),
            stderr=subprocess.DEVNULL,
            env=env,
        )
        procs.append(daemon)
        floor = subprocess.Popen([sys.executable, str(HERE), "--floor-server", str(fsock)], env=env)
        procs.append(floor)
        _wait_socket(dsock, daemon)
        _wait_socket(fsock, floor)
        rss_idle = psutil.Process(daemon.pid).memory_info().rss
        results: dict[str, list[dict[str, Any]]] = {"floor": [], "daemon": []}
        for r in range(args.rounds):
            for name, sock in (("floor", fsock), ("daemon", dsock)):
                res = asyncio.run(
                    run_load(str(sock), sites, args.clients, args.calls, args.seed + r)
                )
                results[name].append(res)
                print(
                    f"round {r + 1} {name:6s}: p50 {res['p50_ms']:6.2f} ms  p99 "
                    f"{res['p99_ms']:6.2f} ms  {res['throughput']:7.0f} calls/s  "
                    f"errors {res['errors']}"
                )
        rss = psutil.Process(daemon.pid).memory_info().rss
        peak = _peak_rss(daemon.pid)
        with DaemonClient(dsock) as c:
            answered = c.batch([("recommend", {"callsite": s}) for s in sites])
        known = sum(1 for a in answered if isinstance(a, dict))
        sources: dict[str, int] = {}
        for a in answered:
            if isinstance(a, dict):
                sources[a["source"]] = sources.get(a["source"], 0) + 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    total = args.clients * args.calls
    errors = sum(r["errors"] for r in results["daemon"])
    f99, d99 = med("floor", "p99_ms"), med("daemon", "p99_ms")
    limit = max(10.0, 2 * f99)
    print()
    print(
        f"{args.clients} clients x {args.calls} recommend calls = {total} per round, "
        f"{args.rounds} round(s); medians over rounds"
    )
    print("| server | p50 ms | p99 ms | calls/s | errors |")
    print("|---|---|---|---|---|")
    for name in ("floor", "daemon"):
        errs = sum(r["errors"] for r in results[name])
        print(
            f"| {name} | {med(name, 'p50_ms'):.2f} | {med(name, 'p99_ms'):.2f} | "
            f"{med(name, 'throughput'):.0f} | {errs} |"
        )
    print(
        f"daemon p99 / floor p99: {d99 / f99:.2f}x; limit max(10 ms, 2 x floor) = "
        f"{limit:.2f} ms -> {'OK' if d99 <= limit else 'OVER'}"
    )
    print(
        f"errors: {errors} -> {'OK' if errors == 0 else 'FAIL'}"
        + (f" (first: {results['daemon'][0]['first_error']})" if errors else "")
    )
    print(
        f"daemon RSS: {rss_idle / 2**20:.1f} MB idle, {rss / 2**20:.1f} MB after load, "
        f"peak {peak / 2**20:.1f} MB -> {'OK' if peak < 100 * 2**20 else 'OVER'} (< 100 MB)"
    )
    print(
        f"answers for the {len(sites)} call sites: {known} recommendations "
        f"({', '.join(f'{k} {v}' for k, v in sorted(sources.items()))}), "
        f"{len(sites) - known} null"
    )
    ok = d99 <= limit and errors == 0 and peak < 100 * 2**20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
