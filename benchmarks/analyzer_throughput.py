"""Analyzer throughput over the installed standard library, with baselines in the same run.

1. The call-site dump (``amorsize-lint --show-callsites --format json``) over
   the standard library (``site-packages`` left out), beside CPython's own
   ``ast.parse`` of the same files: files/s, wall time, and the ratio.
   Target: under 5 s for the whole standard library on a 2-core machine.
2. ``amorsize-lint`` (all rules) beside ``ruff check --no-cache --select PERF``
   on the same tree. Target: at most 3x ruff's wall time.

Each figure is the median of ``--repeat`` runs (default 3); machines are noisy,
so read the ratios, not the absolute times.

    python benchmarks/analyzer_throughput.py [--repeat N] [--skip-ruff]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path


def stdlib_entries() -> tuple[list[str], list[str]]:
    """Top-level entries of the stdlib minus site-packages, and every .py file below."""
    root = Path(sysconfig.get_paths()["stdlib"])
    entries = sorted(
        str(p) for p in root.iterdir() if p.name not in ("site-packages", "__pycache__")
    )
    files = []
    for entry in entries:
        p = Path(entry)
        if p.is_file() and p.suffix == ".py":
            files.append(entry)
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                files.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".py"))
    return entries, files


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def ast_baseline(files: list[str]) -> float:
    start = time.perf_counter()
    for f in files:
        with contextlib.suppress(SyntaxError, ValueError):
            ast.parse(Path(f).read_bytes())
    return time.perf_counter() - start


def lint_command() -> list[str]:
    exe = shutil.which("amorsize-lint")
    return [exe] if exe else [sys.executable, "-m", "amorsize_lsp.lint.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ruff", action="store_true")
    args = parser.parse_args()

    entries, files = stdlib_entries()
    lines = sum(Path(f).read_bytes().count(b"\n") for f in files)
    print(f"standard library: {len(files)} files, {lines:,} lines ({sys.version.split()[0]})")
    lint = lint_command()

    dump_times, base_times, sites = [], [], 0
    for _ in range(args.repeat):
        base_times.append(ast_baseline(files))
        wall, proc = timed([*lint, "--show-callsites", "--format", "json", *entries])
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:], file=sys.stderr)
            return 2
        sites = len(json.loads(proc.stdout))
        dump_times.append(wall)
    dump, base = statistics.median(dump_times), statistics.median(base_times)
    print("\n## call-site dump")
    print(f"{'what':<44}{'wall s':>9}{'files/s':>10}")
    print(f"{'amorsize-lint --show-callsites (json)':<44}{dump:>9.2f}{len(files) / dump:>10.0f}")
    print(f"{'baseline: CPython ast.parse, serial':<44}{base:>9.2f}{len(files) / base:>10.0f}")
    print(f"call sites found: {sites}")
    print(f"ratio dump / ast.parse: {dump / base:.2f}")
    print(f"target: whole stdlib under 5 s -> {'MET' if dump < 5 else 'MISSED'} ({dump:.2f} s)")

    ruff = shutil.which("ruff")
    if args.skip_ruff or ruff is None:
        print("\n(ruff comparison skipped: ruff not found)" if ruff is None else "")
        return 0
    lint_times, ruff_times = [], []
    for _ in range(args.repeat):
        wall, proc = timed([*lint, "--exit-zero", "--quiet", "--format", "concise", *entries])
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 2
        lint_times.append(wall)
        wall, _ = timed([ruff, "check", "--no-cache", "--select", "PERF", "--exit-zero", *entries])
        ruff_times.append(wall)
    ours, theirs = statistics.median(lint_times), statistics.median(ruff_times)
    print("\n## amorsize-lint vs ruff on the same tree")
    print(f"{'amorsize-lint (all AMZ rules)':<44}{ours:>9.2f}")
    print(f"{'ruff check --no-cache --select PERF':<44}{theirs:>9.2f}")
    verdict = "MET" if ours <= 3 * theirs else "MISSED"
    print(f"ratio amorsize-lint / ruff: {ours / theirs:.2f} (target <= 3: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
