"""Start the analysis worker: kept apart from ``worker`` so that the server's entry
point can start it before loading anything else (asyncio, pygls, lsprotocol)."""

from __future__ import annotations

import subprocess
import sys


def spawn_command(python: str | None = None) -> list[str]:
    """The worker's command line."""
    return [python or sys.executable, "-m", "amorsize_lsp.lsp.worker"]


def spawn() -> subprocess.Popen[bytes]:
    """Start the worker before the server has loaded: both import at once, on two
    cores, and the first file's analysis does not wait for the server's start-up."""
    return subprocess.Popen(spawn_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
