"""Fuzz campaign: mutated pool code through ``analyze_source``, each input in a guarded worker.

Counts crashes (the worker died), hangs (no answer within ``--limit`` seconds),
exceptions other than ``AnalysisError``, and how many inputs reached the parser
(decoded, and passed the prefilter). The inputs come from
``tests/analysis/mutations.py``, the same generator the test suite uses.

    python benchmarks/fuzz_analysis.py [--count 10000] [--seed 1] [--limit 5] [--save DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "analysis"))

from mutations import generate, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=5.0, help="seconds per input")
    parser.add_argument("--save", type=Path, help="write failing inputs here")
    args = parser.parse_args()
    inputs = generate(args.count, args.seed)
    report = run(inputs, args.limit)
    c = report.counts
    rows = [
        ("inputs", report.inputs),
        ("reached the parser", f"{report.reached} ({report.reached / report.inputs:.1%})"),
        ("rejected by ast.parse", c["ast_rejected"]),
        ("  of which parsed as newer syntax", c["newer_syntax_parsed"]),
        ("analysed without error", c["ok"]),
        ("AnalysisError", c["analysis_error"]),
        ("crashes", c["crash"]),
        (f"over {args.limit:g} s once, retried", c["retried"]),
        (f"hangs (over {args.limit:g} s twice)", c["hang"]),
        ("unexpected exceptions", c["unexpected"] + c["bad_error"]),
        ("wall time", f"{report.wall:.1f} s"),
    ]
    for name, value in rows:
        print(f"{name:36} {value}")
    if args.save and report.failures:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (kind, source, detail) in enumerate(report.failures):
            data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
            (args.save / f"{i:04d}-{kind}.py").write_bytes(data)
            print(f"{kind}: {detail[:200]}", file=sys.stderr)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
