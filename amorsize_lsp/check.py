"""The one way into checking a file, shared by ``amorsize-lint``, the language server
and the daemon: decode, prefilter, analyse, run the selected rules, apply ``noqa``.

Every client goes through :func:`check_source` (and :func:`fix_source` to apply
fixes), so a file gets the same findings and the same errors wherever it is checked.
Bad input never raises: it comes back as a :class:`CheckError` with the place and
what to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from amorsize_lsp.analysis.driver import analyze_source, decode_source, may_contain_callsites
from amorsize_lsp.analysis.model import AnalysisError, CallSite, ModuleAnalysis, apply_edits
from amorsize_lsp.rules.model import DEFAULT_MIN_ITEMS, Finding, Need, RuleContext
from amorsize_lsp.rules.noqa import filter_suppressed
from amorsize_lsp.rules.registry import all_rules, check_module, needs_of

__all__ = [
    "CheckError",
    "CheckResult",
    "CheckSettings",
    "FixOutcome",
    "check_source",
    "fix_source",
]

#: Re-analyse and fix again at most this many times per file (fixes can overlap).
MAX_FIX_ROUNDS = 10

RecommendHook = Callable[[CallSite], object]


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """What to check and against which machine; picklable, so workers can receive it."""

    #: Enabled rule codes; None enables every rule.
    codes: frozenset[str] | None = None
    #: Usable cores of the machine the code will run on; None: unknown, and findings
    #: that would depend on it (AMZ005) stay silent rather than use the linting machine.
    target_cores: int | None = None
    #: Where ``target_cores`` came from, for messages.
    target_cores_origin: str = "target-cores"
    min_items: int = DEFAULT_MIN_ITEMS
    #: Directories where the mapped function's module may be found (imported functions).
    search_path: tuple[str, ...] = ()
    #: Whether threads share a GIL where the code runs; None: the engine's detection.
    gil_enabled: bool | None = None
    #: Compute every call site's complexity even when no selected rule needs it.
    complexity: bool = False


@dataclass(frozen=True, slots=True)
class CheckError:
    """Why a file could not be checked (E999): 1-based line, 0-based column."""

    path: str
    message: str
    line: int = 1
    column: int = 0


@dataclass(slots=True)
class CheckResult:
    """Everything one check of one file produced."""

    path: str
    #: The decoded source, or None when it could not be decoded.
    text: str | None = None
    encoding: str = "utf-8"
    analysis: ModuleAnalysis | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)
    #: False when the prefilter showed the file cannot hold pool code (nothing parsed).
    parsed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True)
class FixOutcome:
    """The result of applying fixes until none applies."""

    text: str
    #: Fixes applied, by rule code.
    fixed: Counter[str]
    #: One message per fix that was not applied because the result would not parse.
    rejected: list[str]
    #: The check of the fixed text (what remains).
    result: CheckResult


def check_source(
    source: str | bytes,
    path: str,
    settings: CheckSettings | None = None,
    *,
    recommend: RecommendHook | None = None,
) -> CheckResult:
    """Check one file's source; never raises for bad input.

    ``source`` is the file's bytes (decoded per PEP 263) or already-decoded text.
    ``recommend`` is the engine hook for rules that declare ``Need.RECOMMENDATION``.
    """
    settings = settings or CheckSettings()
    result = CheckResult(path=path)
    try:
        result.text, result.encoding = decode_source(source, path)
        if not may_contain_callsites(result.text):
            result.analysis = ModuleAnalysis(path=path)
            return result
        _run(result, result.text, settings, recommend)
    except AnalysisError as exc:
        result.errors.append(CheckError(path, exc.message, exc.line, exc.column))
    except RecursionError:
        result.errors.append(
            CheckError(path, "file is too deeply nested to analyse; exclude it from analysis")
        )
    except Exception as exc:  # an analyser bug must not hide other files' results
        result.errors.append(
            CheckError(
                path,
                f"internal error while analysing: {type(exc).__name__}: {exc}; "
                "please report this with the file",
            )
        )
    return result


def _run(
    result: CheckResult, text: str, settings: CheckSettings, recommend: RecommendHook | None
) -> None:
    needs = needs_of(settings.codes)
    analysis = analyze_source(
        text,
        result.path,
        search_path=settings.search_path,
        complexity=settings.complexity or Need.COMPLEXITY in needs,
        prefilter=False,
    )
    result.analysis = analysis
    result.parsed = True
    findings = check_module(
        analysis, _context(text, result.path, settings, recommend), settings.codes
    )
    result.findings, result.suppressed = filter_suppressed(findings, text)


def site_rule_codes(codes: frozenset[str] | None) -> list[str]:
    """The selected rules that read a call site's complexity or advice (see ``Need``)."""
    per_site = {Need.COMPLEXITY, Need.RECOMMENDATION}
    rules = all_rules() if codes is None else [r for r in all_rules() if r.code in codes]
    return [r.code for r in rules if r.needs & per_site]


def recheck_callsites(
    text: str,
    path: str,
    settings: CheckSettings,
    callsites: Sequence[CallSite],
    *,
    recommend: RecommendHook | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """(kept, suppressed) findings of the per-site rules for ``callsites`` of ``text``.

    For an editor edit that changed only what these sites map (their complexity, and
    so their advice): the other rules' findings cannot have changed. The sites'
    spans must be those of ``text``.
    """
    codes = site_rule_codes(settings.codes)
    if not codes or not callsites:
        return [], []
    ctx = _context(text, path, settings, recommend)
    findings = check_module(ModuleAnalysis(path=path, callsites=list(callsites)), ctx, codes)
    return filter_suppressed(findings, text)


def _context(
    text: str, path: str, settings: CheckSettings, recommend: RecommendHook | None
) -> RuleContext:
    needs = needs_of(settings.codes)
    return RuleContext(
        source=text,
        path=path,
        target_cores=settings.target_cores,
        target_cores_origin=settings.target_cores_origin,
        min_items=settings.min_items,
        gil_enabled=_gil_enabled(settings),
        recommend=recommend if Need.RECOMMENDATION in needs else None,  # type: ignore[arg-type]
    )


def _gil_enabled(settings: CheckSettings) -> bool:
    if settings.gil_enabled is not None:
        return settings.gil_enabled
    from amorsize_lsp.engine.system import gil_enabled

    return gil_enabled()


def fix_source(
    text: str,
    path: str,
    settings: CheckSettings | None = None,
    *,
    unsafe: bool = False,
    recommend: RecommendHook | None = None,
    first: CheckResult | None = None,
) -> FixOutcome:
    """Apply fixes until none applies; every intermediate text must parse.

    ``unsafe`` also applies unsafe fixes (``--unsafe-fixes``). ``first`` is an
    existing check of ``text``, to save analysing it again. Fixes whose result would
    not parse are dropped, one message each in ``rejected``.
    """
    from amorsize_lsp.analysis.edits import source_parses

    settings = settings or CheckSettings()
    result = first or check_source(text, path, settings, recommend=recommend)
    fixed: Counter[str] = Counter()
    rejected_keys: set[tuple[str, int, int]] = set()
    rejected: list[str] = []
    current = text
    for _ in range(MAX_FIX_ROUNDS):
        if not result.ok:
            break
        chosen = _non_overlapping(
            f
            for f in result.findings
            if f.fix is not None
            and f.fix.applies(unsafe)
            and (f.code, f.span.line, f.span.column) not in rejected_keys
        )
        if not chosen:
            break
        new_text = _apply(current, chosen)
        if not source_parses(new_text):
            # Find the culprits one by one; apply only the fixes that keep it parseable.
            good: list[Finding] = []
            for finding in chosen:
                if source_parses(_apply(current, [*good, finding])):
                    good.append(finding)
                    continue
                rejected_keys.add((finding.code, finding.span.line, finding.span.column))
                rejected.append(
                    f"{path}:{finding.span.where()}: {finding.code} fix not applied: "
                    "the result would not parse"
                )
            chosen = good
            new_text = _apply(current, chosen) if chosen else current
        if new_text == current:
            break
        candidate = check_source(new_text, path, settings, recommend=recommend)
        if not candidate.ok:  # cannot happen for text that parses; keep the last good one
            break
        fixed.update(f.code for f in chosen)
        current, result = new_text, candidate
    return FixOutcome(current, fixed, rejected, result)


def _non_overlapping(findings) -> list[Finding]:
    """Findings whose edits overlap no earlier one's, in source order."""
    chosen: list[Finding] = []
    taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for finding in sorted(findings, key=Finding.sort_key):
        ranges = [_range(e.span) for e in finding.fix.edits]  # type: ignore[union-attr]
        if any(_overlaps(r, t) for r in ranges for t in taken):
            continue
        chosen.append(finding)
        taken.extend(ranges)
    return chosen


def _range(span) -> tuple[tuple[int, int], tuple[int, int]]:
    return (span.line, span.column), (span.end_line, span.end_column)


def _overlaps(a, b) -> bool:
    (a0, a1), (b0, b1) = a, b
    return not (a1 <= b0 or b1 <= a0) or a0 == b0


def _apply(text: str, findings: Sequence[Finding]) -> str:
    return apply_edits(text, [e for f in findings for e in f.fix.edits])  # type: ignore[union-attr]
