"""The client: spawning a daemon, racing to spawn one, timeouts, batches."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from daemon_helpers import PY, RunningDaemon, daemon_env, stop_daemon

from amorsize_lsp.daemon import protocol as rpc
from amorsize_lsp.daemon.client import DaemonClient, DaemonError, DaemonUnavailable


def _daemons_on(sock: Path) -> list[psutil.Process]:
    """Live daemon processes serving ``sock`` (found by their command line)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "--foreground" in cmd and str(sock) in cmd and "amorsize_lsp.daemon" in cmd:
            found.append(p)
    return found


def test_no_daemon_and_no_spawn_is_a_precise_error(short_tmp: Path) -> None:
    sock = short_tmp / "none.sock"
    with pytest.raises(DaemonUnavailable) as e:
        DaemonClient(sock).connect()
    assert e.value.message == (
        f"no daemon is running at {sock}; start one with `amorsize-daemon serve`"
    )


def test_spawn_starts_a_detached_daemon(short_tmp: Path) -> None:
    sock = short_tmp / "run" / "d.sock"
    try:
        with DaemonClient(sock, spawn=True, db_path=short_tmp / "s.db") as c:
            status = c.call("status")
            assert c.spawned
        daemon = psutil.Process(status["pid"])
        assert daemon.ppid() != psutil.Process().pid  # detached: not our child
        assert status["db"]["path"] == str(short_tmp / "s.db")
        with DaemonClient(sock, spawn=True) as again:
            assert again.call("status")["pid"] == status["pid"]
            assert not again.spawned
    finally:
        stop_daemon(sock)
    assert _daemons_on(sock) == []


RACER = """
import json, sys
from amorsize_lsp.daemon.client import DaemonClient
with DaemonClient(sys.argv[1], spawn=True, db_path=sys.argv[2], timeout_s=30) as c:
    print(json.dumps({"pid": c.call("status")["pid"], "spawned": c.spawned}))
"""


def test_clients_racing_to_spawn_end_with_one_daemon(short_tmp: Path) -> None:
    sock = short_tmp / "run" / "d.sock"
    db = short_tmp / "s.db"
    racers = 4
    try:
        procs = [
            subprocess.Popen(
                [PY, "-c", RACER, str(sock), str(db)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=daemon_env(),
            )
            for _ in range(racers)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * racers, [e for _, e in outs]
        seen = [json.loads(o) for o, _ in outs]
        pids = {s["pid"] for s in seen}
        assert len(pids) == 1
        assert any(s["spawned"] for s in seen)
        # The losers may still be starting; each exits once it finds the lock taken.
        deadline = time.monotonic() + 60
        alive = _daemons_on(sock)
        while len(alive) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = _daemons_on(sock)
        assert [p.pid for p in alive] == list(pids)
    finally:
        stop_daemon(sock)


def test_every_call_times_out_on_a_silent_server(short_tmp: Path) -> None:
    sock = short_tmp / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(1)
    accepted: list[socket.socket] = []
    t = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    t.start()
    try:
        with DaemonClient(sock, timeout_s=0.3) as c, pytest.raises(DaemonError) as e:
            c.call("status")
        assert e.value.message == "the daemon did not answer within 0.3 s"
    finally:
        t.join(timeout=5)
        for s in accepted:
            s.close()
        server.close()


def test_batch_returns_results_and_errors_in_order(daemon: RunningDaemon) -> None:
    with daemon.client() as c:
        out = c.batch([("status", None), ("nope", None), ("job_status", {"id": "x"})])
    assert out[0]["pid"] == daemon.proc.pid
    assert isinstance(out[1], DaemonError) and out[1].code == rpc.METHOD_NOT_FOUND
    assert isinstance(out[2], DaemonError) and out[2].code == rpc.UNKNOWN_JOB


def test_a_daemon_that_goes_away_is_reported(daemon_factory: object) -> None:
    d: RunningDaemon = daemon_factory()  # type: ignore[operator]
    with d.client() as c:
        c.call("shutdown")
        d.proc.wait(timeout=30)
        with pytest.raises(DaemonError) as e:
            c.call("status")
    assert "connection" in e.value.message
