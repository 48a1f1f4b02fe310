"""The daemon over a real Unix socket: protocol, robustness, security, durability."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import (
    RunningDaemon,
    daemon_env,
    line_of,
    read_lines,
    start_daemon,
    stop_daemon,
    write_module,
)

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.daemon import protocol as rpc
from amorsize_lsp.daemon.client import DaemonError, serve_command


def _req(method: str, params: Any = None, id_: Any = 1) -> bytes:
    return rpc.encode(rpc.request(method, params, id_))


def _served(d: RunningDaemon) -> None:
    """The daemon still answers a fresh client."""
    status = d.call("status")
    assert status["pid"] == d.proc.pid


def _callsites(path: Path) -> list[dict[str, Any]]:
    return [c.to_json() for c in analyze_source(path.read_bytes(), str(path)).callsites]


# --------------------------------------------------------------------- protocol


def test_malformed_json_gets_parse_error_and_the_connection_keeps_working(
    daemon: RunningDaemon,
) -> None:
    replies = daemon.raw(b'{"jsonrpc": "2.0", "method": \n' + _req("status", id_=7))
    assert replies[0]["error"]["code"] == rpc.PARSE_ERROR
    assert replies[0]["id"] is None
    assert replies[1]["id"] == 7 and replies[1]["result"]["pid"] == daemon.proc.pid
    _served(daemon)


def test_invalid_utf8_is_a_parse_error(daemon: RunningDaemon) -> None:
    [reply] = daemon.raw(b'{"x": "\xff\xfe"}\n')
    assert reply["error"]["code"] == rpc.PARSE_ERROR
    assert "UTF-8" in reply["error"]["message"]
    _served(daemon)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ([1, 2], rpc.INVALID_REQUEST),  # a batch of non-objects: one error each
        ({"jsonrpc": "1.0", "method": "status", "id": 1}, rpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "method": 5, "id": 1}, rpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "method": "status", "params": 5, "id": 1}, rpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "method": "status", "id": {"a": 1}}, rpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "method": "frobnicate", "id": 1}, rpc.METHOD_NOT_FOUND),
        ({"jsonrpc": "2.0", "method": "recommend", "params": {}, "id": 1}, rpc.INVALID_PARAMS),
        (
            {"jsonrpc": "2.0", "method": "recommend", "params": {"callsite": "x"}, "id": 1},
            rpc.INVALID_PARAMS,
        ),
        (
            {
                "jsonrpc": "2.0",
                "method": "recommend",
                "params": {"callsite": {"line": "ten"}},
                "id": 1,
            },
            rpc.INVALID_PARAMS,
        ),
        (
            {
                "jsonrpc": "2.0",
                "method": "sample",
                "params": {"path": "rel.py", "line": 1},
                "id": 1,
            },
            rpc.INVALID_PARAMS,
        ),
        (
            {
                "jsonrpc": "2.0",
                "method": "sample",
                "params": {"path": "/x.py", "line": True},
                "id": 1,
            },
            rpc.INVALID_PARAMS,
        ),
        (
            {"jsonrpc": "2.0", "method": "job_status", "params": {"id": 3}, "id": 1},
            rpc.INVALID_PARAMS,
        ),
        (
            {"jsonrpc": "2.0", "method": "job_status", "params": {"id": "nope"}, "id": 1},
            rpc.UNKNOWN_JOB,
        ),
        (
            {"jsonrpc": "2.0", "method": "record", "params": {"calls": [{}]}, "id": 1},
            rpc.INVALID_PARAMS,
        ),
    ],
)
def test_wrong_requests_get_precise_errors(daemon: RunningDaemon, message: Any, code: int) -> None:
    replies = daemon.raw(rpc.encode(message))
    items = replies[0] if isinstance(replies[0], list) else replies
    for reply in items:
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
    _served(daemon)


def test_unknown_method_names_the_known_ones(daemon: RunningDaemon) -> None:
    with pytest.raises(DaemonError) as e:
        daemon.call("frobnicate")
    assert e.value.code == rpc.METHOD_NOT_FOUND
    assert "recommend" in e.value.message and "frobnicate" in e.value.message


def test_a_message_over_one_mib_is_refused_and_the_connection_closed(
    daemon: RunningDaemon,
) -> None:
    big = (
        b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"x":"'
        + b"a" * (rpc.MAX_MESSAGE_BYTES + 10)
        + b'"}}\n'
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(daemon.socket))
        # Closed while we were still sending is also a refusal.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(big)
        replies = read_lines(s, expect=2)
        assert [r["error"]["code"] for r in replies] == [rpc.MESSAGE_TOO_LARGE]
        assert s.recv(10) == b""  # closed
    _served(daemon)


def test_disconnect_mid_message_and_a_silent_client_do_not_block_others(
    daemon: RunningDaemon,
) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(daemon.socket))
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(str(daemon.socket))
    half.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "sta')
    half.close()
    try:
        _served(daemon)
        assert daemon.call("status")["connections"] >= 2  # the silent one and ours
    finally:
        silent.close()
    _served(daemon)


def test_batch_answers_each_call_in_one_array(daemon: RunningDaemon, short_tmp: Path) -> None:
    mod = write_module(short_tmp)
    site = _callsites(mod)[0]
    batch = [
        rpc.request("status", None, "a"),
        rpc.request("recommend", {"callsite": site}, "b"),
        rpc.request("nope", None, "c"),
        rpc.request("status"),  # a notification: no reply
    ]
    [replies] = daemon.raw(rpc.encode(batch))
    assert [r["id"] for r in replies] == ["a", "b", "c"]
    assert replies[0]["result"]["pid"] == daemon.proc.pid
    assert "result" in replies[1]  # null: nothing is known yet about this function
    assert replies[2]["error"]["code"] == rpc.METHOD_NOT_FOUND
    [empty] = daemon.raw(b"[]\n")
    assert empty["error"]["code"] == rpc.INVALID_REQUEST


def test_positional_params_for_job_status(daemon: RunningDaemon) -> None:
    [reply] = daemon.raw(rpc.encode(rpc.request("job_status", ["missing"], 1)))
    assert reply["error"]["code"] == rpc.UNKNOWN_JOB
    assert "missing" in reply["error"]["message"]


def test_status_reports_store_machine_and_queue(daemon: RunningDaemon) -> None:
    st = daemon.call("status")
    assert st["socket"] == str(daemon.socket)
    assert st["db"]["path"] == str(daemon.db)
    assert st["db"]["size_bytes"] >= daemon.db.stat().st_size > 0
    assert set(st["db"]["counts"]) >= {"profiles", "functions", "outcomes", "machines"}
    assert st["machine"]["usable_cores"] >= 1
    assert st["queue"] == {"length": 0, "running": 0, "concurrency": 1}
    assert st["uptime_s"] >= 0


# ----------------------------------------------------------------- permissions


def test_socket_is_0600_in_a_0700_directory(daemon: RunningDaemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.socket.parent).st_mode) == 0o700


def _connect_as(uid: int, gid: int, path: Path) -> dict[str, Any]:
    """Fork, drop to ``uid``, connect and send a request; what the child saw."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(str(path))
                with contextlib.suppress(OSError):
                    s.sendall(_req("status"))
                got = read_lines(s, expect=2)
                closed = s.recv(10) == b""
            os.write(w, json.dumps({"replies": got, "closed": closed}).encode())
        except BaseException as e:
            os.write(w, json.dumps({"exception": repr(e)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to setuid to another user")
def test_a_peer_with_another_uid_is_refused(daemon: RunningDaemon) -> None:
    nobody = pwd.getpwnam("nobody")
    # Open the directory and socket to everyone, as a careless setup might: the
    # SO_PEERCRED check must still refuse the other user.
    for directory in daemon.socket.parents:
        if directory == Path("/tmp"):
            break
        os.chmod(directory, 0o755)
    os.chmod(daemon.socket, 0o666)
    seen = _connect_as(nobody.pw_uid, nobody.pw_gid, daemon.socket)
    assert "exception" not in seen, seen
    assert seen["closed"]
    assert [r["error"]["code"] for r in seen["replies"]] == [rpc.PERMISSION_DENIED]
    assert all("result" not in r for r in seen["replies"])
    _served(daemon)
    assert f"uid {nobody.pw_uid}" in daemon.log_text()


# ------------------------------------------------------------------ lifecycle


def test_one_daemon_per_socket_and_a_stale_socket_is_replaced(short_tmp: Path) -> None:
    sock = short_tmp / "run" / "d.sock"
    sock.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))  # left behind by a daemon that died
    stale.close()
    d = start_daemon(short_tmp)
    try:
        assert d.socket == sock
        second = subprocess.run(
            serve_command(sock, short_tmp / "other.db"),
            capture_output=True,
            text=True,
            timeout=60,
            env=daemon_env(),
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"amorsize-daemon: a daemon is already running on {sock} (pid {d.proc.pid})"
        )
        _served(d)
    finally:
        stop_daemon(d.socket, d.proc)
    assert d.proc.returncode == 0
    assert not sock.exists()


def test_idle_timeout_stops_the_daemon_and_removes_its_socket(short_tmp: Path) -> None:
    sock = short_tmp / "d.sock"
    proc = subprocess.Popen(
        serve_command(sock, short_tmp / "s.db", "--idle-timeout", "1"),
        stderr=subprocess.PIPE,
        env=daemon_env(),
    )
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        stop_daemon(sock, proc)
    assert proc.returncode == 0
    assert b"idle for 1 s" in err
    assert not sock.exists()


def test_corrupt_database_is_quarantined_and_replaced(short_tmp: Path, daemon_factory: Any) -> None:
    db = short_tmp / "bad.db"
    garbage = b"this is not a database" * 100
    db.write_bytes(garbage)
    d = daemon_factory(db=db)
    st = d.call("status")
    quarantined = Path(st["db"]["quarantined"])
    assert quarantined.read_bytes() == garbage
    assert quarantined.name.startswith("bad.db.corrupt-")
    assert st["db"]["counts"]["profiles"] == 0
    said = [ln for ln in d.log_text().splitlines() if str(quarantined) in ln]
    assert len(said) == 1 and "unreadable" in said[0]  # one clear line
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _recorded_call(site: dict[str, Any], i: int) -> dict[str, Any]:
    return {
        "callsite": site,
        "profile": {"n_items": 100, "mean_s": 0.001 * (1 + i % 7), "sample_size": 100},
        "n_jobs": 2,
        "chunksize": 1 + i % 5,
        "n_items": 100,
        "wall_s": 0.05 + i * 1e-4,
        "measured_at": 1_700_000_000.0 + i,
    }


def test_kill_9_during_a_write_burst_keeps_every_acknowledged_row(
    daemon_factory: Any, short_tmp: Path
) -> None:
    d = daemon_factory()
    site = _callsites(write_module(short_tmp))[0]
    acked: list[int] = []
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        i = 0
        try:
            with d.client(timeout_s=20) as c:
                while not stop.is_set():
                    reply = c.call("record", {"calls": [_recorded_call(site, i)]})
                    acked.extend(reply["profile_ids"])
                    i += 1
        except DaemonError as e:
            errors.append(e.message)

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.01)
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    stop.set()
    t.join(timeout=30)
    assert len(acked) >= 40, errors
    assert errors, "the writer should have seen the connection die"
    with sqlite3.connect(d.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM profiles")}
        outcomes = conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
    assert set(acked) <= stored
    assert outcomes >= len(acked)
    # A new daemon takes over the same socket and store (the stale socket is removed).
    d2 = start_daemon(d.socket.parent, db=d.db)
    try:
        assert d2.call("status")["db"]["counts"]["profiles"] >= len(acked)
    finally:
        stop_daemon(d2.socket, d2.proc)


# -------------------------------------------------------------- recommend/sample


def test_sample_then_recommend_is_measured_and_progress_goes_to_the_asker(
    daemon: RunningDaemon, short_tmp: Path
) -> None:
    mod = write_module(short_tmp)
    line = line_of(mod, "pool.map(")
    [site] = _callsites(mod)
    assert daemon.call("recommend", {"callsite": site}) is None  # nothing known yet
    events: list[tuple[str, Any]] = []
    with (
        daemon.client(on_notification=lambda m, p: events.append((m, p))) as asker,
        daemon.client() as other,
    ):
        other_events: list[Any] = []
        other.on_notification = lambda m, p: other_events.append(p)
        job = asker.call("sample", {"path": str(mod), "line": line, "budget_s": 0.2})
        assert job["state"] == "queued" and job["line"] == line
        final = asker.wait_job(job["id"], timeout_s=90, poll_s=0.1)
        other.call("status")
    assert final["state"] == "done", final
    result = final["result"]
    rec = result["recommendation"]
    assert rec["source"] == "measured"
    assert rec["n_jobs"] >= 1 and rec["chunksize"] >= 1
    assert result["noisy"] == bool(result["noise"])
    assert result["callsite"]["complexity"]["code_hash"] == site["complexity"]["code_hash"]
    states = [p["state"] for m, p in events if m == rpc.PROGRESS and p["job"] == job["id"]]
    assert states[0] in ("queued", "running") and states[-1] == "done"
    assert "running" in states
    assert other_events == []  # progress goes only to the client that asked
    again = daemon.call("recommend", {"callsite": site})
    assert again["source"] == "measured"
    assert again["n_jobs"] == rec["n_jobs"] and again["chunksize"] == rec["chunksize"]
    assert daemon.call("status")["jobs"]["done"] == 1


def test_recommend_does_not_wait_for_a_running_sample(
    daemon: RunningDaemon, short_tmp: Path
) -> None:
    slow = write_module(
        short_tmp,
        "import time\nfrom multiprocessing import Pool\n\n\ndef nap(x):\n    time.sleep(0.5)\n"
        "    return x\n\n\nDATA = [1, 2, 3]\n\nif __name__ == '__main__':\n"
        "    with Pool(2) as p:\n        p.map(nap, DATA)\n",
        "slow_mod.py",
    )
    [site] = _callsites(slow)
    with daemon.client() as c:
        job = c.call("sample", {"path": str(slow), "line": site["line"], "budget_s": 0.2})
        while c.call("job_status", {"id": job["id"]})["phase"] != "sampling":
            time.sleep(0.02)
        answers = [c.call("recommend", {"callsite": site}) for _ in range(5)]
        still = c.call("job_status", {"id": job["id"]})["state"]
        final = c.wait_job(job["id"], timeout_s=90, poll_s=0.1)
    # Five answers came while the sampler was still in the user's function.
    assert still == "running"
    assert answers == [None] * 5
    assert final["state"] == "done"


ODD_PARAMS = [
    None,
    [],
    [1, 2, 3, 4, 5, 6],
    {},
    {"callsite": []},
    {"callsite": {"complexity": "x"}},
    {"callsite": {"complexity": {"code_hash": 5, "loop_count": "many"}}},
    {"callsite": {"line": -3, "length": 1.5}},
    {"path": 5, "line": "x"},
    {"path": "/", "line": 1},
    {"path": "/etc/passwd", "line": 1, "budget_s": 1e9},
    {"id": ["x"]},
    {"calls": "x"},
    {"calls": [{"callsite": {}, "profile": {"mean_s": "x"}, "n_jobs": 1, "chunksize": 1}]},
    {
        "calls": [
            {
                "callsite": {},
                "profile": {"mean_s": 1, "cv": "x"},
                "n_jobs": 1,
                "chunksize": 1,
                "n_items": 3,
                "wall_s": 1,
            }
        ]
    },
    {"calls": [{"callsite": {}, "profile": {"mean_s": 1}, "n_jobs": 0, "chunksize": 1}]},
    {"lines": [1, 2]},
    {"lines": ["not json", "{}"]},
]


def test_odd_params_to_every_method_get_an_answer_and_change_nothing(
    daemon: RunningDaemon,
) -> None:
    methods = ["recommend", "sample", "job_status", "cancel", "record", "import", "stats"]
    before = daemon.call("status")["db"]["counts"]
    msgs = [
        rpc.request(m, p, i * 100 + j)
        for i, m in enumerate(methods)
        for j, p in enumerate(ODD_PARAMS)
    ]
    with daemon.client(timeout_s=120) as c:
        answers = c.batch([(m["method"], m.get("params")) for m in msgs], timeout_s=120)
    assert len(answers) == len(msgs)
    for msg, answer in zip(msgs, answers, strict=True):
        if isinstance(answer, DaemonError):
            assert answer.code in (rpc.INVALID_PARAMS, rpc.INVALID_REQUEST, rpc.UNKNOWN_JOB), (
                msg,
                answer.message,
            )
            assert answer.message
    after = daemon.call("status")["db"]["counts"]
    assert after["profiles"] == before["profiles"]  # nothing malformed was stored
    _served(daemon)


def test_deeply_nested_json_is_a_parse_error(daemon: RunningDaemon) -> None:
    depth = 200_000
    [reply] = daemon.raw(b"[" * depth + b"]" * depth + b"\n")
    assert reply["error"]["code"] == rpc.PARSE_ERROR
    assert "nested too deeply" in reply["error"]["message"]
    _served(daemon)
