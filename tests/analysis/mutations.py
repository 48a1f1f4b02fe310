"""Mutated pool code for fuzzing the analysis, and a guarded runner for it.

The inputs start from pool code that passes the textual prefilter (pool
imports and pool calls), then get a few mutations each: deleted, duplicated
and inserted characters, call arguments nested in parentheses (past CPython's
limit too), broken indentation in several places, syntax newer than the
interpreter, and random bytes. Each input runs in a worker subprocess with a
time limit, so that a crash or a hang of the native parser is counted, not
fatal. An input over the limit is retried once in a fresh worker (the machine
is shared and noisy); it is a hang when it is over the limit twice.
Used by ``test_fuzz_callsites.py`` and ``benchmarks/fuzz_analysis.py``.
"""

from __future__ import annotations

import json
import os
import random
import select
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SEED = """\
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor as PPE
from functools import partial

N = 100

def work(x):
    return [i * x for i in range(N)]

class Runner:
    def __init__(self):
        self.pool = mp.Pool(2)
    def go(self, xs):
        return self.pool.imap(self.step, xs, 4)
    def step(self, x):
        return x

def main():
    with mp.get_context("spawn").Pool(processes=4) as pool:
        pool.map(work, range(N), chunksize=8)
        pool.starmap(partial(work), [(1,)] * 10)
    with PPE(max_workers=2) as ex:
        list(ex.map(lambda x: x, range(10)))

if __name__ == "__main__":
    main()
"""

TOKENS = [
    *"():=,.*[]{}'\"\\#0x\t\n@",
    *("map", "Pool", "    ", "lambda", "with", "as", "import", ":=", "def", "if", "f'{", "'''"),
]
#: Constructs newer than some interpreters: they send the file down the fallback path.
NEWER = [
    "type Alias = list[int]\n",
    "def generic[T](x: T) -> T:\n    return x\n",
    'label = f"{ {"k": 1}["k"]}"\n',
    "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
]


def _seeds() -> list[str]:
    """The seed above, and the standard library's own pool module (about 35 KB)."""
    import multiprocessing.pool

    return [SEED, Path(multiprocessing.pool.__file__).read_text(encoding="utf-8")]


def _nest(rng: random.Random, text: str) -> str:
    at = text.find("(", rng.randrange(len(text)))
    if at < 0:
        return text
    close = text.find(")", at)
    if close < 0:
        return text
    depth = rng.choice([3, 50, 199, 250, 1000, 5000])
    inner = text[at + 1 : close]
    return text[: at + 1] + "(" * depth + inner + ")" * depth + text[close:]


def _indent(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(["    ", "  ", "\t", " "]) + lines[i]
        if rng.random() < 0.3:
            lines[i] = lines[i].lstrip(" ")
    return "".join(lines)


def mutate(rng: random.Random, text: str) -> str | bytes:
    """One input: ``text`` with one to six mutations; bytes when random bytes were added."""
    raw: list[bytes] = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
        op = rng.randrange(20)
        pos = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:pos] + text[pos + rng.randint(1, 8) :]
        elif op == 1:
            cut = text[pos : pos + rng.randint(1, 80)]
            text = text[:pos] + cut + cut + text[pos:]
        elif op in (2, 3, 9, 10):
            text = text[:pos] + rng.choice(TOKENS) + text[pos:]
        elif op in (4, 11):
            text = _nest(rng, text)
        elif op in (5, 12):
            text = _indent(rng, text)
        elif op in (6, 13):
            line_start = text.rfind("\n", 0, pos) + 1
            text = text[:line_start] + rng.choice(NEWER) + text[line_start:]
        elif op in (7, 16):
            text = (
                text[:pos] + "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(3)) + text[pos:]
            )
        elif op in (8, 14, 15, 17, 18):
            i = rng.randrange(len(text) + 1)
            text = text[:i] + " " * rng.randint(1, 3) + text[i:]  # mostly harmless
        else:
            raw.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))))
    if not raw:
        return text
    data = text.encode("utf-8")
    for chunk in raw:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + chunk + data[at:]
    return data


def generate(count: int, seed: int) -> list[str | bytes]:
    """``count`` mutated inputs, the same for the same ``seed``."""
    rng = random.Random(seed)
    seeds = _seeds()
    return [mutate(rng, seeds[1] if i % 3 == 2 else seeds[0]) for i in range(count)]


# -- the guarded runner -------------------------------------------------------------

_WORKER = r"""
import ast, json, struct, sys, traceback
from amorsize_lsp.analysis import callsites
from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.analysis.model import AnalysisError

planned = []
plan = callsites._plan


def counting_plan(source, *args, **kwargs):
    planned.append(source)  # the text reached the parser: decoded, past the prefilter
    return plan(source, *args, **kwargs)


callsites._plan = counting_plan
inp, out = sys.stdin.buffer, sys.stdout
out.write("ready\n")
out.flush()
while True:
    head = inp.read(5)
    if len(head) < 5:
        break
    is_bytes, size = head[0], struct.unpack("<I", head[1:])[0]
    data = inp.read(size)
    source = data if is_bytes else data.decode("utf-8", "surrogatepass")
    planned.clear()
    result = {}
    try:
        analysis = analyze_source(source, "fuzz.py", search_path=())
        for site in analysis.callsites:
            assert site.span.line >= 1 and site.span.end_line >= site.span.line
            site.to_json()
        result["outcome"] = "ok"
        result["sites"] = len(analysis.callsites)
    except AnalysisError as exc:
        ok = bool(exc.message) and exc.line >= 1 and exc.column >= 0
        result["outcome"] = "analysis_error" if ok else "bad_error"
    except BaseException as exc:
        result["outcome"] = "unexpected"
        result["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    result["reached"] = bool(planned)
    result["ast_rejected"] = False
    if planned:
        try:
            ast.parse(planned[0])
        except BaseException:
            result["ast_rejected"] = True
    out.write(json.dumps(result) + "\n")
    out.flush()
"""


@dataclass
class Report:
    """What a fuzz run found; ``failures`` keeps the inputs that crashed, hung or escaped."""

    inputs: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str | bytes, str]] = field(default_factory=list)
    wall: float = 0.0

    @property
    def reached(self) -> int:
        return self.counts["reached"]


class _Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONFAULTHANDLER": ""}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        if not ready or self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("the fuzz worker did not start")

    def run(self, source: str | bytes, limit: float) -> dict | str:
        """The worker's result, or ``"hang"`` / ``"crash <code>"``.

        The worker imports the analysis before it reads its first input, so
        the limit covers the analysis alone.
        """
        assert self.proc.stdin is not None and self.proc.stdout is not None
        data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
        try:
            self.proc.stdin.write(bytes([isinstance(source, bytes)]) + struct.pack("<I", len(data)))
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return f"crash {self.proc.wait()}"
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            return "hang"
        line = self.proc.stdout.readline()
        if not line:
            return f"crash {self.proc.wait()}"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(inputs: list[str | bytes], limit: float = 5.0) -> Report:
    """Run every input through ``analyze_source`` in a worker, restarting it after a failure."""
    report = Report(inputs=len(inputs))
    start = time.perf_counter()
    worker = _Worker()
    try:
        for source in inputs:
            result = worker.run(source, limit)
            if result == "hang":  # the machine may be busy: once more, in a fresh worker
                worker.close()
                worker = _Worker()
                report.counts["retried"] += 1
                result = worker.run(source, limit)
            if isinstance(result, str):
                kind = result.split()[0]
                report.counts[kind] += 1
                report.failures.append((kind, source, result))
                worker.close()
                worker = _Worker()
                continue
            report.counts[result["outcome"]] += 1
            report.counts["reached"] += result["reached"]
            report.counts["ast_rejected"] += result["ast_rejected"]
            if result["ast_rejected"] and result["outcome"] == "ok":
                report.counts["newer_syntax_parsed"] += 1
            if result["outcome"] in ("unexpected", "bad_error"):
                report.failures.append((result["outcome"], source, result.get("error", "")))
    finally:
        worker.close()
    report.wall = time.perf_counter() - start
    return report
