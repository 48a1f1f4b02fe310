"""Sampling through a real daemon: progress, hints, hover, "Apply recommended", cancel."""

from __future__ import annotations

import asyncio

import pytest
from conftest import start_daemon, stop_daemon
from helpers import apply_edit, change_doc, command, diagnostics, open_doc
from lsprotocol import types as t

WORK = """from multiprocessing import Pool


def score(x):
    total = 0
    for i in range(3000):
        total += i * x
    return total


if __name__ == "__main__":
    with Pool(1) as pool:
        results = pool.map(score, range(4000), chunksize=1)
"""
CALL_LINE = 13  # 1-based
#: Items that take ~0.2 s each: a sample of it runs for seconds, long enough to cancel.
SLOW = WORK.replace("range(3000)", "range(3_000_000)")


async def trust(client, **extra):
    """Trust the workspace and enable sampling; wait until the server has the settings."""
    settings = {"trusted": True, "sampling": {"enabled": True, "budgetSeconds": 1.0}, **extra}
    client.set_configuration(settings, section="amorsize")
    client.workspace_did_change_configuration(
        t.DidChangeConfigurationParams(settings={"amorsize": settings})
    )
    budget = settings["sampling"]["budgetSeconds"]
    for _ in range(200):
        now = (await command(client, "amorsize.showStatus"))["settings"]
        if now["trusted"] and now["sampling.budgetSeconds"] == budget:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server did not take the new settings")


async def hints(client, uri):
    return await client.text_document_inlay_hint_async(
        t.InlayHintParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            range=t.Range(t.Position(0, 0), t.Position(100, 0)),
        )
    )


async def test_sample_then_hint_hover_and_apply_recommended(client, daemon):
    await trust(client)
    uri = open_doc(client, client.root / "work.py", WORK)
    await diagnostics(client, uri, 1)
    assert not await hints(client, uri)  # nothing known yet: no hint
    lenses = []
    for _ in range(50):
        lenses = await client.text_document_code_lens_async(
            t.CodeLensParams(text_document=t.TextDocumentIdentifier(uri=uri))
        )
        if lenses:
            break
        await asyncio.sleep(0.1)
    (lens,) = lenses
    assert lens.command.title == "Sample this call"
    status = await command(client, lens.command.command, *lens.command.arguments)
    assert status["state"] == "done"
    rec = status["result"]["recommendation"]
    reports = [r for reps in client.progress_reports.values() for r in reps]
    kinds = [getattr(r, "kind", None) for r in reports]
    assert kinds[0] == "begin" and kinds[-1] == "end"

    (hint,) = await hints(client, uri)
    assert "(measured)" in hint.label
    assert hint.position.line == CALL_LINE - 1
    hover = await client.text_document_hover_async(
        t.HoverParams(t.TextDocumentIdentifier(uri=uri), t.Position(CALL_LINE - 1, 20))
    )
    assert "Provenance: **measured**" in hover.contents.value
    assert "Speedup versus workers" in hover.contents.value and "█" in hover.contents.value
    lens_after = await client.text_document_code_lens_async(
        t.CodeLensParams(text_document=t.TextDocumentIdentifier(uri=uri))
    )
    assert lens_after[0].command.title.startswith("Measured ")

    actions = await client.text_document_code_action_async(
        t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            range=t.Range(t.Position(CALL_LINE - 1, 20), t.Position(CALL_LINE - 1, 20)),
            context=t.CodeActionContext(diagnostics=[], only=[t.CodeActionKind.RefactorRewrite]),
        )
    )
    if not rec["use_pool"]:  # a busy machine may make serial win: then no rewrite
        assert "serial is faster" in hint.label and not actions
        return
    (action,) = actions
    assert action.title == (
        f"Apply recommended: {rec['n_jobs']} worker{'s' if rec['n_jobs'] != 1 else ''}, "
        f"chunksize={rec['chunksize']}"
    )
    if action.edit is None:
        action = await client.code_action_resolve_async(action)
    text = apply_edit(client, WORK, action.edit)
    assert f"Pool({rec['n_jobs']})" in text and f"chunksize={rec['chunksize']}" in text
    change_doc(client, uri, text, 2)
    diags = await diagnostics(client, uri, 2)
    assert "AMZ100" not in [d.code for d in diags]


async def test_sampling_can_be_cancelled(client, daemon):
    await trust(client, sampling={"enabled": True, "budgetSeconds": 20.0})
    uri = open_doc(client, client.root / "work.py", SLOW)
    await diagnostics(client, uri, 1)
    task = asyncio.ensure_future(
        command(client, "amorsize.sampleCallSite", {"uri": uri, "line": CALL_LINE})
    )
    token = None
    for _ in range(200):
        if client.progress_reports:
            token = next(iter(client.progress_reports))
            break
        await asyncio.sleep(0.05)
    assert token is not None
    await asyncio.sleep(0.3)
    client.window_work_done_progress_cancel(t.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 60)
    assert result["state"] == "cancelled", result
    end = client.progress_reports[token][-1]
    assert getattr(end, "kind", None) == "end" and end.message == "cancelled"


async def test_daemon_coming_up_is_picked_up_by_itself(client):
    uri = open_doc(client, client.root / "work.py", WORK)
    await diagnostics(client, uri, 1)
    assert any("daemon is not running" in m.message for m in client.messages)
    proc = start_daemon()
    try:
        back = False
        for version in range(2, 40):
            # An edit of the pool statement: the worker analyses it and asks for advice.
            change_doc(
                client, uri, WORK.replace("range(4000)", f"range({4000 + version})"), version
            )
            await diagnostics(client, uri, version)
            if any("daemon is back" in m.message for m in client.log_messages):
                back = True
                break
            await asyncio.sleep(0.5)
        assert back
    finally:
        stop_daemon(proc)


async def test_cancel_request_stops_the_sampling_job(client, daemon):
    await trust(client, sampling={"enabled": True, "budgetSeconds": 20.0})
    uri = open_doc(client, client.root / "work.py", SLOW)
    await diagnostics(client, uri, 1)
    params = t.ExecuteCommandParams(
        command="amorsize.sampleCallSite", arguments=[{"uri": uri, "line": CALL_LINE}]
    )
    task = asyncio.ensure_future(
        client.protocol.send_request_async(
            t.WORKSPACE_EXECUTE_COMMAND, params, msg_id="sample-to-cancel"
        )
    )
    for _ in range(200):
        if client.progress_reports:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="sample-to-cancel"))
    with pytest.raises(Exception, match=r"(?i)cancel"):
        await asyncio.wait_for(task, 60)
    from conftest import SOCKET

    from amorsize_lsp.daemon.client import DaemonClient

    for _ in range(100):  # the server cancels the daemon's job too
        with DaemonClient(SOCKET) as c:
            jobs = c.call("status")["jobs"]
        if jobs.get("cancelled"):
            break
        await asyncio.sleep(0.1)
    assert jobs.get("cancelled") == 1, jobs
