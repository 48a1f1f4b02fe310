"""Edit-to-diagnostics latency of ``amorsize-lsp`` beside ``ruff server``, in one run.

Drives both servers over stdio with a plain JSON-RPC client on a generated
5,000-line module with 100 pool call sites, and sends 200 successive edits inside
one function (``diagnostics.debounceMs`` 0 for ours). Reports, for both: time from
``didChange`` to the ``publishDiagnostics`` of that version (p50, p95), and time to
first diagnostics on open; for ours also inlay-hint latency and resident memory
(server plus its analysis worker), and the start-to-first-diagnostics time of a
typical 300-line file.

Two edit scenarios, each with the same edits sent to ruff: inside a function that
a pool maps (the issue's scenario: the worker re-measures that one function and
re-runs the per-site rules for the sites that map it, and sends a patch), and
inside a helper that nothing maps (the server reuses its snapshot, moved by line,
without the worker). A third, shorter scenario edits a pool call itself, which
re-checks the whole file (reusing the per-statement parse and measurement caches).

    python benchmarks/lsp_latency.py [--edits 200] [--sites 100] [--lines 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil


def generate(sites: int, lines: int) -> tuple[str, int, int, int]:
    """The module, and the 0-based lines of a statement inside an unmapped helper,
    inside a mapped function, and of a pool call (the lines the edits rewrite)."""
    out = [
        "from concurrent.futures import ProcessPoolExecutor",
        "from multiprocessing import Pool",
        "",
        "",
    ]
    per = max(20, lines // sites)
    helper_line = mapped_line = pool_line = -1
    for i in range(sites):
        body = per - 16
        out.append(f"def work_{i}(x):")
        out.append("    total = 0")
        for k in range(body // 2):
            if i == sites // 2 and k == body // 4:
                mapped_line = len(out)
            out.append(f"    total += x * {k} + {i}")
        out.append("    return total")
        out.append("")
        out.append("")
        out.append(f"def helper_{i}(v):")
        out.append("    acc = []")
        for k in range(body - body // 2):
            if i == sites // 2 and k == body // 4:
                helper_line = len(out)
            out.append(f"    acc.append(v + {k})")
        out.append("    return acc")
        out.append("")
        out.append("")
        out.append(f"def run_{i}(items):")
        if i % 2:
            out.append("    with ProcessPoolExecutor(2) as ex:")
            out.append(f"        return list(ex.map(work_{i}, items))")
        else:
            out.append("    with Pool(2) as pool:")
            if i == sites // 2:
                pool_line = len(out)
            out.append(f"        return pool.imap(work_{i}, items)")
        out.append("")
        out.append("")
    return "\n".join(out) + "\n", helper_line, mapped_line, pool_line


def _edited(line: str, n: int) -> str:
    """The n-th edit of a statement line: a different constant each time."""
    if line.endswith(")"):
        return f"{line[:-1]} + {n})"
    return f"{line} + {n}"


class Client:
    """A minimal LSP client: Content-Length framing, requests, notifications."""

    def __init__(self, proc: asyncio.subprocess.Process, settings: dict[str, Any]):
        self.proc = proc
        self.settings = settings
        self.next_id = 0
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.published: dict[int, float] = {}
        self.first_publish: float | None = None
        self.publish_event = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            header = await self.proc.stdout.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            msg = json.loads(await self.proc.stdout.readexactly(length))
            now = time.perf_counter()
            if "id" in msg and "method" in msg:
                self._answer(msg)
            elif "id" in msg:
                fut = self.waiting.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result((now, msg.get("result")))
            elif msg.get("method") == "textDocument/publishDiagnostics":
                version = msg["params"].get("version")
                if self.first_publish is None:
                    self.first_publish = now
                if version is not None:
                    self.published[version] = now
                self.publish_event.set()

    def _answer(self, msg: dict[str, Any]) -> None:
        result: Any = None
        if msg["method"] == "workspace/configuration":
            result = [self.settings for _ in msg["params"]["items"]]
        self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def _send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)

    async def request(self, method: str, params: Any) -> tuple[float, Any]:
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = fut
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(fut, 120)

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def wait_version(self, version: int, timeout: float = 120) -> float:
        deadline = time.perf_counter() + timeout
        while version not in self.published:
            self.publish_event.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no diagnostics for version {version}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.publish_event.wait(), left)
        return self.published[version]


async def start(cmd: list[str], root: Path, settings: dict[str, Any], env: dict[str, str]):
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        limit=1 << 24,
    )
    client = Client(proc, settings)
    caps = {
        "general": {"positionEncodings": ["utf-16"]},
        "textDocument": {
            "synchronization": {"didSave": True},
            "publishDiagnostics": {"versionSupport": True},
            "inlayHint": {},
        },
        "workspace": {"configuration": True},
    }
    await client.request(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": root.as_uri(),
            "workspaceFolders": [{"uri": root.as_uri(), "name": "bench"}],
            "capabilities": caps,
            "initializationOptions": settings,
        },
    )
    client.notify("initialized", {})
    return client


async def stop(client: Client) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.request("shutdown", None), 10)
        client.notify("exit", None)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.proc.wait(), 10)
    if client.proc.returncode is None:
        client.proc.kill()
    client.reader.cancel()


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_server(
    name: str,
    cmd: list[str],
    root: Path,
    text: str,
    edit_line: int,
    edits: int,
    settings: dict[str, Any],
    env: dict[str, str],
    hints: bool,
) -> dict[str, Any]:
    path = root / f"{name}_big.py"
    path.write_text(text)
    uri = path.as_uri()
    client = await start(cmd, root, settings, env)
    try:
        lines = text.split("\n")
        original = lines[edit_line]
        t0 = time.perf_counter()
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )
        first = await client.wait_version(1) - t0
        diag_ms: list[float] = []
        hint_ms: list[float] = []
        for n in range(edits):
            version = n + 2
            new_line = _edited(original, n)
            change = {
                "range": {
                    "start": {"line": edit_line, "character": 0},
                    "end": {"line": edit_line, "character": len(lines[edit_line])},
                },
                "text": new_line,
            }
            lines[edit_line] = new_line
            start_t = time.perf_counter()
            client.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
            )
            hint_task = None
            if hints:
                hint_task = asyncio.ensure_future(
                    client.request(
                        "textDocument/inlayHint",
                        {
                            "textDocument": {"uri": uri},
                            "range": {
                                "start": {"line": 0, "character": 0},
                                "end": {"line": len(lines), "character": 0},
                            },
                        },
                    )
                )
            done = await client.wait_version(version)
            diag_ms.append((done - start_t) * 1e3)
            if hint_task is not None:
                answered, _ = await hint_task
                hint_ms.append((answered - start_t) * 1e3)
        mem = rss_mb(client.proc.pid)
    finally:
        await stop(client)
    return {"first_s": first, "diag_ms": diag_ms, "hint_ms": hint_ms, "rss_mb": mem}


async def cold_start(cmd: list[str], root: Path, text: str, settings, env) -> float:
    """Seconds from spawning the server to the first diagnostics of a 300-line file."""
    path = root / "typical.py"
    path.write_text(text)
    t0 = time.perf_counter()
    client = await start(cmd, root, settings, env)
    try:
        client.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": path.as_uri(),
                    "languageId": "python",
                    "version": 1,
                    "text": text,
                }
            },
        )
        return await client.wait_version(1) - t0
    finally:
        await stop(client)


async def pygls_floor() -> float:
    """Seconds for a Python process to load pygls and build a server, doing nothing
    else: what any pygls server pays before its first message (lsprotocol's types
    and converter), measured in the same run as the floor of the cold start."""
    code = "from pygls.lsp.server import LanguageServer; LanguageServer('floor', '1')"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
        await proc.wait()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(label: str, values: list[float]) -> str:
    if not values:
        return f"| {label} | – | – |"
    return f"| {label} | {statistics.median(values):.1f} | {pct(values, 0.95):.1f} |"


async def main_async(args: argparse.Namespace) -> int:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        print("ruff is not installed (it is in the test extra); cannot run the baseline")
        return 2
    text, helper_line, mapped_line, pool_line = generate(args.sites, args.lines)
    typical, *_ = generate(6, 300)
    ours_cmd = [sys.executable, "-m", "amorsize_lsp"]
    ruff_cmd = [ruff, "server"]
    with tempfile.TemporaryDirectory(prefix="amz-lsp-bench-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "AMORSIZE_SOCKET": str(root / "none.sock"),
            "AMORSIZE_DB": str(root / "none.db"),
        }
        ours_settings = {"diagnostics": {"debounceMs": 0}, "daemon": {"autoStart": False}}
        results = {}
        results["ours_helper"] = await run_server(
            "ours", ours_cmd, root, text, helper_line, args.edits, ours_settings, env, True
        )
        results["ours_mapped"] = await run_server(
            "ours2", ours_cmd, root, text, mapped_line, args.edits, ours_settings, env, True
        )
        results["ours_pool"] = await run_server(
            "ours3", ours_cmd, root, text, pool_line, args.edits // 4, ours_settings, env, True
        )
        results["ruff_helper"] = await run_server(
            "ruff", ruff_cmd, root, text, helper_line, args.edits, {}, env, False
        )
        results["ruff_mapped"] = await run_server(
            "ruff2", ruff_cmd, root, text, mapped_line, args.edits, {}, env, False
        )
        # Medians of three: one start-up is at the mercy of the machine's other load.
        ours_cold = statistics.median(
            [await cold_start(ours_cmd, root, typical, ours_settings, env) for _ in range(3)]
        )
        ruff_cold = statistics.median(
            [await cold_start(ruff_cmd, root, typical, {}, env) for _ in range(3)]
        )
        floor = await pygls_floor()
    n_lines = text.count("\n")
    print(f"# LSP latency: {n_lines} lines, {args.sites} call sites, {args.edits} edits\n")
    print("| edit → diagnostics (ms) | p50 | p95 |")
    print("|---|---|---|")
    print(row("amorsize-lsp, edit in a mapped function", results["ours_mapped"]["diag_ms"]))
    print(row("ruff server, same edits (mapped function)", results["ruff_mapped"]["diag_ms"]))
    print(row("amorsize-lsp, edit in an unmapped function", results["ours_helper"]["diag_ms"]))
    print(row("ruff server, same edits (unmapped function)", results["ruff_helper"]["diag_ms"]))
    print(
        row(
            f"amorsize-lsp, edit of a pool call ({args.edits // 4} edits; the file is re-checked)",
            results["ours_pool"]["diag_ms"],
        )
    )
    print("\n| edit → inlay hints (ms) | p50 | p95 |")
    print("|---|---|---|")
    print(row("amorsize-lsp, edit in a mapped function", results["ours_mapped"]["hint_ms"]))
    print(row("amorsize-lsp, edit in an unmapped function", results["ours_helper"]["hint_ms"]))
    for scenario in ("mapped", "helper"):
        p95_ours = pct(results[f"ours_{scenario}"]["diag_ms"], 0.95)
        p95_ruff = pct(results[f"ruff_{scenario}"]["diag_ms"], 0.95)
        print(f"ratio p95 ours/ruff ({scenario} function edits): {p95_ours / p95_ruff:.2f}")
    worst = max(
        pct(results[k][m], 0.95)
        for k in ("ours_mapped", "ours_helper")
        for m in ("diag_ms", "hint_ms")
    )
    print(
        f"target: p95 at most 30 ms for diagnostics and inlay hints; worst p95 here {worst:.1f} ms"
    )
    print("\n| first diagnostics | amorsize-lsp | ruff server |")
    print("|---|---|---|")
    print(
        f"| open of the {n_lines}-line file (server running) | "
        f"{results['ours_helper']['first_s'] * 1e3:.0f} ms | "
        f"{results['ruff_helper']['first_s'] * 1e3:.0f} ms |"
    )
    print(
        f"| 300-line file, server start included | {ours_cold * 1e3:.0f} ms | "
        f"{ruff_cold * 1e3:.0f} ms |"
    )
    print(
        f"\nfloor of any pygls server (start Python, load pygls, build a server): "
        f"{floor * 1e3:.0f} ms; cold start minus that floor: {(ours_cold - floor) * 1e3:.0f} ms"
    )
    print(
        f"\nresident memory after the edits: amorsize-lsp (server + worker) "
        f"{results['ours_helper']['rss_mb']:.0f} MB; ruff server "
        f"{results['ruff_helper']['rss_mb']:.0f} MB"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--lines", type=int, default=5000)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
