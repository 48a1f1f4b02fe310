"""Streaming: files read in a forked child, jobs sent to the pool as they are found.

Every test compares against the plain way (read here, analyse serially), so a
streamed run must give the same reports, errors, order and exit code.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from lint_helpers import BAD_EXECUTOR, CLEAN, UNRELATED, lint, write

from amorsize_lsp.check import CheckSettings
from amorsize_lsp.lint import background, runner
from amorsize_lsp.lint.runner import STREAM_AFTER_FILES, FileReport, Job, JobStream, Settings
from amorsize_lsp.rules.registry import all_rules

pytestmark = pytest.mark.skipif(not background.can_fork(), reason="needs fork")

SETTINGS = Settings(CheckSettings(target_cores=4, target_cores_origin="test"))
CODES = frozenset(rule.code for rule in all_rules())
BROKEN = "from multiprocessing import Pool\n\ndef f(:\n    pass\n"


def _tree(root: Path) -> dict[str, bytes]:
    """More files than the streaming threshold, good and bad, pool code and not."""
    files: dict[str, bytes] = {}
    for i in range(STREAM_AFTER_FILES + 10):
        text = (BAD_EXECUTOR, CLEAN, UNRELATED)[i % 3]
        files[f"pkg/m{i:03}.py"] = text.encode()
    files["pkg/zz_broken.py"] = BROKEN.encode()
    files["pkg/latin.py"] = b"x = '\xe9'\n"  # not UTF-8 and no coding comment
    files["pkg/nul.py"] = b"import os\0\n"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _items(root: Path, names, codes=CODES):
    return [(root / name, name, codes) for name in sorted(names)]


def _summary(result):
    return [
        (
            r.path,
            [(f.code, f.span.line, f.span.column, f.message) for f in r.findings],
            (r.error.message, r.error.line, r.error.column) if r.error else None,
            r.encoding,
        )
        for r in result.reports
    ]


def test_reading_in_a_child_gives_the_same_reports_as_reading_here(tmp_path):
    files = _tree(tmp_path)
    missing = FileReport("gone.py", error=runner.FileError("gone.py", "no such file or directory"))
    items = [*_items(tmp_path, files), (tmp_path / "unreadable.py", "unreadable.py", CODES)]
    plain = runner.lint([*items, missing], SETTINGS, workers=1)
    streamed = runner.lint(iter([*items, missing]), SETTINGS, workers=2, background=True)
    assert _summary(streamed) == _summary(plain)
    assert streamed.files_seen == plain.files_seen == len(items) + 1
    # The errors are all there: the broken, undecodable and NUL files, the file that
    # could not be read and the missing path.
    errors = {e.path: e.message for e in streamed.errors}
    assert set(errors) == {
        "pkg/zz_broken.py",
        "pkg/latin.py",
        "pkg/nul.py",
        "unreadable.py",
        "gone.py",
    }
    assert errors["unreadable.py"].startswith("cannot read file:")
    assert sum(len(r.findings) for r in streamed.reports) > 0


def test_the_cli_prints_the_same_with_and_without_workers(tmp_path, monkeypatch):
    _tree(tmp_path)
    runs = {}
    for cores in (1, 2):
        monkeypatch.setattr(runner, "usable_cores", lambda cores=cores: cores)
        runs[cores] = lint("--format", "concise", "pkg", "nope.py", cwd=tmp_path)
    assert runs[2].out == runs[1].out
    assert runs[2].code == runs[1].code == 1
    lines = runs[2].out.splitlines()
    assert lines == sorted(lines)
    assert any("nope.py:1:1: E999 no such file or directory" in line for line in lines)


def test_fixes_in_a_streamed_run_equal_fixes_made_serially(tmp_path, monkeypatch):
    trees = {}
    for cores in (1, 2):
        root = tmp_path / f"cores{cores}"
        write(root, {f"pkg/m{i:03}.py": BAD_EXECUTOR for i in range(STREAM_AFTER_FILES + 4)})
        monkeypatch.setattr(runner, "usable_cores", lambda cores=cores: cores)
        run = lint("--fix", "--format", "concise", "pkg", cwd=root)
        trees[cores] = (run.code, run.out, {p.name: p.read_text() for p in root.rglob("*.py")})
    assert trees[2] == trees[1]
    assert all("chunksize=" in text for text in trees[2][2].values())


def test_the_pool_starts_before_the_last_file_is_found():
    jobs = [Job(f"f{i:03}.py", BAD_EXECUTOR + "\n" * i, CODES) for i in range(6)]
    stream = JobStream(SETTINGS, workers=2)
    stream.add(jobs[0], files_seen=1)
    assert not stream.parallel  # a few files: no pool yet
    stream.add(jobs[1], files_seen=STREAM_AFTER_FILES + 1)
    assert stream.parallel  # a large tree: the workers start now
    for job in jobs[2:]:
        stream.add(job, files_seen=STREAM_AFTER_FILES + 2)
    reports = stream.finish()
    assert [r.path for r in reports] == [j.path for j in jobs]  # the order they came in
    assert [r.findings for r in reports] == [r.findings for r in runner.run_jobs(jobs, SETTINGS, 1)]


def test_a_small_run_stays_in_this_process():
    jobs = [Job(f"f{i}.py", BAD_EXECUTOR, CODES) for i in range(3)]
    stream = JobStream(SETTINGS, workers=2)
    for i, job in enumerate(jobs):
        stream.add(job, files_seen=i + 1)
    assert len(stream.finish()) == len(jobs)
    assert not stream.parallel


@pytest.mark.parametrize("frozen_by_caller", [False, True])
def test_linting_leaves_the_garbage_collector_as_it_was(tmp_path, frozen_by_caller):
    files = {f"m{i:03}.py": BAD_EXECUTOR for i in range(STREAM_AFTER_FILES + 2)}
    write(tmp_path, files)
    gc.unfreeze()
    if frozen_by_caller:
        gc.freeze()
    try:
        before = gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()
        result = runner.lint(_items(tmp_path, files), SETTINGS, workers=2)
        after = gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()
    finally:
        gc.unfreeze()
    assert after[0] == before[0] and after[2] == before[2]
    # Nothing of ours stays frozen (the caller's frozen objects may only be freed).
    assert after[1] <= before[1] if frozen_by_caller else after[1] == before[1] == 0
    assert len(result.findings) >= len(files)


# ----------------------------------------------------------------- background.in_child


def _numbers(n: int, *, die_after: int | None = None, fail_after: int | None = None):
    return _generate(n, os.getpid(), die_after, fail_after)


def _generate(n: int, parent: int, die_after: int | None, fail_after: int | None):
    for i in range(n):
        if die_after is not None and i == die_after and os.getpid() != parent:
            os._exit(3)  # the child dies as if killed
        if fail_after is not None and i == fail_after:
            raise ValueError(f"bad item {i}")
        yield i, os.getpid()


def test_in_child_yields_every_item_in_order_from_another_process():
    got = list(background.in_child(_numbers(50)))
    assert [i for i, _ in got] == list(range(50))
    assert {pid for _, pid in got} - {os.getpid()}  # made in the child


def test_in_child_runs_the_set_up_while_waiting():
    calls = []
    got = list(background.in_child(_numbers(3), while_waiting=lambda: calls.append(1)))
    assert len(got) == 3 and calls == [1]


def test_in_child_raises_what_the_child_raised():
    seen = []
    with pytest.raises(ValueError, match="bad item 5"):
        for i, _ in background.in_child(_numbers(10, fail_after=5)):
            seen.append(i)
    assert seen == list(range(5))


def test_in_child_finishes_here_when_the_child_dies():
    got = list(background.in_child(_numbers(20, die_after=7)))
    assert [i for i, _ in got] == list(range(20))  # nothing lost, nothing twice
    assert got[-1][1] == os.getpid()  # the rest was made here


def _endless():
    i = 0
    while True:
        yield i
        i += 1


def test_closing_in_child_early_stops_the_child():
    import multiprocessing

    items = background.in_child(_endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    assert multiprocessing.active_children()  # the child is still making items
    items.close()
    assert multiprocessing.active_children() == []
