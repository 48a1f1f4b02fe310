"""Property tests: rules never crash on mutated pool code, and fixes keep it parseable."""

from pathlib import Path

import libcst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rule_helpers import run_rules

from amorsize_lsp.analysis.model import AnalysisError, apply_edits
from amorsize_lsp.rules.noqa import filter_suppressed, suppression_edit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
SOURCES = [p.read_text(encoding="utf-8") for p in EXAMPLES]
TOKENS = [
    "(",
    ")",
    ",",
    ":",
    "\n",
    "    ",
    "lambda x: x",
    "Pool(99)",
    "# noqa",
    '"""',
    "for x in y:",
]


@st.composite
def mutated(draw):
    source = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(source)))
        if draw(st.booleans()):
            source = source[:at] + draw(st.sampled_from(TOKENS)) + source[at:]
        else:
            source = source[:at] + source[at + draw(st.integers(1, 8)) :]
    return source


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_rules_and_fixes_on_mutated_sources(source):
    try:
        findings = run_rules(source, target_cores=2, min_items=0)
    except AnalysisError:
        return
    for finding in findings:
        assert finding.span.line >= 1 and finding.span.column >= 0
        if finding.fix is not None:
            libcst.parse_module(apply_edits(source, list(finding.fix.edits)))
        edit = suppression_edit(source, finding.line, finding.code)
        if edit is not None:
            suppressed = apply_edits(source, [edit])
            libcst.parse_module(suppressed)
            assert not filter_suppressed([finding], suppressed)[0]
    # Suppressing every finding, line by line, leaves nothing to report.
    silenced = source
    for finding in sorted(findings, key=lambda f: -f.line):
        edit = suppression_edit(silenced, finding.line, finding.code)
        if edit is None:
            if finding.line in _unsuppressible_lines(silenced):
                return
            continue  # the line already suppresses it
        silenced = apply_edits(silenced, [edit])
    kept, suppressed = filter_suppressed(run_rules(silenced, target_cores=2, min_items=0), silenced)
    assert kept == []
    assert len(suppressed) == len(findings)


def _unsuppressible_lines(source: str) -> set[int]:
    """Lines where a comment cannot go (they end inside a string or a continuation)."""
    from amorsize_lsp.rules.noqa import _scan

    return _scan(source).unsafe_ends
