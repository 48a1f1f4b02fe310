"""Helpers for rule tests: run the real analysis and the real rules on a snippet."""

from __future__ import annotations

import textwrap

import libcst

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.rules.model import Finding, RuleContext
from amorsize_lsp.rules.registry import check_module


def run_rules(
    source: str,
    codes: list[str] | None = None,
    *,
    target_cores: int = 4,
    min_items: int = 50,
    gil_enabled: bool = True,
    recommend=None,
    path: str = "snippet.py",
) -> list[Finding]:
    source = textwrap.dedent(source)
    analysis = analyze_source(source, path)
    ctx = RuleContext(
        source=source,
        path=path,
        target_cores=target_cores,
        min_items=min_items,
        gil_enabled=gil_enabled,
        recommend=recommend,
    )
    return check_module(analysis, ctx, codes)


def apply_fix(source: str, finding: Finding) -> str:
    from amorsize_lsp.analysis.edits import apply_edits

    assert finding.fix is not None, f"{finding.code} has no fix"
    fixed = apply_edits(textwrap.dedent(source), list(finding.fix.edits))
    libcst.parse_module(fixed)  # a fix must never produce unparseable code
    return fixed
