"""The analysis worker: a child process that runs ``check_source`` for the server.

Why a process: libcst's native parser can crash or hang on some inputs, and a
rule may have a bug. The server sends each request over a pipe (length-prefixed
pickle frames) and waits with a time limit; when the child dies or overruns, the
server kills it, starts a new one and reports the failure on the document. The
child keeps the analyzer's per-statement caches between requests, so a re-check
re-parses only the statements that changed, and its last analysis of each
document, so an edit inside a mapped function is answered with a small patch
(``recheck``). It also asks for advice: the daemon first, else the read-only store.

Run as ``python -m amorsize_lsp.lsp.worker`` (the server does this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from amorsize_lsp.lsp.snapshot import Block, Issue, Patch, Site, Snapshot
from amorsize_lsp.lsp.spawn import spawn_command

log = logging.getLogger("amorsize.lsp")

_HEADER = struct.Struct(">I")
#: The child's address-space limit: a pathological parse fails instead of swapping.
MEMORY_LIMIT_BYTES = 2 << 30
#: After the daemon failed to answer, use the store for this long before trying again.
DAEMON_RETRY_S = 5.0


class WorkerFailed(Exception):
    """The worker crashed, overran its time limit, or raised; one precise line."""


# ----------------------------------------------------------------------------- child


def _read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def _write_frame(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class WorkerAdvice:
    """Recommendations for the worker's checks: the daemon when it answers, else the store."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self._client: Any = None
        self._down_since: float | None = None
        self._store: Any = None
        self.used = "none"

    def configure(self, options: dict[str, Any]) -> None:
        if options != self.options:
            self.close()
            self.options = dict(options)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _daemon(self) -> Any:
        if not self.options.get("daemon", True):
            return None
        if self._client is not None:
            return self._client
        if self._down_since is not None and time.monotonic() - self._down_since < DAEMON_RETRY_S:
            return None
        from amorsize_lsp.daemon.client import DaemonClient, DaemonError

        try:
            client = DaemonClient(self.options.get("socket"), timeout_s=2.0, spawn=False)
            client.connect()
        except DaemonError:
            self._down_since = time.monotonic()
            return None
        self._client = client
        self._down_since = None
        return client

    def recommend(self, callsite: dict[str, Any]) -> dict[str, Any] | None:
        from amorsize_lsp.daemon.client import DaemonError

        client = self._daemon()
        if client is not None:
            try:
                answer = client.call("recommend", {"callsite": callsite})
                self.used = "daemon"
                return answer if isinstance(answer, dict) else None
            except DaemonError as exc:
                if exc.code is None:  # transport failure, not a refused request
                    client.close()
                    self._client = None
                    self._down_since = time.monotonic()
                else:
                    return None
        if self._store is None:
            from amorsize_lsp.advice import StoreAdvice

            roots = [Path(r) for r in self.options.get("roots", ())]
            self._store = StoreAdvice(self.options.get("db"), roots)
        answer = self._store.recommend(callsite)
        if self.used != "daemon":
            self.used = "store" if self._store.opened else "none"
        return answer

    def refresh(self) -> None:
        """Forget cached store answers (a sample finished)."""
        if self._store is not None:
            self._store.refresh()


def build_snapshot(
    text: str, path: str, settings: Any, advice: WorkerAdvice | None, *, tree: Any = None
) -> Snapshot:
    """Check ``text`` and turn the result into a :class:`Snapshot` (runs in the child)."""
    return _check(text, path, settings, advice, tree=tree)[0]


def _check(
    text: str, path: str, settings: Any, advice: WorkerAdvice | None, *, tree: Any = None
) -> tuple[Snapshot, Any]:
    """The snapshot, and the ``CheckResult`` it came from."""
    from amorsize_lsp.analysis.model import Span
    from amorsize_lsp.check import check_source

    hook = _hook(advice)
    result = check_source(text, path, replace(settings, complexity=True), recommend=hook)
    source = result.text if result.text is not None else text
    snap = Snapshot(text=source)
    if result.ok and result.parsed:
        # Newer syntax than this Python has no layout: no reuse, always re-checked.
        with contextlib.suppress(SyntaxError, ValueError, MemoryError, RecursionError):
            snap.blocks, snap.tainted = layout(source, tree if source is text else None)
    suppress = _Suppressions(source, snap.blocks)
    for err in result.errors:
        span = Span(err.line, err.column, err.line, err.column + 1)
        snap.errors.append(Issue("E999", "syntax-error", err.message, "error", span))
    snap.issues = [issue_of(f, suppress) for f in result.findings]
    if result.analysis is not None:
        snap.sites = [site_of(source, site, hook) for site in result.analysis.callsites]
    snap.advice = advice.used if advice is not None else "none"
    return snap, result


def _hook(advice: WorkerAdvice | None) -> Any:
    """The check's recommend hook over ``advice`` (None without advice)."""
    from amorsize_lsp.advice import recommend_hook

    if advice is None:
        return None
    advice.used = "none"
    return recommend_hook(advice.recommend)


def issue_of(f: Any, suppress: _Suppressions) -> Issue:
    """A finding as the server keeps it: its fix and its suppression edit included."""
    fix = f.fix
    return Issue(
        code=f.code,
        name=f.name,
        message=f.message,
        severity=f.severity.value,
        span=f.span,
        fix_title=fix.message if fix and fix.edits else None,
        fix_safe=bool(fix and fix.is_safe),
        fix_edits=tuple(fix.edits) if fix else (),
        suppress=suppress.edit(f.line, f.code),
        related=tuple((r.span, r.message) for r in f.related),
    )


def site_of(source: str, site: Any, hook: Any) -> Site:
    """A call site with its advice (asked once per site) and "Apply recommended" edits."""
    found = hook(site) if hook is not None else None
    rec = found.to_dict() if found is not None else None
    title, edits = _apply_recommended(source, site, rec)
    return Site(site.span, site.to_json(), rec, title, edits)


class _Suppressions:
    """``noqa.suppression_edit`` per finding, on the text of the finding's top-level
    statement only: it tokenizes what it is given, and a whole 5,000-line file per
    finding would cost seconds. A statement is complete, so its tokens are the same."""

    def __init__(self, source: str, blocks: list[Block]) -> None:
        self.source = source
        self.blocks = blocks
        self.lines: list[str] | None = None

    def edit(self, line: int, code: str):
        from amorsize_lsp.analysis.model import TextEdit
        from amorsize_lsp.lsp.snapshot import shift_span
        from amorsize_lsp.rules.noqa import suppression_edit

        block = next((b for b in self.blocks if b.first <= line <= b.last), None)
        if block is None:
            return suppression_edit(self.source, line, code)
        if self.lines is None:
            from amorsize_lsp.lsp.incremental import split_lines

            self.lines = split_lines(self.source)
        text = "\n".join(self.lines[block.first - 1 : block.last]) + "\n"
        edit = suppression_edit(text, line - block.first + 1, code)
        if edit is None:
            return None
        return TextEdit(shift_span(edit.span, block.first - 1), edit.new_text)


def _apply_recommended(source: str, site: Any, rec: dict[str, Any] | None):
    """The "Apply recommended …" title and edits, or (None, ()) when nothing differs."""
    from amorsize_lsp.analysis.edits import set_parameters
    from amorsize_lsp.analysis.model import EditError

    if not rec or not rec.get("use_pool", True):
        return None, ()
    n_jobs, chunksize = rec.get("n_jobs"), rec.get("chunksize")
    if not isinstance(n_jobs, int) or not isinstance(chunksize, int):
        return None, ()
    ctor = site.constructor
    workers = n_jobs if ctor is not None and ctor.workers_value != n_jobs else None
    chunk = chunksize if site.chunksize_value != chunksize and not site.is_thread else None
    if workers is None and chunk is None:
        return None, ()
    try:
        edits = tuple(set_parameters(source, site, chunksize=chunk, workers=workers))
    except EditError:
        return None, ()
    if not edits:
        return None, ()
    parts = []
    if workers is not None:
        parts.append(f"{workers} worker{'s' if workers != 1 else ''}")
    if chunk is not None:
        parts.append(f"chunksize={chunk}")
    return f"Apply recommended: {', '.join(parts)}", edits


def layout(source: str, tree: Any = None) -> tuple[list[Block], frozenset[str]]:
    """Top-level statement blocks (each with the gap lines after it), and the names
    bound by the statements the analysis reads.

    A block whose mode is "" was not read by the analysis at all; an edit inside it
    that keeps its bound names and brings in no pool text and no new use of those
    names cannot change any result (see ``incremental``).
    """
    from amorsize_lsp.analysis.pyast import parse_python
    from amorsize_lsp.analysis.statements import selected

    # The same statements the check just planned with (kept for the last text).
    groups = selected(source, tree if tree is not None else parse_python(source))
    n_lines = source.count("\n") + 1
    blocks = []
    for i, g in enumerate(groups):
        last = groups[i + 1].first_line - 1 if i + 1 < len(groups) else n_lines
        blocks.append(Block(g.first_line, last, g.mode, g.binds))
    read = [b.binds for b in blocks if b.mode]
    return blocks, frozenset().union(*read)


#: Documents whose last analysis the worker keeps for partial re-checks.
MAX_REMEMBERED = 32


class _Memory:
    """The last analysis of each document (by path), with the request it answered."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[Any, Any]] = {}

    def get(self, path: str, key: Any) -> Any:
        found = self.docs.get(path)
        return found[1] if found is not None and found[0] == key else None

    def keep(self, path: str, key: Any, checked: Any) -> None:
        self.docs.pop(path, None)
        self.docs[path] = (key, checked)
        while len(self.docs) > MAX_REMEMBERED:
            self.docs.pop(next(iter(self.docs)))


def _check_request(
    request: dict[str, Any], advice: WorkerAdvice, memory: _Memory
) -> Snapshot | Patch:
    """A full check; or, when the server sends the text its last snapshot was of
    (``previous``) and the edit since allows it, a :class:`Patch` to that snapshot."""
    import ast

    from amorsize_lsp.analysis.pyast import parse_python

    text, path, settings = request["text"], request["path"], request["settings"]
    advice.configure(request.get("advice") or {})
    use = advice if request.get("advice") is not None else None
    key = (settings, request.get("advice"))
    last, previous = memory.get(path, key), request.get("previous")
    if last is not None and previous is not None:
        from amorsize_lsp.lsp.recheck import recheck

        try:
            if last.snapshot.text != previous:
                # The server moved its snapshot on by itself (edits the analysis never
                # reads): catch up, so the patch is relative to the server's snapshot.
                step = recheck(last, previous, None, ("",))
                last = step[0] if step is not None else None
            step = recheck(last, text, _hook(use)) if last is not None else None
        except Exception:  # the full check below still answers
            log.exception("%s: partial re-check failed; checking the whole file", path)
            step = None
        if step is not None:
            memory.keep(path, key, step[0])
            return step[1]
    rejected = False
    try:
        # The same tree the check's planner uses (kept by text): parsed once.
        tree: ast.Module | None = parse_python(text)
    except SyntaxError:
        # The analysis decides: newer syntax than this Python is analysed (libcst sees
        # only bounded statements), a real error comes back as E999.
        tree, rejected = None, True
    except (ValueError, MemoryError, RecursionError):
        tree = None  # the check reports these precisely
    snap, result = _check(text, path, settings, use, tree=tree)
    if rejected and snap.errors:
        snap.how = "syntax"  # the server keeps the last good results around it
    if snap.ok and snap.blocks and result.analysis is not None:
        from amorsize_lsp.analysis.bytecode.code_index import module_index
        from amorsize_lsp.lsp.recheck import Checked

        sites = result.analysis.callsites
        imports = dict(module_index(snap.text).imports) if sites else {}
        memory.keep(path, key, Checked(path, settings, snap, sites, imports))
    else:
        memory.docs.pop(path, None)
    return snap


def _handle(request: dict[str, Any], advice: WorkerAdvice, memory: _Memory) -> Any:
    op = request.get("op")
    if op == "check":
        return _check_request(request, advice, memory)
    if op == "fix":
        from amorsize_lsp.check import fix_source

        outcome = fix_source(request["text"], request["path"], request["settings"])
        return outcome.text, dict(outcome.fixed)
    if op == "refresh":
        advice.refresh()
        memory.docs.clear()  # advice changed: no partial re-check reuses old advice
        return True
    if op == "ping":
        return os.getpid()
    if op == "crash":  # for tests: a native crash of the analysis
        import ctypes

        ctypes.string_at(0)
    if op == "hang":  # for tests: a parse that never ends
        while True:
            time.sleep(1)
    raise ValueError(f"unknown worker request {op!r}")


def _warm_up() -> None:
    """Import and exercise the analysis once, while the editor is still starting up."""
    from amorsize_lsp.check import CheckSettings

    with contextlib.suppress(ImportError, OSError):  # what advice needs, before the first file
        import amorsize_lsp.advice
        import amorsize_lsp.daemon.client
        import amorsize_lsp.engine.system
        from amorsize_lsp.daemon.paths import default_db_path

        if default_db_path().exists():  # the first file will read it (sqlite-utils is slow to load)
            import amorsize_lsp.daemon.advisor  # noqa: F401
    with contextlib.suppress(Exception):
        build_snapshot(
            "from multiprocessing import Pool\nwith Pool() as p:\n    p.imap(abs, [1])\n",
            "<warm-up>",
            CheckSettings(),
            None,
        )


def child_main() -> int:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the frame stream
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    advice = WorkerAdvice()
    memory = _Memory()
    _warm_up()
    while True:
        request = _read_frame(inp)
        if request is None:
            return 0
        try:
            reply: tuple[str, Any] = ("ok", _handle(request, advice, memory))
        except MemoryError:
            reply = ("error", "the analysis ran out of memory (over 2 GiB)")
        except Exception as exc:
            where = request.get("path", "?") if isinstance(request, dict) else "?"
            detail = traceback.format_exc(limit=-3).strip().splitlines()[-3:]
            reply = ("error", f"{where}: {type(exc).__name__}: {exc} [{' | '.join(detail)}]")
        _write_frame(out, reply)


# ---------------------------------------------------------------------------- parent


_READ_LIMIT = 1 << 20


class _Adopted:
    """A child started with ``subprocess`` driven like an asyncio subprocess (the
    parts :class:`AnalysisWorker` uses)."""

    def __init__(self, popen: subprocess.Popen[bytes], reader: Any, writer: Any) -> None:
        self.popen, self.stdout, self.stdin = popen, reader, writer
        self.pid = popen.pid

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes]) -> _Adopted:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), popen.stdout)
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, popen.stdin
        )
        return cls(popen, reader, asyncio.StreamWriter(transport, protocol, None, loop))

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        self.popen.kill()

    async def wait(self) -> int:
        if self.popen.poll() is None:
            await asyncio.get_running_loop().run_in_executor(None, self.popen.wait)
        return self.popen.returncode


class AnalysisWorker:
    """The server's handle on the child: one request at a time, time limit, restarts."""

    def __init__(
        self,
        *,
        timeout_s: float = 20.0,
        python: str | None = None,
        started: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.python = python or sys.executable
        #: A child spawned before the server loaded (see ``spawn``): adopted first.
        self._started = started
        self._proc: Any = None
        self._lock = asyncio.Lock()
        self.restarts = 0
        #: Requests sent (the incremental path sends none).
        self.requests = 0
        self.last_failure: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _ensure(self) -> Any:
        if self._proc is None or self._proc.returncode is not None:
            started, self._started = self._started, None
            if started is not None and started.poll() is None:
                self._proc = await _Adopted.adopt(started)
                return self._proc
            self._proc = await asyncio.create_subprocess_exec(
                *spawn_command(self.python),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=_READ_LIMIT,
            )
        return self._proc

    async def start(self) -> None:
        """Start the child now (it warms up while the client initialises)."""
        async with self._lock:
            await self._ensure()

    async def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(proc.wait(), 5)
        return None

    async def _exchange(self, request: dict[str, Any], timeout_s: float) -> Any:
        async with self._lock:
            proc = await self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
            what = request.get("path") or request.get("op")
            try:
                proc.stdin.write(_HEADER.pack(len(data)) + data)
                await proc.stdin.drain()
                header = await asyncio.wait_for(proc.stdout.readexactly(_HEADER.size), timeout_s)
                (size,) = _HEADER.unpack(header)
                body = await asyncio.wait_for(proc.stdout.readexactly(size), timeout_s)
            except TimeoutError:
                await self._kill()
                self.restarts += 1
                self.last_failure = (
                    f"{what}: analysis did not finish within {timeout_s:g} s; it was stopped "
                    "and the analysis process restarted"
                )
                raise WorkerFailed(self.last_failure) from None
            except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
                code = await self._kill()
                self.restarts += 1
                how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
                self.last_failure = (
                    f"{what}: the analysis process crashed ({how}); it was restarted. "
                    "Please report this with the file"
                )
                raise WorkerFailed(self.last_failure) from None
        status, payload = pickle.loads(body)
        if status != "ok":
            raise WorkerFailed(str(payload))
        return payload

    async def call(self, request: dict[str, Any], timeout_s: float | None = None) -> Any:
        """Send one request; a cancelled caller does not desynchronise the pipe."""
        self.requests += 1
        task = asyncio.ensure_future(self._exchange(request, timeout_s or self.timeout_s))
        return await asyncio.shield(task)

    async def close(self) -> None:
        if self._started is not None:
            self._started.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._started.wait(2)
            self._started = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


if __name__ == "__main__":
    sys.exit(child_main())
