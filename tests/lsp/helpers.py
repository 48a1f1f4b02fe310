"""Helpers for the language-server tests: open documents, get diagnostics either way,
apply workspace edits the way an editor does (in the negotiated position encoding)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as t
from pytest_lsp import LanguageClient

POOL_SOURCE = """from concurrent.futures import ProcessPoolExecutor


def score(x):
    return x * x


if __name__ == "__main__":
    with ProcessPoolExecutor() as executor:
        results = list(executor.map(score, range(1000)))
"""


def pulls(client: LanguageClient) -> bool:
    caps = client.capabilities
    return bool(caps and caps.text_document and caps.text_document.diagnostic)


def encoding(client: LanguageClient) -> str:
    return getattr(client, "position_encoding", "utf-16")


def units(client: LanguageClient, text: str) -> int:
    """Length of ``text`` in the session's position units."""
    enc = encoding(client)
    if enc == "utf-8":
        return len(text.encode("utf-8"))
    if enc == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def offset(client: LanguageClient, text: str, pos: t.Position) -> int:
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[: pos.line])
    line = lines[pos.line] if pos.line < len(lines) else ""
    count = 0
    for i, ch in enumerate(line):
        if count >= pos.character:
            return start + i
        count += units(client, ch)
    return start + len(line)


def apply_edit(client: LanguageClient, text: str, edit: t.WorkspaceEdit) -> str:
    """``text`` with the single document's edits of ``edit`` applied."""
    edits: list[t.TextEdit] = []
    for change in edit.document_changes or []:
        edits.extend(change.edits)  # type: ignore[union-attr]
    for change_list in (edit.changes or {}).values():
        edits.extend(change_list)
    located = sorted(
        ((offset(client, text, e.range.start), offset(client, text, e.range.end), e.new_text)
         for e in edits),
        reverse=True,
    )  # fmt: skip
    for start, end, new in located:
        text = text[:start] + new + text[end:]
    return text


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
    while True:
        for seen in getattr(client, "published", {}).get(uri, []):
            if seen.version == version:
                return list(seen.diagnostics)
        if loop.time() > deadline:
            raise AssertionError(f"no diagnostics for {uri} version {version}")
        await asyncio.sleep(0.02)


async def diagnostics(client: LanguageClient, uri: str, version: int) -> list[t.Diagnostic]:
    """The diagnostics of ``version``: pulled when the client pulls, else awaited pushes."""
    if pulls(client):
        report = await client.text_document_diagnostic_async(
            t.DocumentDiagnosticParams(text_document=t.TextDocumentIdentifier(uri=uri))
        )
        return list(report.items)
    return await wait_published(client, uri, version)


async def command(client: LanguageClient, name: str, *args: object):
    return await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command=name, arguments=list(args))
    )
