"""A blocking client for the daemon: connect (starting one if needed), call, time out.

Used by the CLI, by ``record``, and by tools that want one answer quickly. When no
daemon answers it starts one detached (``amorsize-daemon serve``) and retries
with backoff; two clients doing so at once end with one daemon, because the
daemon's lock file lets only one of them serve. Every call has a timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from amorsize_lsp.daemon import protocol as rpc
from amorsize_lsp.daemon.paths import default_socket_path

DEFAULT_TIMEOUT_S = 10.0
#: How long to wait for a freshly spawned daemon to answer.
SPAWN_WAIT_S = 15.0


class DaemonError(Exception):
    """The daemon answered with an error, or could not be reached; one precise line."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


class DaemonUnavailable(DaemonError):
    """No daemon listens on the socket (and none was started)."""


def spawn_daemon(
    socket_path: Path,
    db_path: Path | None = None,
    idle_timeout_s: float | None = None,
    python: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``amorsize-daemon serve`` detached from this process and its terminal.

    ``serve`` (not ``--foreground``) itself starts the long-lived daemon in a new
    session and exits once it answers, so the caller can reap it and no zombie
    stays behind.
    """
    cmd = [
        python or sys.executable,
        "-m",
        "amorsize_lsp.daemon",
        "serve",
        "--socket",
        str(socket_path),
    ]
    if db_path is not None:
        cmd += ["--db", str(db_path)]
    if idle_timeout_s is not None:
        cmd += ["--idle-timeout", str(idle_timeout_s)]
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


class DaemonClient:
    """One connection to the daemon. Use as a context manager or call ``close()``.

    ``spawn=True`` starts a daemon when none answers. ``on_notification`` receives
    each notification (method, params) that arrives while waiting for a reply.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        spawn: bool = False,
        db_path: str | os.PathLike[str] | None = None,
        idle_timeout_s: float | None = None,
        on_notification: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.socket_path = Path(socket_path) if socket_path else default_socket_path()
        self.timeout_s = timeout_s
        self.spawn = spawn
        self.db_path = Path(db_path) if db_path else None
        self.idle_timeout_s = idle_timeout_s
        self.on_notification = on_notification
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self.spawned = False

    # ------------------------------------------------------------- connecting

    def _try_connect(self) -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout_s)
        try:
            s.connect(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            return None
        except OSError:
            s.close()
            raise
        return s

    def connect(self) -> DaemonClient:
        """Connect, spawning a daemon (then retrying with backoff) when none answers."""
        if self._sock is not None:
            return self
        try:
            sock = self._try_connect()
        except OSError as e:
            raise DaemonUnavailable(
                f"cannot connect to the daemon at {self.socket_path}: {e.strerror or e}"
            ) from None
        if sock is None and self.spawn:
            sock = self._spawn_and_connect()
        if sock is None:
            raise DaemonUnavailable(
                f"no daemon is running at {self.socket_path}; start one with "
                "`amorsize-daemon serve`"
            )
        self._sock = sock
        return self

    def _spawn_and_connect(self) -> socket.socket | None:
        proc = spawn_daemon(self.socket_path, self.db_path, self.idle_timeout_s)
        self.spawned = True
        deadline = time.monotonic() + SPAWN_WAIT_S
        delay = 0.02
        try:
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    sock = self._try_connect()
                    if sock is not None:
                        return sock
                if proc.poll() not in (None, 0):
                    # It failed (a bad path, an unwritable store): no point in waiting.
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            return None
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=SPAWN_WAIT_S)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
            self._buf.clear()

    def __enter__(self) -> DaemonClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def _send(self, message: Any) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(rpc.encode(message))
        except OSError as e:
            self.close()
            raise DaemonError(f"lost the connection to the daemon: {e.strerror or e}") from None

    def _read_message(self, deadline: float) -> Any:
        assert self._sock is not None
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                if line.strip():
                    try:
                        return json.loads(line)
                    except ValueError:
                        raise DaemonError("the daemon sent a line that is not JSON") from None
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise DaemonError(
                    f"the daemon did not answer within {self.timeout_s:g} s", code=None
                )
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as e:
                self.close()
                raise DaemonError(f"lost the connection to the daemon: {e.strerror or e}") from None
            if not chunk:
                self.close()
                raise DaemonError("the daemon closed the connection")
            self._buf += chunk

    def _await_reply(self, ids: set[Any], deadline: float) -> dict[Any, dict[str, Any]]:
        replies: dict[Any, dict[str, Any]] = {}
        while ids - set(replies):
            msg = self._read_message(deadline)
            items = msg if isinstance(msg, list) else [msg]
            for item in items:
                if not isinstance(item, dict):
                    continue
                if "method" in item and "id" not in item:
                    if self.on_notification is not None:
                        self.on_notification(item["method"], item.get("params"))
                    continue
                if item.get("id") in ids:
                    replies[item["id"]] = item
                elif item.get("id") is None and "error" in item:
                    raise _error(item["error"])
        return replies

    def call(self, method: str, params: Any = None, *, timeout_s: float | None = None) -> Any:
        """One request; returns its result or raises DaemonError with the daemon's message."""
        self.connect()
        id_ = next(self._ids)
        self._send(rpc.request(method, params, id_))
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        reply = self._await_reply({id_}, deadline)[id_]
        if "error" in reply:
            raise _error(reply["error"])
        return reply.get("result")

    def batch(
        self, calls: Iterable[tuple[str, Any]], *, timeout_s: float | None = None
    ) -> list[Any]:
        """Several requests in one JSON-RPC batch; results (or DaemonError objects) in order."""
        self.connect()
        msgs = [rpc.request(m, p, next(self._ids)) for m, p in calls]
        if not msgs:
            return []
        self._send(msgs)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        replies = self._await_reply({m["id"] for m in msgs}, deadline)
        out: list[Any] = []
        for m in msgs:
            r = replies[m["id"]]
            out.append(_error(r["error"]) if "error" in r else r.get("result"))
        return out

    def wait_job(self, job_id: str, *, timeout_s: float, poll_s: float = 0.5) -> dict[str, Any]:
        """Wait until a job finishes (polling ``job_status``); returns its final status."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.call("job_status", {"id": job_id})
            if status.get("state") in ("done", "failed", "cancelled"):
                return status
            if time.monotonic() >= deadline:
                raise DaemonError(f"job {job_id} did not finish within {timeout_s:g} s")
            time.sleep(poll_s)


def _error(err: Any) -> DaemonError:
    if isinstance(err, dict):
        return DaemonError(str(err.get("message")), err.get("code"), err.get("data"))
    return DaemonError(f"malformed error from the daemon: {err!r}")
