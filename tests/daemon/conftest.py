"""Fixtures for the daemon tests: real daemon processes, each stopped at teardown.

Sockets live under short ``/tmp`` directories (AF_UNIX paths are limited to about
107 bytes). The helpers the tests import are in ``daemon_helpers.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import RunningDaemon, start_daemon, stop_daemon


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short private directory under /tmp (socket paths must stay under ~107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="amz-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon_factory(short_tmp: Path) -> Iterator[Any]:
    """Start daemons (each in its own directory); all are stopped at teardown."""
    started: list[RunningDaemon] = []

    def make(*extra: str, db: Path | None = None) -> RunningDaemon:
        directory = short_tmp / f"d{len(started)}"
        directory.mkdir()
        d = start_daemon(directory, *extra, db=db)
        started.append(d)
        return d

    yield make
    for d in started:
        stop_daemon(d.socket, d.proc)


@pytest.fixture
def daemon(daemon_factory: Any) -> RunningDaemon:
    """One running daemon with a fresh store."""
    return daemon_factory()
