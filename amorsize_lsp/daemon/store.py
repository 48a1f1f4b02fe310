"""The daemon's SQLite store: machines, functions, measured profiles and real-run outcomes.

One file per user. The daemon is the only writer; the linter or a second server
open it read-only, which WAL mode allows while the daemon writes. Every write is
one committed transaction with ``synchronous=FULL`` by default, so a row is on
disk when ``add_profile`` returns, even if the daemon is killed right after.

A file that SQLite cannot read (garbage, a truncated copy, a failed integrity
check) is moved aside to ``<name>.corrupt-<timestamp>`` together with its WAL, so
nothing is lost for a later look, and a fresh store takes its place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from amorsize_lsp.analysis.model import EXECUTOR_KINDS
from amorsize_lsp.daemon.paths import default_db_path
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

log = logging.getLogger("amorsize.daemon")

#: Bump with a new entry in ``MIGRATIONS``; a store is upgraded one step at a time.
SCHEMA_VERSION = 2
#: Profiles' ``source`` column.
PROFILE_SOURCES = ("sample", "record", "import")
#: Milliseconds a connection waits for another's lock before failing.
BUSY_TIMEOUT_MS = 5000
#: Pruning removes rows down to this share of the cap, so it does not run on every insert.
PRUNE_TO = 0.9

COMPLEXITY_COLUMNS = (
    "bytecode_size",
    "instruction_count",
    "loop_count",
    "max_loop_depth",
    "call_count",
    "recursive",
    "blocking_io",
)


_PROFILE_KWARGS = frozenset(
    {"callsite", "profile", "source", "machine", "noisy", "measured_at", "uid"}
)


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode, retrying while another process holds the file's lock.

    Switching needs an exclusive lock. When two processes that both read the new
    file ask for it at once, SQLite returns "database is locked" at once instead
    of waiting (waiting would deadlock), so the busy timeout does not cover it.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.002
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class StoreError(Exception):
    """The store cannot be used; the message is one precise line."""


# ----------------------------------------------------------------------- migrations


def _v1(db: sqlite_utils.Database) -> None:
    """The first schema: the four tables and their lookup indexes."""
    # Where a profile or outcome was taken: the function and the call site.
    site = {
        "code_hash": str,
        "function": str,
        "path": str,
        "line": int,
        "executor_kind": str,
    }
    db["machines"].create(
        {
            "fingerprint": str,
            "usable_cores": int,
            "logical_cores": int,
            "start_method": str,
            "python_version": str,
            "gil_enabled": int,
            "calibration": str,
            "system": str,
            "updated_at": float,
        },
        pk="fingerprint",
        if_not_exists=True,
    )
    db["functions"].create(
        {
            "code_hash": str,
            "module": str,
            "qualname": str,
            "path": str,
            **{c: int for c in COMPLEXITY_COLUMNS},
            "io_calls": str,
            "updated_at": float,
        },
        pk="code_hash",
        if_not_exists=True,
    )
    db["profiles"].create(
        {
            "id": int,
            "uid": str,
            **site,
            "length": int,
            "machine": str,
            "measured_at": float,
            "source": str,
            "n_items": int,
            "mean_s": float,
            "cv": float,
            "arg_bytes": float,
            "result_bytes": float,
            "profile": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["outcomes"].create(
        {
            "id": int,
            **site,
            "n_jobs": int,
            "chunksize": int,
            "n_items": int,
            "wall_s": float,
            "predicted_wall_s": float,
            "predictor_version": str,
            "machine": str,
            "measured_at": float,
        },
        pk="id",
        if_not_exists=True,
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS profiles_uid ON profiles(uid)")
    db.execute("CREATE INDEX IF NOT EXISTS profiles_hash ON profiles(code_hash)")
    db.execute("CREATE INDEX IF NOT EXISTS profiles_time ON profiles(measured_at)")
    db.execute("CREATE INDEX IF NOT EXISTS outcomes_hash ON outcomes(code_hash)")
    db.execute("CREATE INDEX IF NOT EXISTS outcomes_time ON outcomes(measured_at)")


def _v2(db: sqlite_utils.Database) -> None:
    """Noisy samples, item times of real runs, and the configuration recommended then."""
    db["profiles"].add_column("noisy", int, not_null_default=0)
    db["outcomes"].add_column("item_s", float)
    db["outcomes"].add_column("predicted_item_s", float)
    db["outcomes"].add_column("recommended_n_jobs", int)
    db["outcomes"].add_column("recommended_chunksize", int)
    # Call sites whose function has no bytecode (no code hash) match by path and name.
    db.execute("CREATE INDEX IF NOT EXISTS profiles_site ON profiles(path, function)")


#: ``MIGRATIONS[i]`` upgrades a store from schema version ``i`` to ``i + 1``.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]
assert len(MIGRATIONS) == SCHEMA_VERSION


# ---------------------------------------------------------------------------- store


def _timestamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def callsite_key(callsite: dict[str, Any]) -> dict[str, Any]:
    """The columns a profile or outcome row takes from a call-site object (lenient)."""
    cx = callsite.get("complexity")
    code_hash = cx.get("code_hash") if isinstance(cx, dict) else None
    length = callsite.get("length")
    line = callsite.get("line")
    executor = callsite.get("executor")
    function = callsite.get("function")
    path = callsite.get("path")
    return {
        "code_hash": code_hash if isinstance(code_hash, str) and code_hash else None,
        "function": function if isinstance(function, str) else None,
        "path": path if isinstance(path, str) else None,
        "line": line if _is_int(line) else None,
        "executor_kind": EXECUTOR_KINDS.get(executor) if isinstance(executor, str) else None,
        "length": length if _is_int(length) and length >= 0 else None,
    }


class Store:
    """The SQLite store; thread-safe (one connection, one lock)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
        max_profiles: int = 50_000,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.readonly = readonly
        self.max_profiles = max(1, int(max_profiles))
        self.quarantined: Path | None = None
        self.lock = threading.RLock()
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        if readonly:
            self._conn = self._open_readonly()
        else:
            self._conn = self._open_writable()
        self.db = sqlite_utils.Database(self._conn)

    # ------------------------------------------------------------------ opening

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no amorsize store at {self.path}: start the daemon to create one")
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the amorsize store {self.path}: {exc}") from exc
        if version < SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"the amorsize store {self.path} has schema version {version}, older than "
                f"{SCHEMA_VERSION}: open it once with the daemon to upgrade it"
            )
        return conn

    def _open_writable(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store's directory {self.path.parent}: {exc}"
            ) from exc
        try:
            return self._connect_and_migrate()
        except _Corrupt as exc:
            self.quarantined = self._quarantine(str(exc))
        try:
            return self._connect_and_migrate()
        except (_Corrupt, sqlite3.Error) as exc:
            raise StoreError(f"cannot create a new amorsize store at {self.path}: {exc}") from exc

    def _connect_and_migrate(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = _switch_to_wal(conn)
            if str(mode).lower() != "wal":
                raise _Corrupt(f"cannot switch to WAL mode (journal mode is {mode})")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            check = conn.execute("PRAGMA quick_check").fetchall()
            if [tuple(r) for r in check] != [("ok",)]:
                raise _Corrupt("integrity check failed: " + "; ".join(str(r[0]) for r in check[:3]))
            self._migrate(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            if _is_corruption(exc):
                raise _Corrupt(str(exc)) from exc
            raise StoreError(f"cannot open the amorsize store {self.path}: {exc}") from exc
        except (_Corrupt, StoreError):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Upgrade one version per transaction, under the write lock.

        The version is read again inside each transaction, so two processes that
        open a new file at once do not run a step twice.
        """
        db = sqlite_utils.Database(conn)
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the amorsize store {self.path} has schema version {version}, newer "
                        f"than this amorsize-lsp ({SCHEMA_VERSION}): upgrade amorsize-lsp, or "
                        "use another file with --db"
                    )
                if version == SCHEMA_VERSION:
                    conn.commit()
                    return
                MIGRATIONS[version](db)
                conn.execute(f"PRAGMA user_version={version + 1}")
                conn.commit()
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            if version > 0:
                log.info("amorsize store %s upgraded to schema %d", self.path, version + 1)

    def _quarantine(self, why: str) -> Path:
        stamp = _timestamp()
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, target)
            # The old WAL belongs to the old file: left here, SQLite would replay it
            # into the fresh store.
            for suffix in ("-wal", "-shm", "-journal"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    os.replace(side, Path(str(target) + suffix))
        except OSError as exc:
            raise StoreError(
                f"the amorsize store {self.path} is unreadable ({why}) and cannot be moved "
                f"aside: {exc}"
            ) from exc
        log.warning(
            "amorsize store %s was unreadable (%s): moved it to %s and started a new empty store",
            self.path,
            why,
            target,
        )
        return target

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"the amorsize store {self.path} was opened read-only")
        with self.lock:
            if self._conn is None:
                raise StoreError(f"the amorsize store {self.path} is closed")
            self._writes += 1
            conn = self._conn
            # IMMEDIATE: take the write lock now (waiting up to busy_timeout) rather
            # than fail on upgrading a read snapshot that another writer has moved.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.commit()

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict]:
        """Rows of a read query as dicts (used by the advisor, stats and sharing)."""
        with self.lock:
            if self._conn is None:
                raise StoreError(f"the amorsize store {self.path} is closed")
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @property
    def schema_version(self) -> int:
        return int(self.query("PRAGMA user_version")[0]["user_version"])

    # ------------------------------------------------------------------ writing

    def record_machine(self, system: SystemProfile) -> str:
        """Upsert this machine's row (fingerprint, calibrated costs); returns the fingerprint."""
        fp = system.fingerprint or _fallback_fingerprint(system)
        with self._write():
            self.db["machines"].upsert(_machine_row(fp, system.to_dict()), pk="fingerprint")
        return fp

    def add_machine_dict(self, fingerprint: str, system: dict[str, Any], *, replace: bool) -> None:
        """Insert a machine described by ``SystemProfile.to_dict()`` (an imported one)."""
        with self._write():
            exists = self._conn.execute(  # type: ignore[union-attr]
                "SELECT 1 FROM machines WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if replace or not exists:
                self.db["machines"].upsert(_machine_row(fingerprint, system), pk="fingerprint")

    def machine(self, fingerprint: str) -> dict[str, Any] | None:
        """The stored ``SystemProfile.to_dict()`` of a machine, or None."""
        rows = self.query("SELECT system FROM machines WHERE fingerprint = ?", (fingerprint,))
        if not rows or not rows[0]["system"]:
            return None
        try:
            return json.loads(rows[0]["system"])
        except ValueError:
            return None

    def add_profile(
        self,
        *,
        callsite: dict[str, Any],
        profile: WorkloadProfile,
        source: str,
        machine: str,
        noisy: bool = False,
        measured_at: float | None = None,
        uid: str | None = None,
    ) -> int:
        """Store a measured profile (and its function); durable when it returns; the row id.

        ``uid`` identifies the measurement across stores (export/import); a row
        whose ``uid`` is already present is not added again, and its id is returned.
        """
        return self.add_profiles(
            [
                dict(
                    callsite=callsite,
                    profile=profile,
                    source=source,
                    machine=machine,
                    noisy=noisy,
                    measured_at=measured_at,
                    uid=uid,
                )
            ]
        )[0]

    def add_profiles(self, items: Iterable[dict[str, Any]]) -> list[int]:
        """``add_profile`` for many (each a dict of its keyword arguments), in one transaction.

        One commit (and one fsync) for the lot: for imports and bulk loads.
        """
        rows = []
        for kw in items:
            unknown = set(kw) - _PROFILE_KWARGS
            if unknown:
                raise TypeError(f"add_profiles: unknown field(s) {sorted(unknown)}")
            rows.append(self._profile_row(**kw))
        ids: list[int] = []
        with self._write() as conn:
            for callsite, key, row in rows:
                if key["code_hash"]:
                    self._upsert_function(conn, callsite, key)
                found = conn.execute(
                    "SELECT id FROM profiles WHERE uid = ?", (row["uid"],)
                ).fetchone()
                if found:
                    ids.append(int(found[0]))
                    continue
                cur = conn.execute(
                    f"INSERT INTO profiles ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )
                ids.append(int(cur.lastrowid or 0))
        self._maybe_prune()
        return ids

    @staticmethod
    def _profile_row(
        *,
        callsite: dict[str, Any],
        profile: WorkloadProfile,
        source: str,
        machine: str,
        noisy: bool = False,
        measured_at: float | None = None,
        uid: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if source not in PROFILE_SOURCES:
            raise ValueError(f"profile source must be one of {PROFILE_SOURCES}, not {source!r}")
        key = callsite_key(callsite)
        when = time.time() if measured_at is None else float(measured_at)
        body = json.dumps(profile.to_dict(), sort_keys=True)
        if uid is None:
            uid = hashlib.sha256(
                f"{key['code_hash']}|{key['path']}|{key['line']}|{machine}|{when!r}|{body}".encode()
            ).hexdigest()[:32]
        row = {
            "uid": uid,
            **key,
            "machine": machine,
            "measured_at": when,
            "source": source,
            "n_items": profile.n_items,
            "mean_s": profile.mean_s,
            "cv": profile.cv,
            "arg_bytes": profile.arg_bytes,
            "result_bytes": profile.result_bytes,
            "profile": body,
            "noisy": int(bool(noisy)),
        }
        return callsite, key, row

    def _upsert_function(
        self, conn: sqlite3.Connection, callsite: dict[str, Any], key: dict[str, Any]
    ) -> None:
        """Insert or refresh the function row, inside the caller's transaction."""
        cx = callsite.get("complexity") or {}
        path = key["path"]
        row: dict[str, Any] = {
            "code_hash": key["code_hash"],
            "module": Path(path).stem if path else None,
            "qualname": key["function"],
            "path": path,
            "updated_at": time.time(),
        }
        for c in COMPLEXITY_COLUMNS:
            v = cx.get(c)
            row[c] = int(v) if isinstance(v, (int, float)) else None
        io = cx.get("io_calls")
        row["io_calls"] = json.dumps(
            [x for x in io if isinstance(x, str)] if isinstance(io, list) else []
        )
        cols = ", ".join(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "code_hash")
        conn.execute(
            f"INSERT INTO functions ({cols}) VALUES ({', '.join('?' * len(row))}) "
            f"ON CONFLICT(code_hash) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

    def add_outcome(
        self,
        *,
        callsite: dict[str, Any],
        n_jobs: int,
        chunksize: int,
        n_items: int | None,
        wall_s: float,
        predicted_wall_s: float | None,
        predictor_version: str,
        machine: str,
        item_s: float | None = None,
        predicted_item_s: float | None = None,
        recommended_n_jobs: int | None = None,
        recommended_chunksize: int | None = None,
        measured_at: float | None = None,
    ) -> int:
        """Store a real run's wall time beside what was predicted for it; the row id."""
        key = callsite_key(callsite)
        row = {
            **key,
            "n_jobs": int(n_jobs),
            "chunksize": int(chunksize),
            "n_items": n_items,
            "wall_s": float(wall_s),
            "predicted_wall_s": predicted_wall_s,
            "predictor_version": predictor_version,
            "machine": machine,
            "measured_at": time.time() if measured_at is None else float(measured_at),
            "item_s": item_s,
            "predicted_item_s": predicted_item_s,
            "recommended_n_jobs": recommended_n_jobs,
            "recommended_chunksize": recommended_chunksize,
        }
        row.pop("length")
        with self._write() as conn:
            if key["code_hash"]:
                self._upsert_function(conn, callsite, key)
            cur = conn.execute(
                f"INSERT INTO outcomes ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            rowid = int(cur.lastrowid or 0)
        self._maybe_prune()
        return rowid

    # ------------------------------------------------------------------ pruning

    def _maybe_prune(self) -> None:
        counts = self.query(
            "SELECT (SELECT count(*) FROM profiles) AS p, (SELECT count(*) FROM outcomes) AS o"
        )[0]
        if counts["p"] > self.max_profiles or counts["o"] > self.max_profiles:
            self.prune()

    def prune(self) -> dict[str, int]:
        """Delete rows past the cap: superseded profiles first, then the oldest.

        A profile is superseded when a newer one exists for the same function,
        machine and source. Functions with no profile or outcome left go too.
        Returns rows deleted per table.
        """
        keep = max(1, int(self.max_profiles * PRUNE_TO))
        deleted = {"profiles": 0, "outcomes": 0, "functions": 0}
        with self._write() as conn:
            n = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
            if n > self.max_profiles:
                excess = n - keep
                cur = conn.execute(
                    """DELETE FROM profiles WHERE id IN (
                         SELECT p.id FROM profiles p WHERE EXISTS (
                           SELECT 1 FROM profiles q WHERE q.code_hash = p.code_hash
                             AND q.machine = p.machine AND q.source = p.source
                             AND q.measured_at > p.measured_at)
                         ORDER BY p.measured_at LIMIT ?)""",
                    (excess,),
                )
                deleted["profiles"] += cur.rowcount
                excess -= cur.rowcount
                if excess > 0:
                    cur = conn.execute(
                        "DELETE FROM profiles WHERE id IN (SELECT id FROM profiles "
                        "ORDER BY measured_at, id LIMIT ?)",
                        (excess,),
                    )
                    deleted["profiles"] += cur.rowcount
            n = conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
            if n > self.max_profiles:
                cur = conn.execute(
                    "DELETE FROM outcomes WHERE id IN (SELECT id FROM outcomes "
                    "ORDER BY measured_at, id LIMIT ?)",
                    (n - keep,),
                )
                deleted["outcomes"] += cur.rowcount
            if deleted["profiles"] or deleted["outcomes"]:
                cur = conn.execute(
                    """DELETE FROM functions WHERE code_hash NOT IN
                         (SELECT code_hash FROM profiles WHERE code_hash IS NOT NULL)
                       AND code_hash NOT IN
                         (SELECT code_hash FROM outcomes WHERE code_hash IS NOT NULL)"""
                )
                deleted["functions"] += cur.rowcount
        if any(deleted.values()):
            log.info("amorsize store %s pruned %s", self.path, deleted)
        return deleted

    # ------------------------------------------------------------------ reading

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        row = self.query(
            "SELECT (SELECT count(*) FROM machines) AS machines, "
            "(SELECT count(*) FROM functions) AS functions, "
            "(SELECT count(*) FROM profiles) AS profiles, "
            "(SELECT count(*) FROM outcomes) AS outcomes"
        )[0]
        return {k: int(v) for k, v in row.items()}

    def size_bytes(self) -> int:
        """The database file plus its WAL, in bytes."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(str(self.path) + suffix)
        return total

    def profiles(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Profile rows joined with their function's complexity (``where`` on alias ``p``)."""
        return self.query(
            "SELECT p.*, "
            + ", ".join(f"f.{c} AS f_{c}" for c in (*COMPLEXITY_COLUMNS, "io_calls"))
            + " FROM profiles p LEFT JOIN functions f ON f.code_hash = p.code_hash WHERE "
            + where
            + " ORDER BY p.measured_at, p.id",
            params,
        )

    def change_stamp(self) -> tuple[int, int]:
        """Changes when anyone commits (this connection or another): caches compare it."""
        other = int(self.query("PRAGMA data_version")[0]["data_version"])
        return (self._writes, other)


#: SQLite primary result codes that mean the file itself is bad: IOERR (a short read
#: of a truncated file), CORRUPT, NOTADB. A lock timeout (BUSY) is not one of them.
_CORRUPTION_CODES = frozenset({10, 11, 26})


def _is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _CORRUPTION_CODES
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


class _Corrupt(Exception):
    """The file is not a usable SQLite database (internal: leads to quarantine)."""


def _fallback_fingerprint(system: SystemProfile) -> str:
    text = json.dumps(
        [system.usable_cores, system.memory_total_bytes, system.python_version], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _machine_row(fingerprint: str, system: dict[str, Any]) -> dict[str, Any]:
    def num(key: str) -> int | None:
        v = system.get(key)
        return int(v) if isinstance(v, (int, float)) else None

    return {
        "fingerprint": fingerprint,
        "usable_cores": num("usable_cores"),
        "logical_cores": num("logical_cores"),
        "start_method": str(system.get("start_method") or ""),
        "python_version": str(system.get("python_version") or ""),
        "gil_enabled": int(bool(system.get("gil_enabled", True))),
        "calibration": json.dumps(system.get("calibration") or {}, sort_keys=True),
        "system": json.dumps(system, sort_keys=True),
        "updated_at": time.time(),
    }


def row_profile(row: dict[str, Any]) -> WorkloadProfile:
    """The ``WorkloadProfile`` stored in a profiles row."""
    return WorkloadProfile.from_dict(json.loads(row["profile"]))
