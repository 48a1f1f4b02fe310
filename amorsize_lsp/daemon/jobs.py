"""The sampling queue: one job at a time, each in the engine's sampler subprocess.

Timing needs a quiet CPU, so jobs run one at a time by default, and a sample taken
while the machine was busy is kept but marked noisy (its confidence lowered and
the reasons stated). Everything slow (reading and analysing the file, the sampler
subprocess, the store) runs off the event loop, so ``recommend`` never waits for a
sample. User code runs only in the sampler's subprocess, under time and memory
limits; a job whose function hangs, crashes or eats memory fails with the
sampler's precise message and the daemon carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import resource
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.analysis.model import EXECUTOR_KINDS, AnalysisError
from amorsize_lsp.daemon.advisor import NOISY_FACTOR
from amorsize_lsp.engine import cost
from amorsize_lsp.engine.sampler import SampleResult, sample_callsite
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import MEASURED, WorkloadProfile

log = logging.getLogger("amorsize.daemon")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
#: Set in the sampler's environment so that ``cancel`` can find the job's process.
JOB_ENV = "AMORSIZE_DAEMON_JOB"
#: A CPU-bound sample that got less CPU than this share of its wall time was preempted.
MIN_CPU_SHARE = 0.7
DEFAULT_MEMORY_MB = 2048
MAX_BUDGET_S = 60.0
STAR_METHODS = frozenset({"starmap", "starmap_async"})


class JobFailure(Exception):
    """A job that cannot run: ``kind`` is machine-readable, the message is for people."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(slots=True)
class Job:
    """One sampling request and, once finished, its result or its failure."""

    id: str
    path: str
    line: int
    interpreter: str
    budget_s: float
    state: str = QUEUED
    phase: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    cancel_requested: bool = False
    #: Who asked (the server's connection object); progress goes only there.
    owner: Any = None

    def to_json(self, position: int | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "phase": self.phase,
            "path": self.path,
            "line": self.line,
            "interpreter": self.interpreter,
            "budget_s": self.budget_s,
            "position": position,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }


def find_callsite(path: str, line: int) -> dict[str, Any]:
    """The call site at ``path:line``, analysed from the file on disk (with complexity)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise JobFailure("unreadable", f"cannot read {path}: {e.strerror or e}") from None
    try:
        analysis = analyze_source(data, path, complexity=True)
    except AnalysisError as e:
        raise JobFailure("analysis", f"cannot analyse {e}") from None
    sites = [s.to_json() for s in analysis.callsites]
    exact = [s for s in sites if s["line"] == line]
    spanning = [s for s in sites if s["line"] <= line <= s["end_line"]]
    if exact or spanning:
        # The innermost call when calls nest on one line range: the one starting last.
        return max(exact or spanning, key=lambda s: (s["line"], s["column"]))
    if not sites:
        raise JobFailure("no_callsite", f"{path}:{line}: this file has no pool-map call sites")
    lines = ", ".join(str(s["line"]) for s in sites[:10])
    raise JobFailure(
        "no_callsite",
        f"{path}:{line}: no pool-map call on this line; the call sites in this file are on "
        f"line(s) {lines}",
    )


def assess_noise(
    load_avg: float,
    usable_cores: int,
    cpu_s: float | None,
    wall_s: float,
    cpu_fraction: float,
) -> list[str]:
    """Why a sample cannot be trusted fully: a busy machine, or a preempted sampler.

    ``cpu_s`` is the sampler process's CPU time and ``wall_s`` its lifetime. A
    function that waits (``cpu_fraction`` below 0.9) is expected to use little CPU,
    so only CPU-bound samples are judged by their CPU share.
    """
    reasons: list[str] = []
    limit = usable_cores - 0.5
    if load_avg > limit:
        reasons.append(
            f"the load average was {load_avg:.2f}, above {limit:g} ({usable_cores} usable "
            "cores minus 0.5): other work competed for the CPU"
        )
    if cpu_s is not None and wall_s > 0.05 and cpu_fraction >= 0.9:
        share = cpu_s / wall_s
        if share < MIN_CPU_SHARE:
            reasons.append(
                f"the sampler got {cpu_s:.2f} s of CPU in {wall_s:.2f} s of wall time "
                f"({share:.0%}) for a CPU-bound function: it was preempted"
            )
    return reasons


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def store_sample(
    store: Any,
    advisor: Any,
    system: SystemProfile,
    callsite: dict[str, Any],
    profile: WorkloadProfile,
    noise: list[str],
) -> tuple[int, dict[str, Any] | None]:
    """Store a sampled profile and return (row id, the recommendation it now gives).

    Runs on the daemon's store thread. The recommendation comes from the advisor
    (so it matches what ``recommend`` answers next, a noisy profile's confidence
    lowered there); the cost model directly is the fallback when the advisor has
    nothing to say for this call site. The noise reasons are added to its reasons.
    """
    row = store.add_profile(
        callsite=callsite,
        profile=profile,
        source="sample",
        machine=system.fingerprint,
        noisy=bool(noise),
    )
    advisor.profile_added()
    rec = advisor.recommend(callsite)
    if rec is None:
        kind = EXECUTOR_KINDS.get(callsite.get("executor") or "")
        if kind is not None:
            made = cost.recommend(profile, system, kind)
            made.source = MEASURED
            if noise:  # the advisor lowers a noisy profile's confidence; do the same here
                made.confidence *= NOISY_FACTOR
            rec = made.to_dict()
    if rec is not None and noise:
        rec["reasons"] = [*list(rec.get("reasons") or []), "why noisy: " + "; ".join(noise)]
    return row, rec


def _kill_job_processes(job_id: str) -> int:
    """SIGKILL the process group of every sampler started for ``job_id``; how many."""
    import psutil

    killed = 0
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            if child.environ().get(JOB_ENV) != job_id:
                continue
            os.killpg(child.pid, signal.SIGKILL)
            killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


Notify = Callable[[Job, dict[str, Any]], None]
StoreFn = Callable[
    [dict[str, Any], WorkloadProfile, list[str]], Awaitable[tuple[int, dict[str, Any] | None]]
]


class JobQueue:
    """FIFO of sampling jobs run by ``concurrency`` workers on the event loop.

    ``store`` is awaited with (callsite, profile, noise reasons) and returns (row id,
    recommendation); ``notify`` receives each progress event for the job's owner.
    """

    def __init__(
        self,
        *,
        system: SystemProfile,
        store: StoreFn,
        notify: Notify,
        concurrency: int = 1,
        memory_mb: float = DEFAULT_MEMORY_MB,
        max_history: int = 500,
    ) -> None:
        self.system = system
        self._store = store
        self._notify = notify
        self.concurrency = max(1, concurrency)
        self.memory_mb = memory_mb
        self._max_history = max_history
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending: asyncio.Queue[Job] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{int(time.time()):x}"
        self._executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="amorsize-job"
        )
        self._workers: list[asyncio.Task[None]] = []
        self.counts = {DONE: 0, FAILED: 0, CANCELLED: 0, "noisy": 0}
        self.last_noise: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(), name=f"amorsize-job-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        """Kill running samplers, cancel the workers, and join the executor."""
        for job in self._jobs.values():
            if job.state == RUNNING:
                job.cancel_requested = True
                await asyncio.get_running_loop().run_in_executor(None, _kill_job_processes, job.id)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=True, cancel_futures=True)

    # --------------------------------------------------------------------- queries

    def submit(
        self, path: str, line: int, interpreter: str, budget_s: float, owner: Any = None
    ) -> Job:
        job = Job(
            id=f"{self._prefix}-{next(self._ids)}",
            path=path,
            line=line,
            interpreter=interpreter,
            budget_s=budget_s,
            owner=owner,
        )
        self._jobs[job.id] = job
        self._trim()
        self._pending.put_nowait(job)
        self._emit(job, "queued")
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1-based place in the queue of a queued job (None once it runs)."""
        if job.state != QUEUED:
            return None
        queued = [j for j in self._jobs.values() if j.state == QUEUED]
        return queued.index(job) + 1

    @property
    def queue_length(self) -> int:
        return sum(1 for j in self._jobs.values() if j.state == QUEUED)

    @property
    def running(self) -> int:
        return sum(1 for j in self._jobs.values() if j.state == RUNNING)

    @property
    def busy(self) -> bool:
        return any(j.state in (QUEUED, RUNNING) for j in self._jobs.values())

    async def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.state in FINISHED:
            return job
        job.cancel_requested = True
        if job.state == QUEUED:
            self._finish(job, CANCELLED, error=None)
        else:
            await asyncio.get_running_loop().run_in_executor(None, _kill_job_processes, job.id)
        return job

    def forget_owner(self, owner: Any) -> None:
        """The client went away: its jobs still run, but progress has no one to go to."""
        for job in self._jobs.values():
            if job.owner is owner:
                job.owner = None

    # -------------------------------------------------------------------- running

    def _trim(self) -> None:
        while len(self._jobs) > self._max_history:
            oldest = next(iter(self._jobs.values()))
            if oldest.state not in FINISHED:
                break
            self._jobs.popitem(last=False)

    def _emit(self, job: Job, state: str, **extra: Any) -> None:
        if job.owner is None:
            return
        event = {"job": job.id, "state": state, "phase": job.phase, **extra}
        try:
            self._notify(job, event)
        except Exception:  # a broken connection must not fail the job
            log.debug("progress notification for %s failed", job.id, exc_info=True)

    def _finish(
        self,
        job: Job,
        state: str,
        *,
        error: dict[str, Any] | None,
        result: dict[str, Any] | None = None,
    ) -> None:
        job.state = state
        job.phase = None
        job.error = error
        job.result = result
        job.finished_at = time.time()
        self.counts[state] += 1
        extra: dict[str, Any] = {}
        if error is not None:
            extra["error"] = error
        if result is not None:
            extra["result"] = result
        self._emit(job, state, **extra)

    async def _worker(self) -> None:
        while True:
            job = await self._pending.get()
            if job.state != QUEUED:  # cancelled while waiting
                continue
            try:
                await self._run(job)
            except asyncio.CancelledError:
                if job.state not in FINISHED:
                    self._finish(
                        job,
                        CANCELLED,
                        error={"kind": "cancelled", "message": "the daemon shut down"},
                    )
                raise
            except Exception as e:  # a bug of ours: report it on the job, keep serving
                log.exception("sampling job %s failed", job.id)
                self._finish(
                    job,
                    FAILED,
                    error={"kind": "internal", "message": f"{type(e).__name__}: {e}"},
                )

    def _phase(self, job: Job, phase: str) -> None:
        job.phase = phase
        self._emit(job, RUNNING)

    async def _run(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        job.state = RUNNING
        job.started_at = time.time()
        self._phase(job, "analysing")
        try:
            callsite = await loop.run_in_executor(self._executor, find_callsite, job.path, job.line)
        except JobFailure as e:
            self._finish(job, FAILED, error={"kind": e.kind, "message": e.message})
            return
        if job.cancel_requested:
            self._finish(job, CANCELLED, error=None)
            return
        self._phase(job, "sampling")
        load_avg = os.getloadavg()[0]
        cpu0 = _children_cpu_s()
        res: SampleResult = await loop.run_in_executor(self._executor, self._sample, job, callsite)
        cpu_s = _children_cpu_s() - cpu0 if self.concurrency == 1 else None
        if job.cancel_requested:
            self._finish(
                job, CANCELLED, error={"kind": "cancelled", "message": "cancelled by request"}
            )
            return
        if not res.ok or res.profile is None:
            self._finish(
                job,
                FAILED,
                error={
                    "kind": res.error or "internal",
                    "message": res.message,
                    "returncode": res.returncode,
                    "stderr_tail": res.stderr_tail,
                },
            )
            return
        noise = assess_noise(
            load_avg, self.system.usable_cores, cpu_s, res.wall_s, res.profile.cpu_fraction
        )
        self._phase(job, "storing")
        row, rec = await self._store(callsite, res.profile, noise)
        if noise:
            self.counts["noisy"] += 1
        self.last_noise = noise
        self._finish(
            job,
            DONE,
            error=None,
            result={
                "recommendation": rec,
                "profile": res.profile.to_dict(),
                "profile_id": row,
                "callsite": callsite,
                "noisy": bool(noise),
                "noise": noise,
                "load_avg": load_avg,
                "sampler_cpu_s": cpu_s,
                "sampler_wall_s": res.wall_s,
                "resolved_from": res.resolved_from,
            },
        )

    def _sample(self, job: Job, callsite: dict[str, Any]) -> SampleResult:
        env = dict(os.environ)
        env[JOB_ENV] = job.id
        return sample_callsite(
            job.interpreter,
            job.path,
            str(callsite.get("function") or ""),
            callsite.get("iterable"),
            line=int(callsite["line"]),
            budget_s=job.budget_s,
            memory_mb=self.memory_mb,
            star=callsite.get("method") in STAR_METHODS,
            env=env,
        )


def default_interpreter() -> str:
    """The interpreter used when a sample request names none: the daemon's own."""
    return sys.executable
