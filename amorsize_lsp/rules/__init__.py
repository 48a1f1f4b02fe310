"""The AMZ rule catalogue: one module per rule, shared by the CLI and the server.

Each rule module defines ``CODE``, ``NAME``, ``SEVERITY``, ``FIX``, ``SUMMARY``, a
``NEEDS`` (what it reads besides the call sites), a module docstring (what it flags,
why, an example, the fix; shown by ``--explain``) and ``check(analysis, ctx)``
yielding :class:`Finding` objects.
"""

from .model import DEFAULT_MIN_ITEMS, Applicability, Finding, Fix, Need, RuleContext, Severity
from .registry import (
    Rule,
    all_rules,
    check_module,
    codes_matching,
    get_rule,
    needs_of,
    register,
)

__all__ = [
    "DEFAULT_MIN_ITEMS",
    "Applicability",
    "Finding",
    "Fix",
    "Need",
    "Rule",
    "RuleContext",
    "Severity",
    "all_rules",
    "check_module",
    "codes_matching",
    "get_rule",
    "needs_of",
    "register",
]
