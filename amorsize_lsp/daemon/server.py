"""The daemon: JSON-RPC 2.0 over a private Unix socket, one NDJSON message per line.

One asyncio loop serves every client. All store and advisor work runs on a single
dedicated thread (SQLite connections belong to the thread that made them, and one
writer keeps the store simple), sampling runs in ``jobs.py``'s executor, so a
``recommend`` never waits behind a sample. Bad input of any kind gets a JSON-RPC
error or a closed connection; it never stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from amorsize_lsp import __version__
from amorsize_lsp.daemon import protocol as rpc
from amorsize_lsp.daemon.jobs import (
    DEFAULT_MEMORY_MB,
    MAX_BUDGET_S,
    Job,
    JobQueue,
    default_interpreter,
    store_sample,
)
from amorsize_lsp.daemon.paths import (
    DaemonLock,
    PathError,
    check_socket_path,
    ensure_private_dir,
    lock_path,
    peer_uid,
    remove_stale_socket,
)
from amorsize_lsp.daemon.record.ingest import store_recorded
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

log = logging.getLogger("amorsize.daemon")
T = TypeVar("T")

DEFAULT_IDLE_TIMEOUT_S = 600.0
#: A message started but not finished within this time is abandoned with an error.
PARTIAL_MESSAGE_TIMEOUT_S = 10.0
READ_CHUNK = 1 << 16
#: A client that stops reading may buffer at most this much before it is dropped.
MAX_WRITE_BUFFER = 8 << 20


class AlreadyRunning(Exception):
    """Another daemon holds the lock for this socket."""


class _Connection:
    """One client: its writer, and whether it may still be written to."""

    __slots__ = ("closed", "peer", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.closed = False
        self.peer: int | None = None

    def send(self, message: Any) -> None:
        if self.closed or self.writer.is_closing():
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("dropping a client that stopped reading its replies")
            self.close()
            return
        self.writer.write(rpc.encode(message))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()


def _obj(params: Any, method: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Params as an object; a positional array is matched to ``names``."""
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    if isinstance(params, list) and len(params) <= len(names):
        return dict(zip(names, params, strict=False))
    raise rpc.RpcError(
        rpc.INVALID_PARAMS, f"{method}: params must be an object with keys {', '.join(names)}"
    )


def _job_id(params: Any, method: str) -> str:
    p = _obj(params, method, ("id",))
    job_id = p.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{method}: params.id must be a job id string")
    return job_id


class Daemon:
    """The daemon's state and its RPC methods. ``run()`` serves until shutdown or idle."""

    def __init__(
        self,
        socket_path: Path,
        db_path: Path | None = None,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        concurrency: int = 1,
        memory_mb: float = DEFAULT_MEMORY_MB,
        calibrate: bool = True,
        project_roots: tuple[Path, ...] = (),
    ) -> None:
        self.socket_path = Path(socket_path)
        self.db_path = db_path
        self.idle_timeout_s = idle_timeout_s
        self.concurrency = concurrency
        self.memory_mb = memory_mb
        self.calibrate = calibrate
        self.project_roots = project_roots
        self.started = time.time()
        self.last_activity = time.monotonic()
        self.store: Any = None
        self.advisor: Any = None
        self.system: SystemProfile | None = None
        self.jobs: JobQueue | None = None
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amorsize-store")
        self._lock = DaemonLock(lock_path(self.socket_path))
        self._server: asyncio.AbstractServer | None = None
        self._socket_ino: int | None = None
        self._conns: set[_Connection] = set()
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Future[None] | None = None
        self.exit_reason = ""
        self._methods: dict[str, Callable[[_Connection, Any], Any]] = {
            "recommend": self._m_recommend,
            "sample": self._m_sample,
            "job_status": self._m_job_status,
            "cancel": self._m_cancel,
            "status": self._m_status,
            "stats": self._m_stats,
            "record": self._m_record,
            "import": self._m_import,
            "shutdown": self._m_shutdown,
        }

    # ------------------------------------------------------------------ lifecycle

    def _bind_prepare(self) -> None:
        check_socket_path(self.socket_path)
        ensure_private_dir(self.socket_path.parent)
        if not self._lock.acquire():
            pid = self._lock.holder_pid()
            raise AlreadyRunning(
                f"a daemon is already running on {self.socket_path}"
                + (f" (pid {pid})" if pid else "")
            )
        remove_stale_socket(self.socket_path)

    def _open_store(self) -> None:
        """On the store thread: the store, this machine's profile and the advisor."""
        from amorsize_lsp.daemon.advisor import Advisor
        from amorsize_lsp.daemon.store import Store

        self.store = Store(self.db_path)
        self.db_path = self.store.path
        if self.store.quarantined is not None:
            log.warning(
                "the store was unreadable and was moved to %s; a fresh one was made",
                self.store.quarantined,
            )
        self.system = SystemProfile.detect(calibrate=self.calibrate)
        self.store.record_machine(self.system)
        self.advisor = Advisor(self.store, self.system, project_roots=self.project_roots)

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    async def _db_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def run(self) -> int:
        """Bind, serve, and clean up. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._bind_prepare()
        try:
            old_umask = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(
                    self._handle, path=str(self.socket_path), limit=READ_CHUNK
                )
            finally:
                os.umask(old_umask)
            os.chmod(self.socket_path, 0o600)
            self._socket_ino = os.stat(self.socket_path).st_ino
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")
            self._ready = loop.create_future()
            init = asyncio.create_task(self._init())
            watchdog = asyncio.create_task(self._watch_idle())
            log.info(
                "amorsize-daemon %s serving on %s (pid %d)",
                __version__,
                self.socket_path,
                os.getpid(),
            )
            await self._stop.wait()
            log.info("stopping: %s", self.exit_reason or "requested")
            watchdog.cancel()
            await self._shutdown(init)
        finally:
            self._unlink_socket()
            self._lock.release()
        return 0

    async def _init(self) -> None:
        assert self._ready is not None
        try:
            await self._db_call(self._open_store)
            assert self.system is not None
            self.jobs = JobQueue(
                system=self.system,
                store=self._store_sample,
                notify=self._notify_progress,
                concurrency=self.concurrency,
                memory_mb=self.memory_mb,
            )
            self.jobs.start()
            self._ready.set_result(None)
        except Exception as e:
            log.exception("cannot open the store")
            self._ready.set_exception(e)
            self.exit_reason = f"cannot open the store: {e}"
            self.request_stop(self.exit_reason)

    async def _shutdown(self, init: asyncio.Task[None]) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close()
        with contextlib.suppress(Exception):
            await init
        if self.jobs is not None:
            await self.jobs.stop()
        await self._db_call(self._close_store)
        self._db.shutdown(wait=True)

    def request_stop(self, reason: str = "") -> None:
        if reason and not self.exit_reason:
            self.exit_reason = reason
        if self._stop is not None:
            self._stop.set()

    def _unlink_socket(self) -> None:
        """Remove our socket file, but never one a newer daemon has put in its place."""
        try:
            st = os.lstat(self.socket_path)
        except FileNotFoundError:
            return
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == self._socket_ino:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)

    async def _watch_idle(self) -> None:
        if self.idle_timeout_s <= 0:
            return
        step = min(5.0, max(0.05, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(step)
            if self.jobs is not None and self.jobs.busy:
                self.last_activity = time.monotonic()
                continue
            if time.monotonic() - self.last_activity >= self.idle_timeout_s:
                self.request_stop(f"idle for {self.idle_timeout_s:g} s")
                return

    # ---------------------------------------------------------------- connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        sock = writer.get_extra_info("socket")
        conn.peer = peer_uid(sock) if sock is not None else None
        if conn.peer is not None and conn.peer != os.getuid():
            log.warning(
                "refused a client with uid %d (the daemon runs as uid %d)", conn.peer, os.getuid()
            )
            conn.send(
                rpc.error(
                    None,
                    rpc.RpcError(
                        rpc.PERMISSION_DENIED,
                        f"permission denied: this daemon serves uid {os.getuid()} only",
                    ),
                )
            )
            await self._close(conn)
            return
        self._conns.add(conn)
        try:
            await self._serve(conn, reader)
        except (ConnectionError, OSError):
            pass  # the client went away mid-reply
        except Exception:
            log.exception("a connection handler failed")
        finally:
            self._conns.discard(conn)
            if self.jobs is not None:
                self.jobs.forget_owner(conn)
            await self._close(conn)

    async def _close(self, conn: _Connection) -> None:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.writer.wait_closed()

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        started: float | None = None  # when the unfinished message began
        while not conn.closed:
            timeout = None
            if buf:
                assert started is not None
                timeout = max(0.0, PARTIAL_MESSAGE_TIMEOUT_S - (time.monotonic() - started))
            try:
                chunk = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
            except asyncio.TimeoutError:
                conn.send(
                    self._err(
                        rpc.PARSE_ERROR,
                        "incomplete message: no newline within "
                        f"{PARTIAL_MESSAGE_TIMEOUT_S:g} s; closing",
                    )
                )
                return
            if not chunk:
                return  # EOF; an unfinished message is dropped
            scan = len(buf)
            buf += chunk
            while True:
                nl = buf.find(b"\n", scan)
                if nl < 0:
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                scan = 0
                if len(line) > rpc.MAX_MESSAGE_BYTES:
                    self._too_large(conn)
                    return
                if line.strip():
                    self.last_activity = time.monotonic()
                    reply = await self._handle_line(conn, line)
                    if reply is not None:
                        conn.send(reply)
                        await conn.writer.drain()
            if len(buf) > rpc.MAX_MESSAGE_BYTES:
                self._too_large(conn)
                return
            started = (started or time.monotonic()) if buf else None

    def _too_large(self, conn: _Connection) -> None:
        conn.send(
            self._err(
                rpc.MESSAGE_TOO_LARGE,
                f"message over the {rpc.MAX_MESSAGE_BYTES // 2**20} MiB limit; closing the "
                "connection (send call sites in smaller batches)",
            )
        )

    @staticmethod
    def _err(code: int, message: str, id_: Any = None) -> dict[str, Any]:
        return rpc.error(id_, rpc.RpcError(code, message))

    async def _handle_line(self, conn: _Connection, line: bytes) -> Any:
        try:
            obj = rpc.decode_line(line)
        except rpc.RpcError as e:
            return rpc.error(None, e)
        if isinstance(obj, list):
            if not obj:
                return self._err(rpc.INVALID_REQUEST, "invalid request: empty batch")
            replies = [r for r in [await self._handle_one(conn, item) for item in obj] if r]
            return replies or None
        return await self._handle_one(conn, obj)

    async def _handle_one(self, conn: _Connection, obj: Any) -> dict[str, Any] | None:
        try:
            req = rpc.parse_request(obj)
        except rpc.RpcError as e:
            return rpc.error(rpc.request_id(obj), e)
        try:
            method = self._methods.get(req.method)
            if method is None:
                raise rpc.RpcError(
                    rpc.METHOD_NOT_FOUND,
                    f"unknown method {req.method!r}; this daemon knows "
                    + ", ".join(sorted(self._methods)),
                )
            value = await method(conn, req.params)
        except rpc.RpcError as e:
            return None if req.is_notification else rpc.error(req.id, e)
        except Exception as e:
            log.exception("method %s failed", req.method)
            err = rpc.RpcError(rpc.INTERNAL_ERROR, f"{req.method} failed: {type(e).__name__}: {e}")
            return None if req.is_notification else rpc.error(req.id, err)
        return None if req.is_notification else rpc.result(req.id, value)

    async def _wait_ready(self) -> None:
        assert self._ready is not None
        try:
            await asyncio.shield(self._ready)
        except Exception as e:
            raise rpc.RpcError(rpc.SHUTTING_DOWN, f"the daemon could not start: {e}") from None

    # -------------------------------------------------------------------- methods

    async def _m_recommend(self, conn: _Connection, params: Any) -> Any:
        p = _obj(params, "recommend", ("callsite",))
        callsite = p.get("callsite")
        if not isinstance(callsite, dict):
            raise rpc.RpcError(
                rpc.INVALID_PARAMS,
                "recommend: params.callsite must be an object as printed by "
                "`amorsize-lint --show-callsites --format json`",
            )
        await self._wait_ready()
        try:
            return await self._db_call(self.advisor.recommend, callsite)
        except ValueError as e:
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"recommend: {e}") from None

    async def _m_sample(self, conn: _Connection, params: Any) -> Any:
        p = _obj(params, "sample", ("path", "line", "interpreter", "budget_s"))
        path, line = p.get("path"), p.get("line")
        interpreter = p.get("interpreter")
        budget = p.get("budget_s", 1.0)
        if not isinstance(path, str) or not os.path.isabs(path):
            raise rpc.RpcError(rpc.INVALID_PARAMS, "sample: params.path must be an absolute path")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise rpc.RpcError(rpc.INVALID_PARAMS, "sample: params.line must be an integer >= 1")
        if interpreter is not None and (not isinstance(interpreter, str) or not interpreter):
            raise rpc.RpcError(
                rpc.INVALID_PARAMS, "sample: params.interpreter must be a path to a Python"
            )
        if (
            not isinstance(budget, int | float)
            or isinstance(budget, bool)
            or not 0 < budget <= MAX_BUDGET_S
        ):
            raise rpc.RpcError(
                rpc.INVALID_PARAMS,
                f"sample: params.budget_s must be a number of seconds in (0, {MAX_BUDGET_S:g}]",
            )
        if not os.path.isfile(path):
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"sample: {path} is not a file")
        await self._wait_ready()
        assert self.jobs is not None
        job = self.jobs.submit(
            path, line, interpreter or default_interpreter(), float(budget), owner=conn
        )
        return job.to_json(self.jobs.position(job))

    def _job(self, params: Any, method: str) -> Job:
        job_id = _job_id(params, method)
        job = self.jobs.get(job_id) if self.jobs is not None else None
        if job is None:
            raise rpc.RpcError(rpc.UNKNOWN_JOB, f"{method}: no job with id {job_id!r}")
        return job

    async def _m_job_status(self, conn: _Connection, params: Any) -> Any:
        job = self._job(params, "job_status")
        assert self.jobs is not None
        return job.to_json(self.jobs.position(job))

    async def _m_cancel(self, conn: _Connection, params: Any) -> Any:
        job = self._job(params, "cancel")
        assert self.jobs is not None
        await self.jobs.cancel(job.id)
        return job.to_json(self.jobs.position(job))

    def _status_db(self) -> dict[str, Any]:
        return {
            "path": str(self.store.path),
            "size_bytes": self.store.size_bytes(),
            "counts": self.store.counts(),
            "quarantined": str(self.store.quarantined) if self.store.quarantined else None,
        }

    async def _m_status(self, conn: _Connection, params: Any) -> Any:
        await self._wait_ready()
        assert self.jobs is not None and self.system is not None
        import psutil

        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": time.time() - self.started,
            "socket": str(self.socket_path),
            "python": sys.executable,
            "rss_bytes": psutil.Process().memory_info().rss,
            "idle_timeout_s": self.idle_timeout_s,
            "connections": len(self._conns),
            "db": await self._db_call(self._status_db),
            "machine": self.system.to_dict(),
            "queue": {
                "length": self.jobs.queue_length,
                "running": self.jobs.running,
                "concurrency": self.jobs.concurrency,
            },
            "jobs": {**self.jobs.counts, "last_noise": self.jobs.last_noise},
        }

    async def _m_stats(self, conn: _Connection, params: Any) -> Any:
        await self._wait_ready()
        return await self._db_call(self.advisor.stats)

    async def _m_record(self, conn: _Connection, params: Any) -> Any:
        p = _obj(params, "record", ("calls",))
        calls = p.get("calls")
        if not isinstance(calls, list):
            raise rpc.RpcError(rpc.INVALID_PARAMS, "record: params.calls must be an array")
        parsed = [parse_recorded_call(c, i) for i, c in enumerate(calls)]
        await self._wait_ready()
        ids = await self._db_call(self._store_recorded, parsed)
        return {"stored": len(ids), "profile_ids": ids}

    def _store_recorded(self, calls: list[dict[str, Any]]) -> list[int]:
        assert self.system is not None
        return store_recorded(self.store, self.advisor, self.system, calls)

    async def _m_import(self, conn: _Connection, params: Any) -> Any:
        p = _obj(params, "import", ("lines",))
        lines = p.get("lines")
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise rpc.RpcError(
                rpc.INVALID_PARAMS, "import: params.lines must be an array of JSON-line strings"
            )
        await self._wait_ready()
        return {"added": await self._db_call(self._import_lines, lines)}

    def _import_lines(self, lines: list[str]) -> int:
        from amorsize_lsp.daemon.sharing import import_profiles

        added = import_profiles(self.store, lines)
        if added:
            self.advisor.profile_added()
        return added

    async def _m_shutdown(self, conn: _Connection, params: Any) -> Any:
        asyncio.get_running_loop().call_soon(self.request_stop, "shutdown requested")
        return {"stopping": True, "pid": os.getpid()}

    # ---------------------------------------------------------------------- jobs

    async def _store_sample(
        self, callsite: dict[str, Any], profile: WorkloadProfile, noise: list[str]
    ) -> tuple[int, dict[str, Any] | None]:
        assert self.system is not None
        return await self._db_call(
            store_sample, self.store, self.advisor, self.system, callsite, profile, noise
        )

    def _notify_progress(self, job: Job, event: dict[str, Any]) -> None:
        conn = job.owner
        if isinstance(conn, _Connection):
            conn.send(rpc.notification(rpc.PROGRESS, event))


def parse_recorded_call(call: Any, index: int) -> dict[str, Any]:
    """Validate one ``record`` entry (untrusted input) into typed fields."""
    where = f"record: calls[{index}]"
    if not isinstance(call, dict):
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where} must be an object")
    callsite, profile = call.get("callsite"), call.get("profile")
    if not isinstance(callsite, dict):
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.callsite must be an object")
    if not isinstance(profile, dict):
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.profile must be an object")
    try:
        prof = WorkloadProfile.from_dict(profile)
        float(prof.mean_s)
    except (TypeError, ValueError) as e:
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.profile is not a profile: {e}") from None
    out: dict[str, Any] = {"callsite": callsite, "profile": prof}
    for key in ("n_jobs", "chunksize"):
        v = call.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.{key} must be an integer >= 1")
        out[key] = v
    n_items = call.get("n_items")
    if n_items is not None and (not isinstance(n_items, int) or isinstance(n_items, bool)):
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.n_items must be an integer or null")
    out["n_items"] = n_items
    wall = call.get("wall_s")
    if not isinstance(wall, int | float) or isinstance(wall, bool) or wall < 0:
        raise rpc.RpcError(rpc.INVALID_PARAMS, f"{where}.wall_s must be a number >= 0")
    out["wall_s"] = float(wall)
    at = call.get("measured_at")
    out["measured_at"] = float(at) if isinstance(at, int | float) and at > 0 else None
    return out


def serve(
    socket_path: Path,
    db_path: Path | None,
    *,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    memory_mb: float = DEFAULT_MEMORY_MB,
    concurrency: int = 1,
    calibrate: bool = True,
) -> int:
    """Run a daemon in this process until it stops; raises AlreadyRunning or PathError."""
    daemon = Daemon(
        socket_path,
        db_path,
        idle_timeout_s=idle_timeout_s,
        memory_mb=memory_mb,
        concurrency=concurrency,
        calibrate=calibrate,
    )
    return asyncio.run(daemon.run())


__all__ = ["AlreadyRunning", "Daemon", "PathError", "serve"]
