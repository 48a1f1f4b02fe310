"""``amorsize-daemon record``: the program behaves exactly as without it, and its calls are kept."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import PY, RunningDaemon, daemon_env, line_of

from amorsize_lsp.daemon.record.ingest import (
    HOOK_DIR,
    calls_from_entries,
    profile_from_entry,
    read_entries,
)

DAEMON_CLI = [sys.executable, "-m", "amorsize_lsp.daemon"]

PROGRAM = """\
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool, get_context


def work(x):
    s = 0
    for i in range(x * 200):
        s += i
    return s


def add(a, b):
    return a + b


def run(method):
    ctx = get_context(method)
    with ctx.Pool(2) as pool:
        print(sum(pool.map(work, range(60))))
        print(sum(pool.imap(work, range(40))))
        print(sum(pool.imap(work, range(40), chunksize=6)))
        print(sorted(pool.imap_unordered(work, iter(range(10)))))
        print(pool.starmap(add, [(1, 2), (3, 4)]))
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        print(sum(ex.map(work, range(30), chunksize=5)))
        print(list(ex.map(add, [1, 2], [3, 4])))


if __name__ == "__main__":
    print("PYTHONPATH", os.environ.get("PYTHONPATH"))
    # The recorder's hook folder (an editable install may add its own finder entry).
    print("path", [p for p in sys.path if "record" in p and "hook" in p])
    print("env", sorted(k for k in os.environ if k.startswith("AMORSIZE_RECORD")))
    print("main module", sys.modules["__main__"].__file__)
    ran = getattr(__builtins__, "USER_SITE_RAN", None)
    if ran is not None:
        print(f"user sitecustomize ran {ran} time(s)")
    run(sys.argv[1] if len(sys.argv) > 1 else "fork")
    print("to stderr", file=sys.stderr)
    mode = sys.argv[2] if len(sys.argv) > 2 else "ok"
    if mode == "raise":
        raise ValueError("boom")
    if mode == "exit3":
        sys.exit(3)
    if mode == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
"""
#: The pool calls the program makes (one record each); counted from its text.
POOL_CALLS = [".map(", ".imap(", ".imap_unordered(", ".starmap("]


def _calls_in(text: str) -> int:
    return sum(line.count(c) for line in text.splitlines() for c in POOL_CALLS)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def _pair(
    short_tmp: Path, args: list[str], env_extra: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], Path]:
    prog = short_tmp / "prog.py"
    prog.write_text(PROGRAM)
    db = short_tmp / "rec.db"
    env = daemon_env(AMORSIZE_SOCKET=str(short_tmp / "none.sock"), **(env_extra or {}))
    plain = _run([PY, str(prog), *args], short_tmp, env)
    recorded = _run(
        [*DAEMON_CLI, "record", "--db", str(db), "--", PY, str(prog), *args], short_tmp, env
    )
    return plain, recorded, db


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["fork", "ok"], 0),
        (["fork", "raise"], 1),
        (["fork", "exit3"], 3),
        (["spawn", "ok"], 0),
        (["fork", "signal"], -signal.SIGTERM),
    ],
)
def test_record_leaves_output_and_exit_status_unchanged(
    short_tmp: Path, args: list[str], status: int
) -> None:
    plain, recorded, db = _pair(short_tmp, args)
    assert plain.returncode == status, plain.stderr
    assert recorded.returncode == plain.returncode
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr
    # Nothing about the recorder leaks into what the program can see.
    assert "PYTHONPATH None" in plain.stdout and "path []" in plain.stdout
    assert "env []" in plain.stdout
    # Every pool call was stored (into the file: no daemon runs).
    with sqlite3.connect(db) as conn:
        sources = [r[0] for r in conn.execute("SELECT source FROM profiles")]
        outcomes = conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
    assert sources == ["record"] * _calls_in(PROGRAM)
    assert outcomes == _calls_in(PROGRAM)


def test_record_keeps_a_user_pythonpath_and_runs_the_shadowed_sitecustomize(
    short_tmp: Path,
) -> None:
    user = short_tmp / "userpath"
    user.mkdir()
    (user / "sitecustomize.py").write_text(
        "import builtins\nbuiltins.USER_SITE_RAN = getattr(builtins, 'USER_SITE_RAN', 0) + 1\n"
    )
    plain, recorded, _ = _pair(short_tmp, ["fork", "ok"], {"PYTHONPATH": str(user)})
    assert "user sitecustomize ran 1 time(s)" in plain.stdout
    assert f"PYTHONPATH {user}" in plain.stdout
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr
    assert recorded.returncode == plain.returncode == 0


def test_recorded_calls_go_to_a_running_daemon(daemon: RunningDaemon, short_tmp: Path) -> None:
    prog = short_tmp / "prog.py"
    prog.write_text(PROGRAM)
    before = daemon.call("status")["db"]["counts"]
    proc = _run(
        [*DAEMON_CLI, "record", "--socket", str(daemon.socket), "-v", "--", PY, str(prog)],
        short_tmp,
        daemon_env(),
    )
    assert proc.returncode == 0, proc.stderr
    n = _calls_in(PROGRAM)
    assert proc.stderr.endswith(f"recorded {n} pool call(s); sent to the daemon\n")
    after = daemon.call("status")["db"]["counts"]
    assert after["profiles"] - before["profiles"] == n
    assert after["outcomes"] - before["outcomes"] == n
    # The recorded map is now a known call site: recommend answers "recorded".
    from amorsize_lsp.analysis.driver import analyze_source

    sites = analyze_source(prog.read_bytes(), str(prog)).callsites
    line = line_of(prog, "pool.map(work")
    [site] = [s.to_json() for s in sites if s.span.line == line]
    rec = daemon.call("recommend", {"callsite": site})
    assert rec is not None and rec["source"] == "recorded"


def _hook_entries(short_tmp: Path) -> list[dict[str, Any]]:
    prog = short_tmp / "prog.py"
    prog.write_text(PROGRAM)
    out = short_tmp / "calls.jsonl"
    env = daemon_env(PYTHONPATH=str(HOOK_DIR), AMORSIZE_RECORD_FILE=str(out))
    proc = _run([PY, str(prog)], short_tmp, env)
    assert proc.returncode == 0, proc.stderr
    return read_entries(out.read_text().splitlines())


def test_the_hook_records_file_line_counts_chunksize_and_workers(short_tmp: Path) -> None:
    entries = _hook_entries(short_tmp)
    prog = short_tmp / "prog.py"
    assert len(entries) == _calls_in(PROGRAM)
    by_line = {e["line"]: e for e in entries}
    first = by_line[line_of(prog, "pool.map(work, range(60))")]
    assert first["file"] == str(prog)
    assert (first["method"], first["n_items"], first["workers"]) == ("map", 60, 2)
    assert first["chunksize"] == 8 and not first["chunksize_given"]  # ceil(60 / (2 * 4))
    assert first["wall_s"] > 0 and first["worker_cpu_s"] > 0
    assert first["arg_bytes"] > 0 and first["result_bytes"] > 0
    chunked = by_line[line_of(prog, "chunksize=6")]
    assert (chunked["method"], chunked["n_items"], chunked["chunksize"]) == ("imap", 40, 6)
    unordered = by_line[line_of(prog, "imap_unordered")]
    assert unordered["n_items"] == 10  # counted from an iterator
    ppe = by_line[line_of(prog, "ex.map(work")]
    assert ppe["executor"] == "concurrent.futures.ProcessPoolExecutor"
    assert (ppe["n_items"], ppe["chunksize"]) == (30, 5)


def test_entries_become_call_sites_with_code_hashes_and_profiles(short_tmp: Path) -> None:
    entries = _hook_entries(short_tmp)
    calls = calls_from_entries(entries, str(short_tmp))
    assert len(calls) == len(entries)
    for call, entry in zip(calls, entries, strict=True):
        assert call["callsite"]["line"] <= entry["line"] <= call["callsite"]["end_line"]
        assert call["callsite"]["complexity"]["code_hash"]
        assert call["n_jobs"] == entry["workers"]
        assert call["profile"]["n_items"] == entry["n_items"]
        assert call["profile"]["mean_s"] > 0


def test_profile_from_totals_uses_cpu_for_cpu_bound_and_wall_for_waiting() -> None:
    base = {"n_items": 100, "wall_s": 1.0, "workers": 2}
    cpu_bound = profile_from_entry({**base, "worker_cpu_s": 1.9})
    assert cpu_bound is not None
    assert cpu_bound.mean_s == pytest.approx(1.9 / 100)
    assert cpu_bound.cpu_fraction == pytest.approx(0.95)
    waiting = profile_from_entry({**base, "worker_cpu_s": 0.2})
    assert waiting is not None
    assert waiting.mean_s == pytest.approx(2.0 / 100)  # busy worker-seconds per item
    assert waiting.cpu_fraction == pytest.approx(0.1)
    assert profile_from_entry({**base, "n_items": 0}) is None
    assert profile_from_entry({**base, "wall_s": None}) is None


def test_record_without_a_command_is_a_usage_error() -> None:
    proc = subprocess.run(
        [*DAEMON_CLI, "record"], capture_output=True, text=True, timeout=60, env=daemon_env()
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "amorsize-daemon: record needs a command: amorsize-daemon record -- python script.py\n"
    )


def test_record_of_a_missing_program_is_one_line(short_tmp: Path) -> None:
    proc = subprocess.run(
        [*DAEMON_CLI, "record", "--", str(short_tmp / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        env=daemon_env(),
    )
    assert proc.returncode == 127
    assert proc.stderr.count("\n") == 1 and "cannot run" in proc.stderr


def test_hook_entry_format_is_json_lines(short_tmp: Path) -> None:
    entries = _hook_entries(short_tmp)
    for e in entries:
        json.dumps(e)
        assert set(e) >= {"file", "line", "method", "n_items", "chunksize", "workers", "wall_s"}
    assert os.environ.get("AMORSIZE_RECORD_FILE") is None


def test_a_call_the_analysis_cannot_see_keeps_the_runtime_view(short_tmp: Path) -> None:
    prog = short_tmp / "dyn.py"
    prog.write_text("def run(pool, f, xs):\n    return pool.map(f, xs)\n")
    entry = {
        "v": 1,
        "file": str(prog),
        "line": 2,
        "method": "map",
        "workers": 3,
        "executor": "multiprocessing.pool.Pool",
        "function": "f",
        "n_items": 9,
        "chunksize": 1,
        "wall_s": 0.5,
        "worker_cpu_s": None,
    }
    [call] = calls_from_entries([entry], str(short_tmp))
    site = call["callsite"]
    assert (site["path"], site["line"], site["method"]) == (str(prog), 2, "map")
    assert site["executor"] == "multiprocessing.pool.Pool" and site["complexity"] is None
    assert call["profile"]["mean_s"] == pytest.approx(0.5 * 3 / 9)


RAISES_IN_POOL = """\
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool


def bad(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


if __name__ == "__main__":
    if sys.argv[1] == "map":
        with Pool(2) as p:
            p.map(bad, range(5))
    elif sys.argv[1] == "imap":
        with Pool(2) as p:
            list(p.imap(bad, range(5)))
    else:
        with ProcessPoolExecutor(2) as ex:
            list(ex.map(bad, range(5)))
"""


@pytest.mark.parametrize("how", ["map", "imap", "executor"])
def test_an_exception_from_a_worker_prints_the_same_traceback(short_tmp: Path, how: str) -> None:
    prog = short_tmp / "raises.py"
    prog.write_text(RAISES_IN_POOL)
    env = daemon_env(AMORSIZE_SOCKET=str(short_tmp / "none.sock"))
    plain = _run([PY, str(prog), how], short_tmp, env)
    recorded = _run(
        [*DAEMON_CLI, "record", "--db", str(short_tmp / "r.db"), "--", PY, str(prog), how],
        short_tmp,
        env,
    )
    assert plain.returncode == 1 and "ValueError: bad item 3" in plain.stderr
    assert recorded.returncode == plain.returncode
    # No frame of the recording hook shows. A standard-library frame's line may differ
    # between two runs of the same program (``Future.result`` raises from one line when
    # the future is already done, from another after waiting), so those are masked.
    assert _frames(recorded.stderr, prog) == _frames(plain.stderr, prog)
    assert "amorsize" not in recorded.stderr
    assert recorded.stdout == plain.stdout


def _frames(stderr: str, prog: Path) -> str:
    """``stderr`` with the line numbers of frames outside ``prog`` masked."""
    return re.sub(rf'(File "(?!{re.escape(str(prog))}")[^"]+", line )\d+', r"\1N", stderr)
