"""``amorsize-daemon`` subcommands, run as the user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import RunningDaemon, daemon_env, line_of, stop_daemon, write_module

from amorsize_lsp.daemon.__main__ import build_parser

CLI = [sys.executable, "-m", "amorsize_lsp.daemon"]
SUBCOMMANDS = ("serve", "status", "stop", "stats", "sample", "record", "export", "import")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or daemon_env()
    )


def test_every_subcommand_takes_socket_and_db() -> None:
    parser = build_parser()
    for name in SUBCOMMANDS:
        extra = {"sample": ["f.py:1"], "import": ["x.jsonl"], "record": ["--", "true"]}
        args = parser.parse_args([name, "--socket", "/s", "--db", "/d", *extra.get(name, [])])
        assert (args.socket, args.db) == ("/s", "/d"), name


def test_serve_status_stop(short_tmp: Path) -> None:
    sock = short_tmp / "run" / "d.sock"
    db = short_tmp / "s.db"
    try:
        started = run("serve", "--socket", str(sock), "--db", str(db))
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith(f"amorsize-daemon: serving on {sock} (pid ")
        again = run("serve", "--socket", str(sock), "--db", str(db))
        assert again.returncode == 0
        assert again.stderr.startswith(f"amorsize-daemon: already running on {sock}")
        status = run("status", "--socket", str(sock))
        assert status.returncode == 0
        assert f"socket:   {sock}" in status.stdout and str(db) in status.stdout
        as_json = json.loads(run("status", "--json", "--socket", str(sock)).stdout)
        assert as_json["db"]["path"] == str(db)
        stopped = run("stop", "--socket", str(sock))
        assert stopped.returncode == 0
        assert stopped.stdout == f"amorsize-daemon: stopped the daemon (pid {as_json['pid']})\n"
        assert not sock.exists()
    finally:
        stop_daemon(sock)


def test_socket_and_db_default_from_the_environment(daemon: RunningDaemon) -> None:
    env = daemon_env(AMORSIZE_SOCKET=str(daemon.socket))
    status = json.loads(run("status", "--json", env=env).stdout)
    assert status["pid"] == daemon.proc.pid


def test_errors_are_one_line_and_non_zero(short_tmp: Path) -> None:
    env = daemon_env(AMORSIZE_SOCKET=str(short_tmp / "none.sock"))
    cases = [
        (("status",), 1, f"amorsize-daemon: no daemon is running at {short_tmp / 'none.sock'}"),
        (("sample", "nofile.py:3"), 1, "amorsize-daemon: nofile.py: no such file"),
        (("sample", "x.py"), 2, "amorsize-daemon: expected FILE:LINE (a line number >= 1)"),
        (("import", str(short_tmp / "missing.jsonl")), 1, "amorsize-daemon: cannot read"),
        (("export", "--db", str(short_tmp / "no.db")), 1, "amorsize-daemon: no amorsize store"),
    ]
    for args, status, start in cases:
        proc = run(*args, env=env)
        assert proc.returncode == status, (args, proc.stderr)
        assert proc.stderr.startswith(start), (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, (args, proc.stderr)


def test_stop_without_a_daemon_says_so(short_tmp: Path) -> None:
    proc = run("stop", "--socket", str(short_tmp / "none.sock"))
    assert proc.returncode == 0
    assert proc.stderr == f"amorsize-daemon: no daemon was running on {short_tmp / 'none.sock'}\n"


def test_sample_json_has_the_recommendation_fields(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp)
    line = line_of(mod, "pool.map(")
    proc = run(
        "sample", f"{mod}:{line}", "--budget", "0.2", "--json", "--socket", str(daemon.socket)
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "n_jobs",
        "chunksize",
        "executor_kind",
        "expected_speedup",
        "source",
        "confidence",
        "reasons",
    ):
        assert key in out, key
    assert out["source"] == "measured" and out["executor_kind"] == "process_pool"
    assert (out["path"], out["line"]) == (str(mod), line)
    text = run("sample", f"{mod}:{line}", "--budget", "0.2", "--socket", str(daemon.socket))
    assert text.returncode == 0
    assert text.stdout.startswith(f"{mod}:{line}: ")
    assert "expected speedup" in text.stdout and "[measured, confidence" in text.stdout


def test_sample_failure_is_one_line(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp)
    proc = run("sample", f"{mod}:1", "--socket", str(daemon.socket))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"amorsize-daemon: sampling {mod}:1 failed (no_callsite): ")
    assert proc.stderr.count("\n") == 1


def test_stats_works_with_and_without_a_daemon(daemon: RunningDaemon) -> None:
    live = run("stats", "--socket", str(daemon.socket))
    assert live.returncode == 0, live.stderr
    stop_daemon(daemon.socket, daemon.proc)
    offline = run("stats", "--socket", str(daemon.socket), "--db", str(daemon.db))
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout).keys() == json.loads(live.stdout).keys()


@pytest.mark.parametrize("with_daemon", [False, True])
def test_export_then_import_is_idempotent(
    daemon_factory: object, short_tmp: Path, with_daemon: bool
) -> None:
    mod = write_module(short_tmp)
    line = line_of(mod, "pool.map(")
    source = daemon_factory()  # type: ignore[operator]
    assert (
        run("sample", f"{mod}:{line}", "--budget", "0.1", "--socket", str(source.socket)).returncode
        == 0
    )
    exported = short_tmp / "profiles.jsonl"
    proc = run("export", "--db", str(source.db), "-o", str(exported))
    assert proc.returncode == 0, proc.stderr
    n = len(exported.read_text().splitlines())
    assert proc.stderr == f"amorsize-daemon: exported {n} profile(s)\n" and n >= 1
    target_db = short_tmp / "target.db"
    sock = str(short_tmp / "none.sock")
    if with_daemon:
        target = daemon_factory(db=target_db)  # type: ignore[operator]
        sock = str(target.socket)
    first = run("import", str(exported), "--db", str(target_db), "--socket", sock)
    assert first.returncode == 0, first.stderr
    assert first.stderr == f"amorsize-daemon: imported {n} new profile(s) from {exported}\n"
    second = run("import", str(exported), "--db", str(target_db), "--socket", sock)
    assert second.stderr == f"amorsize-daemon: imported 0 new profile(s) from {exported}\n"
