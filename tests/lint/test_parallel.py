from pathlib import Path

from lint_helpers import BAD_EXECUTOR, CLEAN, UNRELATED, lint, write

from amorsize_lsp.check import CheckSettings, check_source
from amorsize_lsp.lint import runner
from amorsize_lsp.lint.runner import PARALLEL_THRESHOLD, Job, Settings, run_jobs
from amorsize_lsp.rules.registry import all_rules

SETTINGS = Settings(CheckSettings(target_cores=4, target_cores_origin="test"))
CODES = frozenset(rule.code for rule in all_rules())


def _jobs(n):
    jobs = []
    for i in range(n):
        text = BAD_EXECUTOR if i % 3 else CLEAN
        jobs.append(Job(f"f{i:03}.py", text + "\n" * i, CODES))
    return jobs


def _summary(reports):
    return sorted(
        (r.path, [(f.code, f.span.line, f.span.column, f.message) for f in r.findings])
        for r in reports
    )


def test_process_pool_gives_the_same_results_as_serial():
    jobs = _jobs(PARALLEL_THRESHOLD + 8)
    serial = run_jobs(jobs, SETTINGS, workers=1)
    parallel = run_jobs(jobs, SETTINGS, workers=2)
    assert _summary(parallel) == _summary(serial)
    # Every job's findings are those of checking its text alone, so none were lost.
    expected = sum(len(check_source(j.text, j.path, SETTINGS.check).findings) for j in jobs)
    assert expected > 0
    assert sum(len(r.findings) for r in parallel) == expected


def test_many_files_through_the_cli(tmp_path, monkeypatch):
    files = {f"pkg/m{i:03}.py": BAD_EXECUTOR for i in range(40)}
    files.update({f"pkg/other{i:03}.py": UNRELATED for i in range(40)})
    write(tmp_path, files)
    added = []
    streams = []
    original = runner.JobStream.add

    def spy(self, job, files_seen=0):
        added.append(job.path)
        streams.append(self)
        original(self, job, files_seen)

    monkeypatch.setattr(runner.JobStream, "add", spy)
    monkeypatch.setattr(runner, "usable_cores", lambda: 2)
    run = lint("--format", "concise", cwd=tmp_path)
    assert run.code == 1
    # The prefilter dropped the 40 unrelated files before analysis.
    assert len(added) == len([name for name, text in files.items() if text == BAD_EXECUTOR])
    assert streams[-1].parallel
    lines = run.out.splitlines()
    assert len(lines) == 40
    assert lines == sorted(lines)
    assert all(Path(line.split(":")[0]).parent.name == "pkg" for line in lines)


PARENT = None


def _crash_in_workers(job, settings):
    import os

    if os.getpid() != PARENT:
        os._exit(3)  # a worker dying as if the native parser crashed
    return runner.process_file.__wrapped__(job, settings)


def test_a_dead_worker_does_not_lose_results(monkeypatch):
    import functools
    import os

    global PARENT
    PARENT = os.getpid()
    real = runner.process_file
    crashing = functools.wraps(real)(_crash_in_workers)
    monkeypatch.setattr(runner, "process_file", crashing)
    jobs = _jobs(PARALLEL_THRESHOLD + 2)
    reports = run_jobs(jobs, SETTINGS, workers=2)
    assert _summary(reports) == _summary(run_jobs(jobs, SETTINGS, workers=1))
    assert len(reports) == len(jobs)
