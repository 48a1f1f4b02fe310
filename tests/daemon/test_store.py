"""The SQLite store on real files: durability, quarantine, read-only readers, migration, pruning."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from data_helpers import callsites_of, loop_function, profile

from amorsize_lsp.daemon.store import (
    SCHEMA_VERSION,
    Store,
    StoreError,
    _switch_to_wal,
    default_db_path,
)
from amorsize_lsp.engine.system import SystemProfile

#: A child that writes profiles as fast as it can and prints each id once add_profile returns.
WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from data_helpers import callsites_of, loop_function, profile
    from amorsize_lsp.daemon.store import Store
    from amorsize_lsp.engine.system import SystemProfile

    store = Store(sys.argv[1])
    machine = store.record_machine(SystemProfile.synthetic())
    sites = [callsites_of(loop_function(f"f{i}", 1 + i % 3, i))[0] for i in range(5)]
    i = 0
    while True:
        rowid = store.add_profile(
            callsite=sites[i % 5], profile=profile(1e-4 * (1 + i)), source="sample",
            machine=machine,
        )
        print(rowid, flush=True)
        i += 1
    """
)

HERE = str(Path(__file__).parent)


@pytest.fixture
def site() -> dict:
    return callsites_of(loop_function("work", 2, 1))[0]


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_fresh_store_has_schema_wal_and_tables(tmp_path: Path, site: dict) -> None:
    path = tmp_path / "sub" / "dir" / "a.db"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        assert store.query("PRAGMA synchronous")[0]["synchronous"] >= 1  # NORMAL or stronger
        assert store.query("PRAGMA busy_timeout")[0]["timeout"] > 0
        fp = store.record_machine(SystemProfile.synthetic(fingerprint="m1"))
        rowid = store.add_profile(callsite=site, profile=profile(2e-3), source="sample", machine=fp)
        counts = store.counts()
    assert counts == {"machines": 1, "functions": 1, "profiles": 1, "outcomes": 0}
    with Store(path, readonly=True) as ro:
        rows = ro.profiles()
    assert [r["id"] for r in rows] == [rowid]
    assert rows[0]["code_hash"] == site["complexity"]["code_hash"]
    assert rows[0]["f_loop_count"] == site["complexity"]["loop_count"]
    assert rows[0]["length"] == site["length"]


def test_default_path_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMORSIZE_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("AMORSIZE_DB")
    assert default_db_path().name == "amorsize.db"


def test_bad_profile_source_is_refused(tmp_path: Path, site: dict) -> None:
    with Store(tmp_path / "a.db") as store, pytest.raises(ValueError, match="source"):
        store.add_profile(callsite=site, profile=profile(1e-3), source="guess", machine="m")


def test_acknowledged_rows_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "burst.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), HERE],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(acked) >= 40, "the writer did not acknowledge enough rows"
    assert _integrity(path) == "ok"
    with Store(path) as store:
        ids = {r["id"] for r in store.query("SELECT id FROM profiles")}
        assert store.quarantined is None
    assert set(acked) <= ids


def test_garbage_file_is_quarantined_and_replaced(
    tmp_path: Path, site: dict, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="amorsize.daemon"), Store(path) as store:
        assert store.quarantined is not None
        assert store.quarantined.name.startswith("a.db.corrupt-")
        assert store.quarantined.read_bytes() == garbage
        assert store.counts()["profiles"] == 0
        store.add_profile(callsite=site, profile=profile(1e-3), source="sample", machine="m")
    lines = [r for r in caplog.records if r.name == "amorsize.daemon"]
    assert len(lines) == 1
    assert str(path) in lines[0].getMessage()
    assert str(store.quarantined) in lines[0].getMessage()
    with Store(path) as again:
        assert again.quarantined is None
        assert again.counts()["profiles"] == 1


def test_truncated_file_is_quarantined(tmp_path: Path, site: dict) -> None:
    path = tmp_path / "a.db"
    with Store(path) as store:
        for i in range(300):
            store.add_profile(
                callsite=site,
                profile=profile(1e-3, notes=["x" * 200]),
                source="sample",
                machine=f"m{i}",
            )
    size = path.stat().st_size
    assert size > 16384
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with Store(path) as store:
        assert store.quarantined is not None
        assert store.quarantined.stat().st_size == size // 2
        assert store.counts()["profiles"] == 0
    assert _integrity(path) == "ok"


def test_newer_schema_is_refused_not_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)
    assert path.exists()
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_readonly_needs_an_existing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no amorsize store"):
        Store(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_readonly_cannot_write(tmp_path: Path, site: dict) -> None:
    Store(tmp_path / "a.db").close()
    with (
        Store(tmp_path / "a.db", readonly=True) as ro,
        pytest.raises(StoreError, match="read-only"),
    ):
        ro.add_profile(callsite=site, profile=profile(1e-3), source="sample", machine="m")


def test_readonly_reader_while_a_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), HERE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the schema exists once a row is acknowledged
        assert first.strip()
        reader = Store(path, readonly=True)
        seen = []
        for _ in range(30):
            seen.append(reader.counts()["profiles"])
            time.sleep(0.02)
        last_acked = int(proc.stdout.readline())
        visible = reader.query("SELECT id FROM profiles WHERE id = ?", (last_acked,))
        reader.close()
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert seen == sorted(seen)
    assert seen[0] >= 1
    assert visible == [{"id": last_acked}], "an acknowledged row is invisible to the reader"
    assert seen[-1] > seen[0], "the reader never saw the writer's new rows"


#: The version-1 schema, frozen as it was first shipped.
V1_SQL = """
CREATE TABLE machines (fingerprint TEXT PRIMARY KEY, usable_cores INTEGER,
  logical_cores INTEGER, start_method TEXT, python_version TEXT, gil_enabled INTEGER,
  calibration TEXT, system TEXT, updated_at FLOAT);
CREATE TABLE functions (code_hash TEXT PRIMARY KEY, module TEXT, qualname TEXT, path TEXT,
  bytecode_size INTEGER, instruction_count INTEGER, loop_count INTEGER,
  max_loop_depth INTEGER, call_count INTEGER, recursive INTEGER, blocking_io INTEGER,
  io_calls TEXT, updated_at FLOAT);
CREATE TABLE profiles (id INTEGER PRIMARY KEY, uid TEXT, code_hash TEXT, function TEXT,
  path TEXT, line INTEGER, executor_kind TEXT, length INTEGER, machine TEXT,
  measured_at FLOAT, source TEXT, n_items INTEGER, mean_s FLOAT, cv FLOAT,
  arg_bytes FLOAT, result_bytes FLOAT, profile TEXT);
CREATE TABLE outcomes (id INTEGER PRIMARY KEY, code_hash TEXT, function TEXT, path TEXT,
  line INTEGER, executor_kind TEXT, n_jobs INTEGER, chunksize INTEGER, n_items INTEGER,
  wall_s FLOAT, predicted_wall_s FLOAT, predictor_version TEXT, machine TEXT,
  measured_at FLOAT);
CREATE UNIQUE INDEX profiles_uid ON profiles(uid);
PRAGMA user_version=1;
"""


def test_migration_from_version_1_keeps_rows(tmp_path: Path, site: dict) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQL)
    body = json.dumps(profile(3e-3).to_dict())
    conn.execute(
        "INSERT INTO profiles (uid, code_hash, function, path, line, machine, measured_at, "
        "source, n_items, mean_s, profile) VALUES ('u1', 'h1', 'f', '/p.py', 3, 'm', 1.0, "
        "'sample', 100, 0.003, ?)",
        (body,),
    )
    conn.execute(
        "INSERT INTO outcomes (code_hash, n_jobs, chunksize, wall_s, predictor_version, machine, "
        "measured_at) VALUES ('h1', 2, 10, 0.5, 'knn-0', 'm', 1.0)"
    )
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.quarantined is None
        assert store.schema_version == SCHEMA_VERSION
        rows = store.profiles()
        assert [(r["uid"], r["noisy"], r["mean_s"]) for r in rows] == [("u1", 0, 0.003)]
        store.add_outcome(
            callsite=site,
            n_jobs=2,
            chunksize=5,
            n_items=100,
            wall_s=0.2,
            predicted_wall_s=0.25,
            predictor_version="v",
            machine="m",
            item_s=1e-3,
        )
        items = store.query("SELECT item_s FROM outcomes ORDER BY id")
    assert [r["item_s"] for r in items] == [None, 1e-3]


def test_pruning_drops_superseded_then_oldest(tmp_path: Path) -> None:
    cap = 20
    sites = [callsites_of(loop_function(f"g{i}", 1 + i % 3, i))[0] for i in range(6)]
    with Store(tmp_path / "a.db", max_profiles=cap) as store:
        t = 1000.0
        written = []
        for rnd in range(6):
            for s in sites:
                t += 1
                store.add_profile(
                    callsite=s,
                    profile=profile(1e-3 * (rnd + 1)),
                    source="sample",
                    machine="m",
                    measured_at=t,
                )
                written.append((s["complexity"]["code_hash"], t))
        rows = store.query("SELECT code_hash, measured_at FROM profiles")
        counts = store.counts()
    assert len(rows) <= cap
    assert counts["profiles"] == len(rows)
    # The newest profile of every function survives: only superseded ones were pruned.
    newest = {}
    for h, when in written:
        newest[h] = when
    kept = {(r["code_hash"], r["measured_at"]) for r in rows}
    assert set(newest.items()) <= kept
    assert counts["functions"] == len(sites)


def test_pruning_oldest_when_nothing_is_superseded(tmp_path: Path) -> None:
    cap = 5
    sites = [callsites_of(loop_function(f"h{i}", 1, i))[0] for i in range(cap + 3)]
    with Store(tmp_path / "a.db", max_profiles=cap) as store:
        for i, s in enumerate(sites):
            store.add_profile(
                callsite=s,
                profile=profile(1e-3),
                source="sample",
                machine="m",
                measured_at=100.0 + i,
            )
        left = store.query("SELECT code_hash FROM profiles ORDER BY measured_at")
        functions = store.counts()["functions"]
    hashes = [s["complexity"]["code_hash"] for s in sites]
    assert [r["code_hash"] for r in left] == hashes[-len(left) :]
    assert len(left) <= cap
    assert functions == len(left)


def test_import_uid_is_idempotent(tmp_path: Path, site: dict) -> None:
    with Store(tmp_path / "a.db") as store:
        a = store.add_profile(
            callsite=site, profile=profile(1e-3), source="import", machine="m", uid="same"
        )
        b = store.add_profile(
            callsite=site, profile=profile(1e-3), source="import", machine="m", uid="same"
        )
        assert a == b
        assert store.counts()["profiles"] == 1


def test_bulk_add_is_one_transaction_and_validated_first(tmp_path: Path) -> None:
    sites = [callsites_of(loop_function(f"b{i}", 1 + i % 3, i))[0] for i in range(12)]
    items = [dict(callsite=s, profile=profile(1e-3), source="sample", machine="m") for s in sites]
    with Store(tmp_path / "a.db") as store:
        bad = [*items[:3], dict(items[3], source="guess")]
        with pytest.raises(ValueError, match="source"):
            store.add_profiles(bad)
        assert store.counts()["profiles"] == 0
        ids = store.add_profiles(items)
        assert len(set(ids)) == len(items)
        assert store.counts() == {
            "machines": 0,
            "functions": len({s["complexity"]["code_hash"] for s in sites}),
            "profiles": len(items),
            "outcomes": 0,
        }


#: Opens the store (racing the others to create it) and adds one profile.
OPENER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from data_helpers import callsites_of, loop_function, profile
    from amorsize_lsp.daemon.store import Store

    site = callsites_of(loop_function("r" + sys.argv[3], 1, int(sys.argv[3])))[0]
    while time.time() < float(sys.argv[4]):
        time.sleep(0.001)
    with Store(sys.argv[1]) as store:
        store.add_profile(callsite=site, profile=profile(1e-3), source="sample", machine="m")
        print(store.schema_version)
    """
)


def test_processes_racing_to_create_the_store_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    start = time.time() + 1.0
    n = 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path), HERE, str(i), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    assert [out.strip() for out, _ in results] == [str(SCHEMA_VERSION)] * n
    with Store(path) as store:
        assert store.counts()["profiles"] == n
        assert store.quarantined is None
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_connections_switching_a_new_file_to_wal_at_once_all_succeed(tmp_path: Path) -> None:
    """SQLite answers a lock-upgrade deadlock with "database is locked" at once,
    without the busy timeout; two processes creating the store hit it (seen in CI)."""
    failures: list[Exception] = []
    for trial in range(60):
        path = tmp_path / f"wal{trial}.db"
        barrier = threading.Barrier(6)

        def switch(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
            barrier.wait()
            try:
                assert _switch_to_wal(conn) == "wal"
            except Exception as exc:
                failures.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=switch) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
