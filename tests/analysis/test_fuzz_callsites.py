"""Mutated pool code: only ``AnalysisError`` may escape, and nothing may crash or hang.

The inputs pass the prefilter, so they reach the parser (checked, from the
data); each runs in a worker subprocess so a native crash is counted instead of
killing the test run. ``benchmarks/fuzz_analysis.py`` runs the same generator
on 10,000 inputs.
"""

from __future__ import annotations

from mutations import SEED, generate, run

from amorsize_lsp.analysis.driver import may_contain_callsites

COUNT = 400


def test_the_seed_itself_passes_the_prefilter() -> None:
    assert may_contain_callsites(SEED)


def test_mutated_pool_code_reaches_the_parser_and_only_analysis_error_escapes() -> None:
    inputs = generate(COUNT, seed=20261203)
    report = run(inputs, limit=30.0)
    failures = [(kind, detail) for kind, _source, detail in report.failures]
    assert failures == []
    c = report.counts
    assert c["ok"] + c["analysis_error"] == len(inputs)
    assert report.reached >= 0.8 * len(inputs)
    # Both sides are exercised: inputs that analyse, and inputs rejected as bad syntax.
    assert c["ok"] > 0 and c["analysis_error"] > 0 and c["ast_rejected"] > 0
