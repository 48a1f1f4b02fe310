"""Lint files: read, prefilter, analyse, check rules, apply noqa and fixes.

Files that the cheap textual prefilter rules out are never parsed. When more than
:data:`PARALLEL_THRESHOLD` files (or :data:`PARALLEL_MIN_CHARS` of text) remain,
they are analysed in a process pool, largest first. Our own AMZ001 advice decides
the chunksize: a file costs milliseconds to analyse, far more than its IPC, so up
to :data:`MANY_FILES` files go one per task for load balance; past that, the items
are many and cheap and each worker gets four large chunks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.model import AnalysisError
from amorsize_lsp.rules.amz006_cpu_bound_thread_pool import CODE as AMZ006
from amorsize_lsp.rules.model import Applicability, Finding, RuleContext
from amorsize_lsp.rules.noqa import filter_suppressed
from amorsize_lsp.rules.registry import check_module

#: Above this many files (after the prefilter), analyse them in a process pool.
PARALLEL_THRESHOLD = 32
#: ... or when they hold this much text (about half a second of parsing).
PARALLEL_MIN_CHARS = 200_000
#: Past this many files, send them to workers in chunks rather than one by one.
MANY_FILES = 256
#: Re-analyse and fix again at most this many times per file (fixes can overlap).
MAX_FIX_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class FileError:
    """Why a file could not be analysed; reported as E999 in every format."""

    path: str
    message: str
    line: int = 1
    column: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs besides the file; picklable."""

    target_cores: int
    target_cores_origin: str
    min_items: int = 50
    gil_enabled: bool = True
    fix: bool = False
    unsafe_fixes: bool = False
    show_callsites: bool = False
    search_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    path: str
    text: str
    codes: frozenset[str]


@dataclass(slots=True)
class FileReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    error: FileError | None = None
    callsites: list[dict[str, Any]] = field(default_factory=list)
    #: Original and fixed text, when fixes changed the file.
    original: str | None = None
    fixed_text: str | None = None
    fixed: Counter[str] = field(default_factory=Counter)
    #: Fixes that were dropped because the result did not parse.
    rejected: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    analysed: bool = False


@dataclass(slots=True)
class LintResult:
    reports: list[FileReport]
    #: Files found (before the prefilter), for the summary and the exit code.
    files_seen: int = 0

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.reports for f in r.findings]

    @property
    def errors(self) -> list[FileError]:
        return [r.error for r in self.reports if r.error is not None]

    @property
    def fixed(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for report in self.reports:
            total.update(report.fixed)
        return total

    @property
    def nothing_analysed(self) -> bool:
        """True when there were files but every one failed to read or parse."""
        return (
            bool(self.errors)
            and not any(r.error is None for r in self.reports)
            and self.files_seen == len(self.errors)
        )


def usable_cores() -> int:
    """This machine's usable cores (affinity and cgroup quota), from the engine."""
    from amorsize_lsp.engine.system import usable_cores as engine_cores

    return max(1, int(engine_cores()))


def _rule_context(job: Job, text: str, settings: Settings) -> RuleContext:
    return RuleContext(
        source=text,
        path=job.path,
        target_cores=settings.target_cores,
        target_cores_origin=settings.target_cores_origin,
        min_items=settings.min_items,
        gil_enabled=settings.gil_enabled,
    )


def _check(job: Job, text: str, settings: Settings):
    """Analyse ``text`` and run the selected rules: (kept, suppressed, analysis)."""
    from amorsize_lsp.analysis.driver import analyze_source

    needs_complexity = settings.show_callsites or AMZ006 in job.codes
    analysis = analyze_source(
        text, job.path, search_path=settings.search_path, complexity=needs_complexity
    )
    findings = check_module(analysis, _rule_context(job, text, settings), job.codes)
    kept, suppressed = filter_suppressed(findings, text)
    return kept, suppressed, analysis


def _applicable(finding: Finding, settings: Settings) -> bool:
    fix = finding.fix
    if fix is None or not fix.edits:
        return False
    if fix.applicability is Applicability.SAFE:
        return True
    return settings.unsafe_fixes and fix.applicability is Applicability.UNSAFE


def _edit_range(edit) -> tuple[tuple[int, int], tuple[int, int]]:
    s = edit.span
    return (s.line, s.column), (s.end_line, s.end_column)


def _overlaps(a, b) -> bool:
    (a0, a1), (b0, b1) = _edit_range(a), _edit_range(b)
    return not (a1 <= b0 or b1 <= a0) or a0 == b0


def _parses(text: str) -> bool:
    import libcst

    try:
        libcst.parse_module(text)
    except Exception:  # libcst raises ParserSyntaxError and, rarely, others
        return False
    return True


def _apply(text: str, findings: Sequence[Finding]) -> str:
    from amorsize_lsp.analysis.edits import apply_edits

    edits = [e for f in findings for e in f.fix.edits]  # type: ignore[union-attr]
    return apply_edits(text, edits)


def _fix_loop(job: Job, text: str, kept: list[Finding], settings: Settings, report: FileReport):
    """Apply fixes until none applies; every intermediate text must parse."""
    rejected: set[tuple[str, int, int]] = set()
    current = text
    for _ in range(MAX_FIX_ROUNDS):
        candidates = [
            f
            for f in kept
            if _applicable(f, settings) and (f.code, f.span.line, f.span.column) not in rejected
        ]
        if not candidates:
            break
        chosen: list[Finding] = []
        for finding in sorted(candidates, key=Finding.sort_key):
            edits = finding.fix.edits  # type: ignore[union-attr]
            if any(_overlaps(e, c) for e in edits for f in chosen for c in f.fix.edits):  # type: ignore[union-attr]
                continue
            chosen.append(finding)
        new_text = _apply(current, chosen)
        if not _parses(new_text):
            # Find the culprits one by one; apply only the fixes that keep it parseable.
            good: list[Finding] = []
            for finding in chosen:
                if _parses(_apply(current, [*good, finding])):
                    good.append(finding)
                else:
                    rejected.add((finding.code, finding.span.line, finding.span.column))
                    report.rejected.append(
                        f"{job.path}:{finding.span.line}:{finding.span.column + 1}: "
                        f"{finding.code} fix not applied: the result would not parse"
                    )
            chosen = good
            new_text = _apply(current, chosen) if chosen else current
        if new_text == current:
            break
        report.fixed.update(f.code for f in chosen)
        current = new_text
        try:
            kept, suppressed, _ = _check(job, current, settings)
        except AnalysisError:  # cannot happen for text that parses; keep the last good one
            break
        report.suppressed = len(suppressed)
    if current != text:
        report.original = text
        report.fixed_text = current
    report.findings = kept


def process_file(job: Job, settings: Settings) -> FileReport:
    """Analyse one decoded file; never raises for bad input."""
    report = FileReport(path=job.path)
    try:
        kept, suppressed, analysis = _check(job, job.text, settings)
    except AnalysisError as exc:
        report.error = FileError(job.path, exc.message, exc.line, exc.column)
        return report
    except RecursionError:
        report.error = FileError(job.path, "file is too deeply nested to analyse")
        return report
    except Exception as exc:  # an analyser bug must not hide other files' results
        report.error = FileError(
            job.path,
            f"internal error while analysing: {type(exc).__name__}: {exc}; "
            "please report this with the file",
        )
        return report
    report.analysed = True
    report.suppressed = len(suppressed)
    if settings.show_callsites:
        report.callsites = [site.to_json() for site in analysis.callsites]
    report.findings = kept
    if settings.fix and any(_applicable(f, settings) for f in kept):
        try:
            _fix_loop(job, job.text, kept, settings, report)
        except Exception as exc:  # a fixer bug must not lose the findings
            report.findings = kept
            report.original = report.fixed_text = None
            report.fixed.clear()
            report.rejected.append(
                f"{job.path}: fixes not applied: internal error: {type(exc).__name__}: {exc}; "
                "please report this with the file"
            )
    return report


def _pool_context():
    """``fork`` on Linux when this process has no other threads (cheap start, nothing
    to re-import); ``forkserver`` on Linux otherwise; the platform default elsewhere."""
    import multiprocessing
    import sys
    import threading

    if sys.platform != "linux":
        return None
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver")


def plan_chunksize(jobs: Sequence[Job], workers: int) -> int:
    """Items per task: large chunks only when there are many (cheap) files.

    Analysing a file costs milliseconds, far more than sending it to a worker, so a
    few hundred files go one by one (largest first, for load balance). Past
    :data:`MANY_FILES`, IPC adds up and each worker gets four chunks.
    """
    if len(jobs) <= MANY_FILES:
        return 1
    return max(1, math.ceil(len(jobs) / (4 * workers)))


def should_parallelise(jobs: Sequence[Job], workers: int) -> bool:
    """Worth a process pool: more than a handful of files, or enough text to parse."""
    if workers < 2 or len(jobs) < 2:
        return False
    return len(jobs) > PARALLEL_THRESHOLD or sum(len(j.text) for j in jobs) > PARALLEL_MIN_CHARS


def run_jobs(jobs: list[Job], settings: Settings, workers: int | None = None) -> list[FileReport]:
    """Analyse jobs serially, or in a process pool when there are many."""
    if workers is None:
        workers = min(usable_cores(), len(jobs))
    work = partial(process_file, settings=settings)
    if not should_parallelise(jobs, workers):
        return [work(job) for job in jobs]
    # Largest files first, so the last tasks to finish are the cheap ones.
    ordered = sorted(jobs, key=lambda j: len(j.text), reverse=True)
    chunksize = plan_chunksize(ordered, workers)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as executor:
            return list(executor.map(work, ordered, chunksize=chunksize))
    except BrokenProcessPool:
        # A worker died (out of memory, a crash in native code): finish here instead.
        return [work(job) for job in jobs]


def lint(
    files: Iterable[tuple[Path, str, frozenset[str]]],
    settings: Settings,
    *,
    encodings: dict[str, str] | None = None,
    contents: dict[str, bytes] | None = None,
) -> LintResult:
    """Lint ``(path, display path, enabled codes)`` triples.

    ``contents`` maps a display path to its bytes when they do not come from the
    file system (``-`` for standard input).
    """
    reports: list[FileReport] = []
    jobs: list[Job] = []
    seen = 0
    file_encodings: dict[str, str] = {}
    for path, display, codes in files:
        seen += 1
        data = contents.get(display) if contents else None
        prepared = prepare(path, display, codes, file_encodings, data)
        if prepared is None:
            continue
        if isinstance(prepared, FileReport):
            reports.append(prepared)
        else:
            jobs.append(prepared)
    for report in run_jobs(jobs, settings):
        report.encoding = file_encodings.get(report.path, "utf-8")
        reports.append(report)
    reports.sort(key=lambda r: r.path)
    if encodings is not None:
        encodings.update(file_encodings)
    return LintResult(reports, files_seen=seen)


def prepare(
    path: Path,
    display: str,
    codes: frozenset[str],
    encodings: dict[str, str],
    data: bytes | None = None,
) -> Job | FileReport | None:
    """Read and decode a file; None when the prefilter rules out every call site."""
    from amorsize_lsp.analysis.driver import decode_bytes, may_contain_callsites

    try:
        if data is None:
            data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return FileReport(display, error=FileError(display, f"cannot read file: {reason}"))
    try:
        text, encoding = decode_bytes(data, display)
    except AnalysisError as exc:
        return FileReport(display, error=FileError(display, exc.message, exc.line, exc.column))
    if not may_contain_callsites(text):
        return None
    encodings[display] = encoding
    return Job(display, text, codes)
