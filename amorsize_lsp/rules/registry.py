"""The rule registry: every AMZ rule by code, and running the selected ones on a module.

Rules are registered by code, so the recommendation rules (AMZ1xx) that come with the
engine can join the catalogue with :func:`register` without touching this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from amorsize_lsp.analysis.model import ModuleAnalysis

from . import (
    amz001_default_chunksize_ipc,
    amz002_unpicklable_callable,
    amz003_pool_without_main_guard,
    amz004_pool_created_in_loop,
    amz005_oversubscribed_workers,
    amz006_cpu_bound_thread_pool,
    amz007_pool_not_closed,
    amz100_tune_parallel_map,
    amz101_parallel_slower_than_serial,
)
from .model import Applicability, Finding, Need, RuleContext, Severity

CheckFn = Callable[[ModuleAnalysis, RuleContext], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity, documentation and check function."""

    code: str
    name: str
    summary: str
    doc: str
    severity: Severity
    #: The applicability of the fix the rule offers, or None when it offers none.
    fix: Applicability | None
    check: CheckFn
    #: What the rule reads besides the call sites (computed only when a selected rule needs it).
    needs: frozenset[Need] = frozenset()

    @classmethod
    def from_module(cls, module: ModuleType) -> Rule:
        return cls(
            code=module.CODE,
            name=module.NAME,
            summary=module.SUMMARY,
            doc=inspect.cleandoc(module.__doc__ or ""),
            severity=module.SEVERITY,
            fix=module.FIX,
            check=module.check,
            needs=frozenset(module.NEEDS),
        )

    def section(self, title: str) -> str:
        """The text of one ``## title`` section of the documentation, unwrapped."""
        marker = f"## {title}"
        if marker not in self.doc:
            return ""
        body = self.doc.split(marker, 1)[1].split("\n## ", 1)[0]
        return " ".join(body.split())

    def explain(self) -> str:
        """The ``--explain`` text: title, then the documentation."""
        fix = {
            None: "No automatic fix.",
            Applicability.SAFE: "Fix is always available (safe).",
            Applicability.UNSAFE: "Fix is sometimes available (unsafe: needs --unsafe-fixes).",
            Applicability.DISPLAY_ONLY: "Fix is shown but never applied.",
        }[self.fix]
        return f"# {self.name} ({self.code})\n\n{fix}\n\n{self.doc}\n"


_RULES: dict[str, Rule] = {}


def register(rule: Rule) -> None:
    """Add a rule to the catalogue; codes and names are unique and stable."""
    if rule.code in _RULES:
        raise ValueError(f"rule code {rule.code} is already registered")
    if any(r.name == rule.name for r in _RULES.values()):
        raise ValueError(f"rule name {rule.name} is already registered")
    _RULES[rule.code] = rule


for _module in (
    amz001_default_chunksize_ipc,
    amz002_unpicklable_callable,
    amz003_pool_without_main_guard,
    amz004_pool_created_in_loop,
    amz005_oversubscribed_workers,
    amz006_cpu_bound_thread_pool,
    amz007_pool_not_closed,
    amz100_tune_parallel_map,
    amz101_parallel_slower_than_serial,
):
    register(Rule.from_module(_module))


def all_rules() -> list[Rule]:
    """Every registered rule, ordered by code."""
    return [_RULES[code] for code in sorted(_RULES)]


def get_rule(code_or_name: str) -> Rule | None:
    """Look a rule up by code (``AMZ001``, any case) or kebab-case name."""
    key = code_or_name.strip()
    rule = _RULES.get(key.upper())
    if rule is not None:
        return rule
    return next((r for r in _RULES.values() if r.name == key.lower()), None)


def codes_matching(selector: str) -> list[str]:
    """Codes selected by a ruff-style selector: ``ALL``, ``AMZ``, ``AMZ0``, ``AMZ001``."""
    sel = selector.strip().upper()
    if sel == "ALL":
        return sorted(_RULES)
    return sorted(code for code in _RULES if code.startswith(sel)) if sel else []


def needs_of(codes: Iterable[str] | None) -> frozenset[Need]:
    """Everything the rules with these codes (all when None) declare they need."""
    rules = all_rules() if codes is None else [_RULES[c] for c in codes if c in _RULES]
    return frozenset(need for rule in rules for need in rule.needs)


def check_module(
    analysis: ModuleAnalysis, ctx: RuleContext, codes: Iterable[str] | None = None
) -> list[Finding]:
    """Run the rules with the given codes (all when None) and return sorted findings."""
    selected = all_rules() if codes is None else [_RULES[c] for c in sorted(set(codes))]
    findings: list[Finding] = []
    for rule in selected:
        findings.extend(rule.check(analysis, ctx))
    findings.sort(key=Finding.sort_key)
    return findings
