"""Helpers for the language-server tests: open documents, get diagnostics either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as t
from pytest_lsp import LanguageClient


def pulls(client: LanguageClient) -> bool:
    caps = client.capabilities
    return bool(caps and caps.text_document and caps.text_document.diagnostic)


def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(
            t.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    return uri


def change_doc(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def wait_published(client: LanguageClient, uri: str, version: int, timeout: float = 30):
    """Wait until diagnostics for ``version`` of ``uri`` are published; return them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        params = await asyncio.wait_for(
            client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS),
            deadline - loop.time(),
        )
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)
        if params.uri == uri and params.version is not None and params.version > version:
            raise AssertionError(f"diagnostics for version {params.version} came before {version}")
    raise AssertionError(f"no diagnostics for {uri} version {version}")


async def diagnostics(client: LanguageClient, uri: str, version: int) -> list[t.Diagnostic]:
    """The diagnostics of ``version``: pulled when the client pulls, else awaited pushes."""
    if pulls(client):
        report = await client.text_document_diagnostic_async(
            t.DocumentDiagnosticParams(text_document=t.TextDocumentIdentifier(uri=uri))
        )
        return list(report.items)
    return await wait_published(client, uri, version)
