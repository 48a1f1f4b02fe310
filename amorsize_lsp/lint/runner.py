"""Lint files: read and decode them, prefilter, then check each through the shared
seam (:func:`amorsize_lsp.check.check_source`, and ``fix_source`` for ``--fix``).

Files that the cheap textual prefilter rules out are never parsed. When more than
:data:`PARALLEL_THRESHOLD` files (or :data:`PARALLEL_MIN_CHARS` of text) remain,
they are analysed in a process pool (:class:`JobStream`, started while discovery
goes on). A file costs milliseconds to analyse, far more than its IPC, so up to
:data:`MANY_FILES` files go one per task for load balance; past that, in batches
of :data:`BATCH`.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.driver import decode_source, may_contain_callsites
from amorsize_lsp.analysis.model import AnalysisError
from amorsize_lsp.check import CheckError, CheckSettings, check_source, fix_source
from amorsize_lsp.config import file_search_path
from amorsize_lsp.rules.model import Finding

#: Above this many files (after the prefilter), analyse them in a process pool.
PARALLEL_THRESHOLD = 32
#: ... or when they hold this much text (about half a second of parsing).
PARALLEL_MIN_CHARS = 200_000
#: Past this many files, send them to workers in chunks rather than one by one.
MANY_FILES = 256
#: Jobs per task past :data:`MANY_FILES` when the jobs are sent as they are found.
BATCH = 8
#: Once this many files were found, the first that needs analysis starts the pool.
STREAM_AFTER_FILES = PARALLEL_THRESHOLD
#: Cyclic GC thresholds while linting. libcst and ``ast`` make hundreds of thousands
#: of small objects per large file; at the default (700, 10, 10) the collector took
#: a fifth of the analysis time over the standard library, at these none of it,
#: with the same peak memory.
GC_THRESHOLDS = (20_000, 20, 20)

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


@contextlib.contextmanager
def analysis_gc() -> Iterator[None]:
    """Collect cycles less often while linting; the objects that exist now (modules,
    configuration) are frozen out of the collector's way, also in forked workers.

    Restores the collector as it was, so an embedding process is unaffected; one
    that froze objects itself keeps them frozen (and nothing more is frozen here).
    """
    global _freezing
    old = gc.get_threshold()
    owner = gc.get_freeze_count() == 0
    if owner:
        gc.freeze()
        _freezing = True
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if owner:
            _freezing = False
            gc.unfreeze()


#: Whether :func:`analysis_gc` owns the frozen objects (so more may be frozen).
_freezing = False


def _init_worker() -> None:
    """A pool worker's set-up (also when it is not forked from the linting process)."""
    gc.set_threshold(*GC_THRESHOLDS)


def usable_cores() -> int:
    """This machine's usable cores (affinity and cgroup quota), from the engine."""
    from amorsize_lsp.engine.system import usable_cores as engine_cores

    return max(1, int(engine_cores()))


def process_file(job: Job, settings: Settings) -> FileReport:
    """Check one decoded file through the shared seam; never raises for bad input."""
    check = replace(
        settings.check,
        codes=job.codes,
        complexity=settings.show_callsites,
        search_path=file_search_path(Path(job.path), settings.check.search_path),
    )
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


def should_parallelise(jobs: Sequence[Job], workers: int) -> bool:
    """Worth a process pool: more than a handful of files, or enough text to parse."""
    if workers < 2 or len(jobs) < 2:
        return False
    return len(jobs) > PARALLEL_THRESHOLD or sum(len(j.text) for j in jobs) > PARALLEL_MIN_CHARS


def process_batch(jobs: Sequence[Job], settings: Settings) -> list[FileReport]:
    """:func:`process_file` for each job: one task for a worker."""
    return [process_file(job, settings) for job in jobs]


class JobStream:
    """Analyses jobs as the caller finds them: serially, or in a process pool.

    Discovering, reading and prefiltering a large tree takes the parent a good part
    of a second, so the pool starts as soon as the work is worth it (the first job
    once :data:`STREAM_AFTER_FILES` files were seen, or enough jobs, see
    :func:`should_parallelise`) and the workers analyse while the parent goes on
    finding files. Jobs waiting when it starts go largest first; later ones in the
    order found, one per task, in batches of :data:`BATCH` past :data:`MANY_FILES`.
    A job whose worker died (out of memory, a crash in native code) is analysed in
    this process instead. Results come back in the order the jobs were added.
    """

    def __init__(self, settings: Settings, workers: int | None = None, *, stream: bool = True):
        self.settings = settings
        self.stream = stream
        self._workers = workers
        self._waiting: list[Job] = []
        self._batch: list[Job] = []
        self._submitted = 0
        self._tasks: list[tuple[list[Job], Any]] = []
        self._executor: Any = None
        self._order: dict[int, int] = {}
        #: Whether a process pool was started (for tests and diagnostics).
        self.parallel = False

    @property
    def workers(self) -> int:
        if self._workers is None:
            self._workers = usable_cores()
        return self._workers

    def warm_up(self) -> None:
        """Count the cores (it loads the engine, which every analysis needs) while
        this process would only wait for the first file to be read."""
        _ = self.workers

    def add(self, job: Job, files_seen: int = 0) -> None:
        """Queue ``job``; ``files_seen`` (found so far, prefiltered or not) may start the pool."""
        self._order[id(job)] = len(self._order)
        if self._executor is not None:
            self._submit(job)
            return
        self._waiting.append(job)
        if self.stream and self._worth_a_pool(files_seen):
            self._start()

    def _worth_a_pool(self, files_seen: int) -> bool:
        if self.workers >= 2 and files_seen > STREAM_AFTER_FILES:
            return True
        return should_parallelise(self._waiting, self.workers)

    def finish(self) -> list[FileReport]:
        """Every added job's report, in the order added; shuts the pool down."""
        if self._executor is None:
            if not should_parallelise(self._waiting, min(self.workers, len(self._waiting))):
                reports = [process_file(job, self.settings) for job in self._waiting]
                self._waiting = []
                return reports
            self._start()
        try:
            if self._batch:
                self._send(self._batch)
                self._batch = []
            done: list[tuple[Job, FileReport]] = []
            for jobs, task in self._tasks:
                done.extend(zip(jobs, self._result(jobs, task), strict=True))
        finally:
            self.close()
        done.sort(key=lambda pair: self._order[id(pair[0])])
        return [report for _, report in done]

    def close(self) -> None:
        """Stop the pool (at once when interrupted: queued tasks are cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _start(self) -> None:
        from concurrent.futures import ProcessPoolExecutor

        # Loaded once here, the analysis (libcst above all) is shared by the forked
        # workers instead of loaded by each.
        import libcst  # noqa: F401

        import amorsize_lsp.analysis.bytecode
        import amorsize_lsp.analysis.callsites
        import amorsize_lsp.analysis.import_time  # noqa: F401

        if _freezing:  # what was just loaded, too: the workers' collections skip it
            gc.freeze()
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=_pool_context(), initializer=_init_worker
        )
        self.parallel = True
        # Largest first, so the last tasks to finish are the cheap ones.
        waiting = sorted(self._waiting, key=lambda j: len(j.text), reverse=True)
        self._waiting = []
        for job in waiting:
            self._submit(job)

    def _submit(self, job: Job) -> None:
        if self._submitted + len(self._batch) < MANY_FILES:
            self._send([job])
            return
        self._batch.append(job)
        if len(self._batch) >= BATCH:
            self._send(self._batch)
            self._batch = []

    def _send(self, jobs: list[Job]) -> None:
        from concurrent.futures.process import BrokenProcessPool

        self._submitted += len(jobs)
        try:
            task = self._executor.submit(process_batch, jobs, self.settings)
        except BrokenProcessPool:
            task = None  # analysed here when the results are collected
        self._tasks.append((jobs, task))

    def _result(self, jobs: list[Job], task: Any) -> list[FileReport]:
        from concurrent.futures.process import BrokenProcessPool

        if task is not None:
            try:
                return task.result()
            except BrokenProcessPool:
                pass
        return [process_file(job, self.settings) for job in jobs]


def run_jobs(jobs: list[Job], settings: Settings, workers: int | None = None) -> list[FileReport]:
    """Analyse jobs that are all known, serially or in a process pool when there are many."""
    stream = JobStream(settings, workers, stream=False)
    for job in jobs:
        stream.add(job)
    return stream.finish()


#: What :func:`lint` takes: a file to lint, or a report made without reading one
#: (a path given on the command line that does not exist).
FileItem = tuple[Path, str, frozenset[str]] | FileReport


def lint(
    files: Iterable[FileItem],
    settings: Settings,
    *,
    encodings: dict[str, str] | None = None,
    contents: dict[str, bytes] | None = None,
    workers: int | None = None,
    background: bool = False,
) -> LintResult:
    """Lint ``(path, display path, enabled codes)`` triples (and pass reports through).

    ``files`` may be a generator (the CLI's discovery): files are read and
    prefiltered as they come, and the jobs go to the workers at once (see
    :class:`JobStream`). With ``background``, that reading runs in a forked child
    (:mod:`.background`) while this process loads the analysis and starts the pool.
    ``contents`` maps a display path to its bytes when they do not come from the
    file system (``-`` for standard input).
    """
    reports: list[FileReport] = []
    seen = 0
    file_encodings: dict[str, str] = {}
    stream = JobStream(settings, workers)
    items = _prepared(files, contents)
    if background and not contents:
        from .background import in_child

        items = in_child(items, while_waiting=stream.warm_up)
    with analysis_gc():
        try:
            for seen, prepared, encoding in items:
                if isinstance(prepared, FileReport):
                    reports.append(prepared)
                elif prepared is not None:
                    file_encodings[prepared.path] = encoding
                    stream.add(prepared, seen)
            analysed = stream.finish()
        finally:
            items.close()  # stops a reading child at once if something went wrong here
            stream.close()
    for report in analysed:
        report.encoding = file_encodings.get(report.path, "utf-8")
        reports.append(report)
    reports.sort(key=lambda r: r.path)
    if encodings is not None:
        encodings.update(file_encodings)
    return LintResult(reports, files_seen=seen)


def _prepared(
    files: Iterable[FileItem], contents: dict[str, bytes] | None
) -> Generator[tuple[int, Job | FileReport | None, str], None, None]:
    """``(files seen so far, job or error report, encoding)`` for each file the
    prefilter keeps or that failed, then ``(files seen, None, "")`` to end."""
    seen = 0
    for item in files:
        seen += 1
        if isinstance(item, FileReport):
            yield seen, item, "utf-8"
            continue
        path, display, codes = item
        data = contents.get(display) if contents else None
        encodings: dict[str, str] = {}
        prepared = prepare(path, display, codes, encodings, data)
        if prepared is not None:
            yield seen, prepared, encodings.get(display, "utf-8")
    yield seen, None, ""


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
