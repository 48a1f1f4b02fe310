"""What every output format shares: options, the E999 pseudo-rule, fix marks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amorsize_lsp.rules.model import Applicability, Finding

#: Code for a file that could not be read, decoded or parsed.
E999 = "E999"
E999_NAME = "analysis-error"
E999_SUMMARY = "file could not be read, decoded or parsed"


@dataclass(frozen=True, slots=True)
class OutputOptions:
    color: bool = False
    #: Whether ``--unsafe-fixes`` is on (decides which fixes count as available).
    unsafe_fixes: bool = False
    #: Whether this run applied fixes (``--fix``), for the summary line.
    fix_mode: bool = False
    #: Where relative paths are rooted (SARIF's %SRCROOT%).
    root: Path = Path(".")


def fix_available(finding: Finding, options: OutputOptions) -> bool:
    """Whether ``--fix`` (with this run's unsafe setting) would apply the finding's fix."""
    return finding.fix is not None and finding.fix.applies(options.unsafe_fixes)


def hidden_unsafe(finding: Finding, options: OutputOptions) -> bool:
    fix = finding.fix
    return (
        not options.unsafe_fixes
        and fix is not None
        and bool(fix.edits)
        and fix.applicability is Applicability.UNSAFE
    )
