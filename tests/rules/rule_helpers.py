"""Helpers for rule tests: run the real analysis and the real rules on a snippet."""

from __future__ import annotations

import textwrap

import libcst

from amorsize_lsp.analysis.model import AnalysisError, apply_edits
from amorsize_lsp.check import CheckSettings, check_source
from amorsize_lsp.rules.model import Finding


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
    """Every finding (suppressed ones too) of checking ``source`` through the seam.

    Raises ``AnalysisError`` for input the analysis rejects, like the analysis does.
    """
    source = textwrap.dedent(source)
    settings = CheckSettings(
        codes=None if codes is None else frozenset(codes),
        target_cores=target_cores,
        min_items=min_items,
        gil_enabled=gil_enabled,
    )
    result = check_source(source, path, settings, recommend=recommend)
    if result.errors:
        error = result.errors[0]
        raise AnalysisError(path, error.message, error.line, error.column)
    return sorted(result.findings + result.suppressed, key=Finding.sort_key)


def apply_fix(source: str, finding: Finding) -> str:
    assert finding.fix is not None, f"{finding.code} has no fix"
    fixed = apply_edits(textwrap.dedent(source), list(finding.fix.edits))
    libcst.parse_module(fixed)  # a fix must never produce unparseable code
    return fixed
