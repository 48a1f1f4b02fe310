"""Lint files: read and decode them, prefilter, then check each through the shared
seam (:func:`amorsize_lsp.check.check_source`, and ``fix_source`` for ``--fix``).

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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.driver import decode_source, may_contain_callsites
from amorsize_lsp.analysis.model import AnalysisError
from amorsize_lsp.check import CheckError, CheckSettings, check_source, fix_source
from amorsize_lsp.rules.model import Finding

#: Above this many files (after the prefilter), analyse them in a process pool.
PARALLEL_THRESHOLD = 32
#: ... or when they hold this much text (about half a second of parsing).
PARALLEL_MIN_CHARS = 200_000
#: Past this many files, send them to workers in chunks rather than one by one.
MANY_FILES = 256

#: Why a file could not be analysed; reported as E999 in every format.
FileError = CheckError


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs besides the file; picklable."""

    check: CheckSettings
    fix: bool = False
    unsafe_fixes: bool = False
    show_callsites: bool = False
    #: Read-only advice for the recommendation rules: (store path or None for the
    #: default, project roots); None: no advice.
    advice: tuple[str | None, tuple[str, ...]] | None = None


#: One read-only advice source per process and settings (workers open their own).
_ADVICE: dict[tuple[str | None, tuple[str, ...]], Any] = {}


def _recommend(settings: Settings):
    if settings.advice is None:
        return None
    from amorsize_lsp.advice import StoreAdvice, recommend_hook

    source = _ADVICE.get(settings.advice)
    if source is None:
        db, roots = settings.advice
        source = _ADVICE[settings.advice] = StoreAdvice(db, [Path(r) for r in roots])
    return recommend_hook(source.recommend)


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


def process_file(job: Job, settings: Settings) -> FileReport:
    """Check one decoded file through the shared seam; never raises for bad input."""
    check = replace(settings.check, codes=job.codes, complexity=settings.show_callsites)
    recommend = _recommend(settings)
    result = check_source(job.text, job.path, check, recommend=recommend)
    report = FileReport(path=job.path)
    if result.errors:
        report.error = result.errors[0]
        return report
    report.analysed = True
    report.suppressed = len(result.suppressed)
    if settings.show_callsites and result.analysis is not None:
        report.callsites = [site.to_json() for site in result.analysis.callsites]
    report.findings = result.findings
    if settings.fix and any(
        f.fix and f.fix.applies(settings.unsafe_fixes) for f in result.findings
    ):
        try:
            outcome = fix_source(
                job.text,
                job.path,
                check,
                unsafe=settings.unsafe_fixes,
                first=result,
                recommend=recommend,
            )
        except Exception as exc:  # a fixer bug must not lose the findings
            report.rejected.append(
                f"{job.path}: fixes not applied: internal error: {type(exc).__name__}: {exc}; "
                "please report this with the file"
            )
            return report
        report.rejected = outcome.rejected
        report.fixed = outcome.fixed
        report.findings = outcome.result.findings
        report.suppressed = len(outcome.result.suppressed)
        if outcome.text != job.text:
            report.original = job.text
            report.fixed_text = outcome.text
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
    """Read and decode a file; None when the prefilter rules out every call site.

    Decoding comes first, so the prefilter never hides a file that is not text.
    """
    try:
        if data is None:
            data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return FileReport(display, error=FileError(display, f"cannot read file: {reason}"))
    try:
        text, encoding = decode_source(data, display)
    except AnalysisError as exc:
        return FileReport(display, error=FileError(display, exc.message, exc.line, exc.column))
    if not may_contain_callsites(text):
        return None
    encodings[display] = encoding
    return Job(display, text, codes)
