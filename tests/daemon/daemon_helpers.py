"""Helpers for the daemon tests: start, talk to and stop real daemons on real sockets.

Sockets live under short ``/tmp`` directories (AF_UNIX paths are limited to about
107 bytes). Every daemon a test starts, directly or through a client's spawn, is
stopped at teardown: politely first, then by its pid from the lock file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amorsize_lsp.daemon.client import DaemonClient, DaemonError, serve_command
from amorsize_lsp.daemon.paths import lock_path

PY = sys.executable
START_TIMEOUT_S = 30.0


def daemon_env(**extra: str) -> dict[str, str]:
    """The environment for daemon subprocesses: no inherited AMORSIZE_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMORSIZE_")}
    env.update(extra)
    return env


@dataclass
class RunningDaemon:
    """A daemon started by a test, with helpers to talk to it."""

    socket: Path
    db: Path
    proc: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)

    def client(self, **kw: Any) -> DaemonClient:
        kw.setdefault("timeout_s", 20.0)
        return DaemonClient(self.socket, **kw)

    def call(self, method: str, params: Any = None, **kw: Any) -> Any:
        with self.client() as c:
            return c.call(method, params, **kw)

    def raw(self, data: bytes, *, read: bool = True, timeout_s: float = 10.0) -> list[Any]:
        """Send raw bytes on a fresh connection; the JSON lines read until EOF or timeout."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(self.socket))
            s.sendall(data)
            if not read:
                return []
            return read_lines(s, expect=data.count(b"\n") or 1)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def read_lines(s: socket.socket, expect: int, timeout_s: float = 10.0) -> list[Any]:
    """Read up to ``expect`` JSON lines (fewer if the peer closes or time runs out)."""
    buf = b""
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expect and time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 16)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
    return out


def wait_answering(sock: Path, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}")
        try:
            with DaemonClient(sock, timeout_s=5.0) as c:
                c.call("status")
                return
        except DaemonError as e:
            last = e.message
        time.sleep(0.05)
    raise RuntimeError(f"the daemon did not answer within {timeout_s} s: {last}")


def stop_daemon(sock: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stop whatever daemon serves ``sock``: shutdown, then SIGTERM, then SIGKILL."""
    pid = _lock_pid(sock)
    with contextlib.suppress(DaemonError, OSError), DaemonClient(sock, timeout_s=3.0) as c:
        c.call("shutdown")
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if pid is not None:
        _wait_gone(pid, 10.0)


def _lock_pid(sock: Path) -> int | None:
    try:
        return int(lock_path(sock).read_text(encoding="ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout_s: float) -> None:
    import psutil

    try:
        p = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    if "amorsize_lsp.daemon" not in " ".join(_cmdline(p)):
        return  # the pid was reused by something else: not ours to kill
    try:
        p.wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            p.wait(timeout=timeout_s)


def _cmdline(p: Any) -> list[str]:
    import psutil

    try:
        return p.cmdline()
    except psutil.Error:
        return []


def start_daemon(directory: Path, *extra: str, db: Path | None = None) -> RunningDaemon:
    """Start ``amorsize-daemon serve --foreground`` and wait until it answers."""
    sock = directory / "run" / "d.sock"  # the daemon makes "run" itself, 0700
    db = db or directory / "store.db"
    log = directory / "daemon.log"
    cmd = serve_command(sock, db, "--idle-timeout", "300", *extra)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, env=daemon_env()
        )
    d = RunningDaemon(sock, db, proc, log, list(extra))
    try:
        wait_answering(sock, proc, START_TIMEOUT_S)
    except RuntimeError as e:
        stop_daemon(sock, proc)
        raise AssertionError(f"{e}\n{d.log_text()}") from None
    return d


POOL_MODULE = """\
from multiprocessing import Pool


def work(x):
    s = 0
    for i in range(x * 50):
        s += i
    return s


DATA = list(range(200))

if __name__ == "__main__":
    with Pool(2) as pool:
        print(sum(pool.map(work, DATA)))
"""


def write_module(directory: Path, text: str = POOL_MODULE, name: str = "work_mod.py") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line holding ``needle`` (tests find lines, they do not type them)."""
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")
