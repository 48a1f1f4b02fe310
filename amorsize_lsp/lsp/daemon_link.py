"""The server's side of the daemon: status, sampling and restart, off the event loop.

The daemon's client is blocking, so every call here runs in a thread
(``asyncio.to_thread``); the event loop never waits on the socket. Recommendations
do not come through here: the analysis worker asks the daemon itself (and falls
back to the read-only store), so typing never waits on the daemon either.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amorsize_lsp.daemon.client import DaemonClient, DaemonError

#: How often a running job is polled when no progress notification arrives.
POLL_S = 0.25


class SampleCancelled(Exception):
    """The user cancelled the sampling; the daemon's job was cancelled too."""


class DaemonLink:
    """Talks to the daemon for the server; remembers whether it answered."""

    def __init__(self, socket_path: str | None = None, db_path: str | None = None) -> None:
        self.socket_path = socket_path or os.environ.get("AMORSIZE_SOCKET") or None
        self.db_path = db_path or os.environ.get("AMORSIZE_DB") or None
        self.state = "unknown"  # "up" | "down" | "unknown"
        self.last_error: str | None = None
        self.warned = False

    def client(self, *, spawn: bool = False, timeout_s: float = 5.0, **kw: Any) -> DaemonClient:
        return DaemonClient(
            self.socket_path, timeout_s=timeout_s, spawn=spawn, db_path=self.db_path, **kw
        )

    def _mark(self, ok: bool, error: str | None = None) -> None:
        self.state = "up" if ok else "down"
        self.last_error = error
        if ok:
            self.warned = False

    def _status(self) -> dict[str, Any] | None:
        try:
            with self.client(timeout_s=3.0) as c:
                status = c.call("status")
        except DaemonError as exc:
            self._mark(False, exc.message)
            return None
        self._mark(True)
        return status

    async def status(self) -> dict[str, Any] | None:
        """The daemon's ``status`` answer, or None when it does not answer."""
        return await asyncio.to_thread(self._status)

    def _restart(self, spawn: bool) -> dict[str, Any] | None:
        try:
            with self.client(timeout_s=3.0) as c:
                c.call("shutdown")
        except DaemonError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the old one let go of the socket
            try:
                with self.client(timeout_s=1.0) as c:
                    c.call("status")
                time.sleep(0.1)
            except DaemonError:
                break
        if not spawn:
            self._mark(False, "stopped; daemon.autoStart is false, so it was not started again")
            return None
        try:
            with self.client(spawn=True, timeout_s=10.0) as c:
                status = c.call("status")
        except DaemonError as exc:
            self._mark(False, exc.message)
            raise
        self._mark(True)
        return status

    async def restart(self, spawn: bool) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._restart, spawn)

    def _sample(
        self,
        params: dict[str, Any],
        spawn: bool,
        timeout_s: float,
        on_event: Callable[[dict[str, Any]], None],
        cancelled: threading.Event,
    ) -> dict[str, Any]:
        def notified(method: str, event: Any) -> None:
            if isinstance(event, dict):
                on_event(event)

        try:
            with self.client(spawn=spawn, timeout_s=15.0, on_notification=notified) as c:
                job = c.call("sample", params)
                self._mark(True)
                job_id = job["id"]
                deadline = time.monotonic() + timeout_s
                while True:
                    if cancelled.is_set():
                        c.call("cancel", {"id": job_id})
                        raise SampleCancelled(f"sampling job {job_id} cancelled")
                    status = c.call("job_status", {"id": job_id})
                    if status.get("state") in ("done", "failed", "cancelled"):
                        return status
                    if time.monotonic() > deadline:
                        c.call("cancel", {"id": job_id})
                        raise DaemonError(
                            f"sampling job {job_id} did not finish within {timeout_s:g} s; "
                            "it was cancelled"
                        )
                    cancelled.wait(POLL_S)
        except DaemonError as exc:
            if exc.code is None:
                self._mark(False, exc.message)
            raise

    async def sample(
        self,
        path: Path,
        line: int,
        *,
        interpreter: str | None,
        budget_s: float,
        spawn: bool,
        on_event: Callable[[dict[str, Any]], None],
        cancelled: threading.Event,
    ) -> dict[str, Any]:
        """Run one sampling job to its end; returns the job's final status."""
        params: dict[str, Any] = {"path": str(path), "line": line, "budget_s": budget_s}
        if interpreter:
            params["interpreter"] = interpreter
        timeout_s = 60.0 + budget_s * 10
        return await asyncio.to_thread(self._sample, params, spawn, timeout_s, on_event, cancelled)
