"""pytest-lsp fixtures: the real server over stdio, with VS Code's and Neovim 0.11's
capabilities. Each test gets its own daemon socket and store paths, so no test
talks to a daemon it did not start."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

#: One private directory for this test session's daemon socket and store.
SCRATCH = Path(tempfile.mkdtemp(prefix="amz-lsp-tests-"))
SOCKET = SCRATCH / "daemon.sock"
DB = SCRATCH / "store.db"
ENV = {
    **os.environ,
    "AMORSIZE_SOCKET": str(SOCKET),
    "AMORSIZE_DB": str(DB),
    "PYTHONUNBUFFERED": "1",
}
SERVER = [sys.executable, "-m", "amorsize_lsp"]
CLIENTS = ["visual-studio-code", "neovim@v0.11.0"]
#: Settings every test starts from: no daemon spawned behind the test's back.
BASE_OPTIONS = {"daemon": {"autoStart": False}, "diagnostics": {"debounceMs": 0}}


def options(**extra: object) -> dict:
    merged = {**BASE_OPTIONS}
    for key, value in extra.items():
        merged[key] = value
    return merged


def record_publishes(client: LanguageClient) -> None:
    """Keep every publishDiagnostics in order (pytest-lsp keeps only the last per URI)."""
    client.published = {}  # type: ignore[attr-defined]

    def _published(params: t.PublishDiagnosticsParams) -> None:
        client.published.setdefault(params.uri, []).append(params)  # type: ignore[attr-defined]
        client.diagnostics[params.uri] = params.diagnostics

    client.protocol.fm.features[t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = _published
    # Editors answer these refresh requests; the test client counts them.
    client.refreshes = []  # type: ignore[attr-defined]
    for method in (t.WORKSPACE_INLAY_HINT_REFRESH, t.WORKSPACE_CODE_LENS_REFRESH):
        client.protocol.fm.features.setdefault(
            method,
            lambda params, m=method: client.refreshes.append(m),  # type: ignore[attr-defined]
        )


async def start(lsp_client: LanguageClient, spec: str, root: Path, init: dict) -> None:
    params = t.InitializeParams(
        capabilities=client_capabilities(spec),
        initialization_options=init,
        workspace_folders=[t.WorkspaceFolder(uri=root.as_uri(), name="ws")],
        root_uri=root.as_uri(),
        client_info=t.ClientInfo(name=spec),
    )
    result = await lsp_client.initialize_session(params)
    enc = result.capabilities.position_encoding
    lsp_client.position_encoding = str(getattr(enc, "value", enc) or "utf-16")  # type: ignore[attr-defined]


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env=ENV), params=CLIENTS
)
async def client(request, lsp_client: LanguageClient, tmp_path: Path):
    """An initialised session per client capability set; the workspace is ``tmp_path``."""
    lsp_client.set_configuration({}, section="amorsize")
    record_publishes(lsp_client)
    await start(lsp_client, request.param, tmp_path, options())
    lsp_client.spec = request.param  # type: ignore[attr-defined]
    lsp_client.root = tmp_path  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def uses_pull(client: LanguageClient) -> bool:
    caps = client.capabilities
    return bool(caps and caps.text_document and caps.text_document.diagnostic)


def start_daemon() -> subprocess.Popen[bytes]:
    """A real daemon on the session's socket and store, in the foreground."""
    log = (SCRATCH / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "amorsize_lsp.daemon", "serve", "--foreground",
         "--socket", str(SOCKET), "--db", str(DB)],
        env=ENV, stdout=log, stderr=log,
    )  # fmt: skip
    from amorsize_lsp.daemon.client import DaemonClient, DaemonError

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with DaemonClient(SOCKET, timeout_s=2) as c:
                c.call("status")
            return proc
        except DaemonError:
            if proc.poll() is not None:
                log_text = (SCRATCH / "daemon.log").read_text()
                raise RuntimeError(f"the daemon exited: {log_text}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the daemon did not answer within 30 s")


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    """Stop it and forget what it measured, so the next test starts from nothing."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for path in SCRATCH.glob(DB.name + "*"):
        path.unlink()


@pytest.fixture
def daemon():
    proc = start_daemon()
    yield proc
    stop_daemon(proc)
