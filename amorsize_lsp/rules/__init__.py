"""The AMZ rule catalogue: one module per rule, shared by the CLI and the server.

Each rule module defines ``CODE``, ``NAME``, ``SEVERITY``, ``FIX``, ``SUMMARY``, a
module docstring (what it flags, why, an example, the fix; shown by ``--explain``)
and ``check(analysis, ctx)`` yielding :class:`Finding` objects.
"""

from .model import Applicability, Finding, Fix, RuleContext, Severity
from .registry import Rule, all_rules, check_module, codes_matching, get_rule, register

__all__ = [
    "Applicability",
    "Finding",
    "Fix",
    "Rule",
    "RuleContext",
    "Severity",
    "all_rules",
    "check_module",
    "codes_matching",
    "get_rule",
    "register",
]
