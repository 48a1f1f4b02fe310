"""``amorsize-daemon``: run the daemon, ask it things, sample a call, record a run.

Every subcommand takes ``--socket`` and ``--db`` (defaults: ``$AMORSIZE_SOCKET``
and ``$AMORSIZE_DB``, then the per-user locations). Errors are one line on stderr
starting with ``amorsize-daemon:`` and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from amorsize_lsp.daemon.client import DaemonClient, DaemonError, DaemonUnavailable
from amorsize_lsp.daemon.paths import (
    DB_ENV,
    PathError,
    default_socket_path,
    ensure_private_dir,
    log_path,
)

PROG = "amorsize-daemon"
#: How long ``serve`` (detached) waits for the daemon it started to answer.
START_WAIT_S = 20.0


class CliError(Exception):
    """One line for stderr; the exit status is 1 (2 for usage errors)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _socket(args: argparse.Namespace) -> Path:
    return Path(args.socket) if args.socket else default_socket_path()


def _db(args: argparse.Namespace) -> Path | None:
    if args.db:
        return Path(args.db)
    env = os.environ.get(DB_ENV)
    return Path(env) if env else None


def _client(
    args: argparse.Namespace, *, spawn: bool = False, timeout_s: float = 10.0
) -> DaemonClient:
    return DaemonClient(_socket(args), spawn=spawn, db_path=_db(args), timeout_s=timeout_s)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


# ------------------------------------------------------------------------- serve


def _serve_foreground(args: argparse.Namespace) -> int:
    from amorsize_lsp.daemon.server import AlreadyRunning, serve

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s amorsize-daemon[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return serve(
            _socket(args),
            _db(args),
            idle_timeout_s=args.idle_timeout,
            memory_mb=args.sample_memory_mb,
            concurrency=args.jobs,
        )
    except AlreadyRunning as e:
        raise CliError(str(e)) from None
    except PathError as e:
        raise CliError(str(e)) from None


def _answers(sock: Path) -> dict[str, Any] | None:
    try:
        with DaemonClient(sock, timeout_s=5.0) as c:
            return c.call("status")
    except DaemonError:
        return None


def _serve_detached(args: argparse.Namespace) -> int:
    sock = _socket(args)
    running = _answers(sock)
    if running is not None:
        print(f"{PROG}: already running on {sock} (pid {running.get('pid')})", file=sys.stderr)
        return 0
    try:
        ensure_private_dir(sock.parent)
    except PathError as e:
        raise CliError(str(e)) from None
    cmd = [
        sys.executable,
        "-m",
        "amorsize_lsp.daemon",
        "serve",
        "--foreground",
        "--socket",
        str(sock),
        "--idle-timeout",
        str(args.idle_timeout),
        "--sample-memory-mb",
        str(args.sample_memory_mb),
        "--jobs",
        str(args.jobs),
    ]
    db = _db(args)
    if db is not None:
        cmd += ["--db", str(db)]
    log = log_path(sock)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        status = _answers(sock)
        if status is not None:
            print(f"{PROG}: serving on {sock} (pid {status.get('pid')}); log in {log}")
            return 0
        if proc.poll() is not None:
            status = _answers(sock)  # lost a start race: the winner serves
            if status is not None:
                print(
                    f"{PROG}: already running on {sock} (pid {status.get('pid')})", file=sys.stderr
                )
                return 0
            raise CliError(_last_line(log) or f"the daemon exited with status {proc.returncode}")
        time.sleep(0.05)
    raise CliError(f"the daemon did not answer within {START_WAIT_S:g} s; see {log}")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    if not lines:
        return ""
    last = lines[-1]
    return last.split(f"{PROG}: ", 1)[-1] if last.startswith(PROG) else last


def cmd_serve(args: argparse.Namespace) -> int:
    if args.foreground:
        return _serve_foreground(args)
    return _serve_detached(args)


# ----------------------------------------------------------------- status & co


def cmd_status(args: argparse.Namespace) -> int:
    try:
        with _client(args) as c:
            st = c.call("status")
    except DaemonUnavailable as e:
        raise CliError(e.message) from None
    if args.json:
        _print_json(st)
        return 0
    db = st.get("db") or {}
    queue = st.get("queue") or {}
    jobs = st.get("jobs") or {}
    counts = ", ".join(f"{k} {v}" for k, v in sorted((db.get("counts") or {}).items()))
    machine = st.get("machine") or {}
    up = st.get("uptime_s", 0)
    print(f"amorsize-daemon {st.get('version')}: pid {st.get('pid')}, up {up:.0f} s")
    print(f"socket:   {st.get('socket')}")
    print(f"store:    {db.get('path')} ({db.get('size_bytes', 0) / 1e6:.1f} MB; {counts})")
    cores, fp = machine.get("usable_cores"), machine.get("fingerprint")
    print(f"machine:  {cores} usable cores, fingerprint {fp}")
    print(f"queue:    {queue.get('length')} waiting, {queue.get('running')} running")
    print(
        f"jobs:     {jobs.get('done', 0)} done, {jobs.get('failed', 0)} failed, "
        f"{jobs.get('noisy', 0)} noisy"
    )
    if jobs.get("last_noise"):
        print("last sample was noisy: " + "; ".join(jobs["last_noise"]))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    sock = _socket(args)
    try:
        with _client(args) as c:
            reply = c.call("shutdown")
    except DaemonUnavailable:
        print(f"{PROG}: no daemon was running on {sock}", file=sys.stderr)
        return 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sock.exists():
        time.sleep(0.05)
    if sock.exists():
        raise CliError(f"the daemon (pid {reply.get('pid')}) did not stop within 15 s")
    print(f"{PROG}: stopped the daemon (pid {reply.get('pid')})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    try:
        with _client(args) as c:
            stats = c.call("stats", timeout_s=120)
    except DaemonUnavailable:
        stats = _local_stats(args)
    _print_json(stats)
    return 0


def _local_stats(args: argparse.Namespace) -> Any:
    """No daemon: read the store read-only and compute the same report here."""
    from amorsize_lsp.daemon.advisor import Advisor
    from amorsize_lsp.daemon.store import Store, StoreError
    from amorsize_lsp.engine.system import SystemProfile

    try:
        store = Store(_db(args), readonly=True)
    except StoreError as e:
        raise CliError(str(e)) from None
    try:
        return Advisor(store, SystemProfile.detect()).stats()
    finally:
        store.close()


# ------------------------------------------------------------------------ sample


def _parse_target(text: str) -> tuple[Path, int]:
    path, sep, line = text.rpartition(":")
    if not sep or not path or not line.isdigit() or int(line) < 1:
        raise CliError(f"expected FILE:LINE (a line number >= 1), got {text!r}", status=2)
    p = Path(path).resolve()
    if not p.is_file():
        raise CliError(f"{path}: no such file")
    return p, int(line)


def cmd_sample(args: argparse.Namespace) -> int:
    path, line = _parse_target(args.target)
    params: dict[str, Any] = {"path": str(path), "line": line, "budget_s": args.budget}
    if args.interpreter:
        params["interpreter"] = args.interpreter
    wait_s = 3 * args.budget + max(2.0, args.budget) + 10 + args.wait
    try:
        with _client(args, spawn=True, timeout_s=30.0) as c:
            job = c.call("sample", params)
            final = c.wait_job(job["id"], timeout_s=wait_s, poll_s=0.2)
    except DaemonError as e:
        raise CliError(e.message) from None
    where = f"{path}:{line}"
    if final["state"] == "failed":
        err = final.get("error") or {}
        raise CliError(f"sampling {where} failed ({err.get('kind')}): {err.get('message')}")
    if final["state"] == "cancelled":
        raise CliError(f"sampling {where} was cancelled")
    result = final.get("result") or {}
    rec = result.get("recommendation")
    if rec is None:
        raise CliError(
            f"{where}: sampled, but no recommendation: the pool's executor kind is unknown"
        )
    if args.json:
        out = dict(rec)
        out.update(
            job=final["id"],
            path=str(path),
            line=line,
            noisy=result.get("noisy", False),
            profile=result.get("profile"),
        )
        print(json.dumps(out, sort_keys=True))
        return 0
    what = (
        "serial (no pool)"
        if not rec.get("use_pool", True)
        else (f"n_jobs={rec['n_jobs']} chunksize={rec['chunksize']}")
    )
    print(
        f"{where}: {what} on {rec.get('executor_kind')}, expected speedup "
        f"{rec.get('expected_speedup', 0):.2f}x [{rec.get('source')}, confidence "
        f"{rec.get('confidence', 0):.2f}]"
    )
    for reason in rec.get("reasons") or []:
        print(f"  - {reason}")
    return 0


# ------------------------------------------------------------------------ record


def _run_recorded(command: list[str], out: Path) -> int:
    from amorsize_lsp.daemon.record.ingest import HOOK_DIR

    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(HOOK_DIR) + (os.pathsep + old if old else "")
    env["AMORSIZE_RECORD_FILE"] = str(out)
    if old is not None:
        env["AMORSIZE_RECORD_PYTHONPATH"] = old
    else:
        env.pop("AMORSIZE_RECORD_PYTHONPATH", None)
    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as e:
        raise CliError(f"cannot run {command[0]}: {e.strerror or e}", status=127) from None
    # The terminal sends ^C to the whole group: let the program decide, then report.
    with _ignoring(signal.SIGINT), _ignoring(signal.SIGQUIT):
        return proc.wait()


@contextlib.contextmanager
def _ignoring(sig: int) -> Any:
    old = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sig, old)


def _deliver(args: argparse.Namespace, calls: list[dict[str, Any]]) -> str:
    """Send recorded calls to the daemon, or write the store when none runs."""
    try:
        with _client(args, timeout_s=60.0) as c:
            c.call("record", {"calls": calls})
            return "sent to the daemon"
    except DaemonUnavailable:
        pass
    from amorsize_lsp.daemon.advisor import Advisor
    from amorsize_lsp.daemon.record.ingest import store_recorded
    from amorsize_lsp.daemon.store import Store
    from amorsize_lsp.engine.system import SystemProfile
    from amorsize_lsp.engine.workload import WorkloadProfile

    store = Store(_db(args))
    try:
        system = SystemProfile.detect()
        store.record_machine(system)
        for call in calls:
            call["profile"] = WorkloadProfile.from_dict(call["profile"])
        store_recorded(store, Advisor(store, system), system, calls)
        return f"written to {store.path}"
    finally:
        store.close()


def cmd_record(args: argparse.Namespace) -> int:
    from amorsize_lsp.daemon.record.ingest import calls_from_entries, read_entries

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CliError("record needs a command: amorsize-daemon record -- python script.py", 2)
    with tempfile.TemporaryDirectory(prefix="amorsize-record-") as tmp:
        out = Path(tmp) / "calls.jsonl"
        status = _run_recorded(command, out)
        try:
            lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
        except OSError:
            lines = []
    try:
        calls = calls_from_entries(read_entries(lines), os.getcwd())
        where = _deliver(args, calls) if calls else "nothing to store"
        if args.verbose:
            print(f"{PROG}: recorded {len(calls)} pool call(s); {where}", file=sys.stderr)
    except Exception as e:  # the program's result matters more than ours: report, keep status
        print(f"{PROG}: recording failed, the program's exit status is kept: {e}", file=sys.stderr)
    if status < 0:
        # Die of the same signal, so a shell sees what it would without recording.
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


# ------------------------------------------------------------------- export/import


def cmd_export(args: argparse.Namespace) -> int:
    from amorsize_lsp.daemon.sharing import export_profiles
    from amorsize_lsp.daemon.store import Store, StoreError

    try:
        store = Store(_db(args), readonly=True)
    except StoreError as e:
        raise CliError(str(e)) from None
    try:
        project = Path(args.project).resolve() if args.project else None
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                n = export_profiles(store, fh, project=project)
        else:
            n = export_profiles(store, sys.stdout, project=project)
    except OSError as e:
        raise CliError(f"cannot write {args.output}: {e.strerror or e}") from None
    finally:
        store.close()
    print(f"{PROG}: exported {n} profile(s)", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {args.file}: {getattr(e, 'strerror', None) or e}") from None
    try:
        with _client(args, timeout_s=120.0) as c:
            added = c.call("import", {"lines": lines})["added"]
    except DaemonUnavailable:
        from amorsize_lsp.daemon.sharing import import_profiles
        from amorsize_lsp.daemon.store import Store

        store = Store(_db(args))
        try:
            added = import_profiles(store, lines)
        except ValueError as e:
            raise CliError(f"{args.file}: {e}") from None
        finally:
            store.close()
    except DaemonError as e:
        raise CliError(f"{args.file}: {e.message}") from None
    print(f"{PROG}: imported {added} new profile(s) from {args.file}", file=sys.stderr)
    return 0


# -------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--socket",
        metavar="P",
        help="the daemon's socket (default: $AMORSIZE_SOCKET, "
        "else $XDG_RUNTIME_DIR/amorsize/daemon.sock, else a private dir under the temp dir)",
    )
    common.add_argument(
        "--db",
        metavar="P",
        help="the SQLite store (default: $AMORSIZE_DB, else the user data directory)",
    )
    parser = argparse.ArgumentParser(
        prog=PROG, description="The amorsize sampling daemon and its client commands."
    )
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the daemon")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="exit after S seconds without requests (0: never; default 600)",
    )
    p.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached and log to stderr (for systemd, launchd, debugging)",
    )
    p.add_argument(
        "--sample-memory-mb",
        type=float,
        default=2048.0,
        metavar="MB",
        help="address-space limit of each sampler process (default 2048)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="sampling jobs run at once (default 1: timings need a quiet CPU)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("status", parents=[common], help="show the running daemon's state")
    p.add_argument("--json", action="store_true", help="print the status object as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stop", parents=[common], help="stop the running daemon")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("stats", parents=[common], help="the predictor's measured accuracy")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("sample", parents=[common], help="sample the pool call at FILE:LINE")
    p.add_argument("target", metavar="FILE:LINE")
    p.add_argument(
        "--interpreter", metavar="PY", help="the Python that imports FILE (default: the daemon's)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds to spend measuring (default 1)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="S",
        help="extra seconds to wait for jobs queued before this one (default 120)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "record", parents=[common], help="run a command and record its pool calls: record -- CMD..."
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say how many calls were recorded (on stderr, after the program)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("export", parents=[common], help="write profiles as JSON lines")
    p.add_argument("--project", metavar="DIR", help="only profiles of files under DIR")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="add profiles from a JSON-lines file")
    p.add_argument("file", metavar="FILE", help="a file written by `export` ('-' for stdin)")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command_name == "serve" and args.idle_timeout < 0:
        parser.error("--idle-timeout must be >= 0")
    if args.command_name == "sample" and not 0 < args.budget <= 60:
        parser.error("--budget must be in (0, 60] seconds")
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
