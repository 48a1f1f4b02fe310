"""What a rule reports: findings with optional fixes, shared by the CLI and the server.

Positions are the analysis's own (:class:`~amorsize_lsp.analysis.model.Span`): 1-based
lines, 0-based code-point columns, end exclusive. Presentation layers convert: the
CLI's JSON, SARIF and text add 1 to columns; the language server goes through its
position codec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from amorsize_lsp.analysis.model import CallSite, Span, TextEdit

if TYPE_CHECKING:
    from amorsize_lsp.engine.workload import Recommendation


class Severity(str, Enum):
    """How bad a finding is: ``error`` breaks at run time, ``warning`` costs speed or leaks."""

    ERROR = "error"
    WARNING = "warning"
    #: Advice that depends on the machine at hand (the language server's AMZ005, AMZ100).
    INFO = "information"


#: ``min-items`` when the configuration does not set it (the one place it is written).
DEFAULT_MIN_ITEMS = 50


#: Recommendation sources that rest on a measurement of the function (not a prediction):
#: ``engine.workload``'s MEASURED, RECORDED and SHARED, spelled out so that importing the
#: rules does not load the engine (a test keeps them equal).
MEASURED_SOURCES = frozenset({"measured", "recorded", "shared"})


class Need(str, Enum):
    """What a rule needs besides the call sites; the runner computes only what is needed.

    Declared by each rule module as ``NEEDS`` (like Fixit's metadata dependencies), so
    no client has to know which rule reads what.

    A rule that declares either need judges each call site on its own (from the site
    and its own complexity or advice, never from other sites or the rest of the
    module), so a client may re-run it for the sites whose mapped function changed
    (``check.recheck_callsites``); ``tests/rules/test_site_rules.py`` holds them to it.
    """

    #: ``CallSite.complexity``: the mapped function's bytecode metrics (costs a compile).
    COMPLEXITY = "complexity"
    #: ``RuleContext.recommend``: the engine's advice for a call site, when a client has it.
    RECOMMENDATION = "recommendation"


class Applicability(str, Enum):
    """Whether a fix may be applied without review (ruff's vocabulary)."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    DISPLAY_ONLY = "display-only"


@dataclass(frozen=True, slots=True)
class Fix:
    """Text edits that resolve a finding, and how safe they are to apply unattended."""

    applicability: Applicability
    message: str
    edits: tuple[TextEdit, ...]

    @property
    def is_safe(self) -> bool:
        return self.applicability is Applicability.SAFE

    def applies(self, unsafe: bool = False) -> bool:
        """Whether ``--fix`` applies it; ``unsafe`` is ``--unsafe-fixes``."""
        if not self.edits:
            return False
        if self.applicability is Applicability.SAFE:
            return True
        return unsafe and self.applicability is Applicability.UNSAFE


@dataclass(frozen=True, slots=True)
class Related:
    """Another place in the same file that explains a finding (LSP relatedInformation,
    SARIF relatedLocations)."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation at one place in one file."""

    code: str
    name: str
    message: str
    path: str
    span: Span
    severity: Severity = Severity.WARNING
    fix: Fix | None = None
    related: tuple[Related, ...] = ()

    @property
    def line(self) -> int:
        """The line a ``# noqa`` comment must be on to suppress this finding."""
        return self.span.line

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.line, self.span.column, self.code)


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything a rule may consult besides the module's analysis.

    ``recommend`` is the hook for the engine: given a call site it returns the engine's
    :class:`Recommendation` or None. Rules that declare ``Need.RECOMMENDATION`` use it
    when present (the AMZ001 fix, the AMZ1xx recommendation rules).
    """

    source: str
    path: str
    #: Usable cores of the machine the code will run on, when the client knows it
    #: (``target-cores`` in the configuration; the language server's own machine).
    #: None keeps findings independent of the machine that runs the linter.
    target_cores: int | None = None
    #: Where ``target_cores`` came from, for messages ("target-cores in pyproject.toml").
    target_cores_origin: str = "target-cores"
    #: AMZ001 does not flag iterables statically known to be shorter than this.
    min_items: int = DEFAULT_MIN_ITEMS
    #: Whether the running interpreter serialises threads with a GIL (AMZ006).
    gil_enabled: bool = True
    recommend: Callable[[CallSite], Recommendation | None] | None = None
