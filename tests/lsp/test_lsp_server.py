"""The real server over stdio, with VS Code's and Neovim 0.11's capabilities."""

from __future__ import annotations

import asyncio

import pytest
from lsp_helpers import (
    POOL_SOURCE,
    apply_edit,
    change_doc,
    command,
    diagnostics,
    open_doc,
    pulls,
    units,
    wait_published,
)
from lsprotocol import types as t

CALL_LINE = POOL_SOURCE.splitlines().index(
    "        results = list(executor.map(score, range(1000)))"
)


async def test_diagnostics_on_open_and_change(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    diags = await diagnostics(client, uri, 1)
    assert [d.code for d in diags] == ["AMZ001"]
    (d,) = diags
    assert d.source == "amorsize" and d.range.start.line == CALL_LINE
    assert d.code_description is not None and "amz001" in d.code_description.href
    assert d.data["fix"]["edits"] and d.data["suppress"]["newText"].endswith("# noqa: AMZ001")
    fixed = POOL_SOURCE.replace("range(1000))", "range(1000), chunksize=64)")
    change_doc(client, uri, fixed, 2)
    assert await diagnostics(client, uri, 2) == []


async def test_rapid_edits_publish_only_current_versions(client):
    if pulls(client):
        pytest.skip("a pull client asks for the current version itself")
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    await wait_published(client, uri, 1)
    texts = [POOL_SOURCE.replace("range(1000)", f"range({n})") for n in range(100, 110)]
    for version, text in enumerate(texts, start=2):
        change_doc(client, uri, text, version)
    last = len(texts) + 1
    diags = await wait_published(client, uri, last)
    assert [d.code for d in diags] == ["AMZ001"]
    versions = [p.version for p in client.published[uri]]
    assert versions == sorted(versions), "an older version was published after a newer one"
    assert len(versions) < len(texts) + 1, "superseded versions were all analysed and published"


async def test_non_ascii_positions_follow_the_negotiated_encoding(client):
    prefix = '        label = "café 😀"; results = '
    source = POOL_SOURCE.replace("        results = ", prefix)
    uri = open_doc(client, client.root / "u.py", source)
    (d,) = await diagnostics(client, uri, 1)
    assert d.range.start.line == d.range.end.line == CALL_LINE
    inner = "executor.map(score, range(1000))"
    start = units(client, prefix + "list(")
    assert (d.range.start.character, d.range.end.character) == (
        start,
        start + units(client, inner),
    )
    # The emoji and the accent count differently in UTF-8 and UTF-16: the offsets
    # really are converted, not code points.
    assert start != len(prefix + "list(")


async def test_quick_fix_and_suppression_are_applied_and_reanalysed_clean(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    (diag,) = await diagnostics(client, uri, 1)
    actions = await client.text_document_code_action_async(
        t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            range=diag.range,
            context=t.CodeActionContext(diagnostics=[diag], only=[t.CodeActionKind.QuickFix]),
        )
    )
    titles = [a.title for a in actions]
    assert any(x.startswith("Add `chunksize=") for x in titles)
    assert "Suppress AMZ001 on this line" in titles
    for version, action in enumerate(actions, start=2):
        text = apply_edit(client, POOL_SOURCE, action.edit)
        assert text != POOL_SOURCE
        change_doc(client, uri, text, version)
        assert await diagnostics(client, uri, version) == [], action.title


async def test_fix_all_applies_the_safe_fixes(client):
    source = (
        POOL_SOURCE
        + "\n\ndef again(items):\n    with ProcessPoolExecutor(2) as ex:\n"
        + "        return list(ex.map(score, items))\n"
    )
    uri = open_doc(client, client.root / "b.py", source)
    diags = await diagnostics(client, uri, 1)
    assert [d.code for d in diags].count("AMZ001") == 2
    safe = [d for d in diags if d.data.get("fix", {}).get("safe")]
    assert safe, "the known-length call has a safe fix"
    actions = await client.text_document_code_action_async(
        t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            range=t.Range(t.Position(0, 0), t.Position(0, 0)),
            context=t.CodeActionContext(diagnostics=[], only=["source.fixAll.amorsize"]),
        )
    )
    (action,) = actions
    if action.edit is None:
        action = await client.code_action_resolve_async(action)
    fixed = apply_edit(client, source, action.edit)
    assert fixed.count("chunksize=") == len(safe)  # the safe fixes only
    change_doc(client, uri, fixed, 2)
    left = await diagnostics(client, uri, 2)
    assert len(left) == len(diags) - len(safe)
    assert not any(d.data.get("fix", {}).get("safe") for d in left)


async def test_settings_change_reanalyses(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    assert [d.code for d in await diagnostics(client, uri, 1)] == ["AMZ001"]
    client.set_configuration({"lint": {"ignore": ["AMZ001"]}}, section="amorsize")
    client.workspace_did_change_configuration(
        t.DidChangeConfigurationParams(settings={"amorsize": {"lint": {"ignore": ["AMZ001"]}}})
    )
    for _ in range(100):
        if pulls(client):
            diags = await diagnostics(client, uri, 1)
        else:
            diags = client.published[uri][-1].diagnostics
        if not diags:
            break
        await asyncio.sleep(0.05)
    assert not diags


async def test_pyproject_settings_apply(client):
    (client.root / "pyproject.toml").write_text('[tool.amorsize]\nignore = ["AMZ001"]\n')
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    assert await diagnostics(client, uri, 1) == []


async def test_syntax_error_mid_edit_keeps_unchanged_results_at_right_positions(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    await diagnostics(client, uri, 1)
    broken = "def half(:\n" + POOL_SOURCE
    change_doc(client, uri, broken, 2)
    diags = await diagnostics(client, uri, 2)
    codes = sorted(str(d.code) for d in diags)
    assert codes == ["AMZ001", "E999"]
    amz = next(d for d in diags if d.code == "AMZ001")
    assert amz.range.start.line == CALL_LINE + 1  # moved with the inserted line
    broken_call = POOL_SOURCE.replace("range(1000)))", "range(1000)")
    change_doc(client, uri, broken_call, 3)
    diags = await diagnostics(client, uri, 3)
    assert "AMZ001" not in [d.code for d in diags]  # the edited statement's result is gone
    assert [d.code for d in diags] == ["E999"]


async def test_untitled_buffer_is_analysed_from_its_text(client):
    uri = "untitled:Untitled-1"
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(
            t.TextDocumentItem(uri=uri, language_id="python", version=1, text=POOL_SOURCE)
        )
    )
    assert [d.code for d in await diagnostics(client, uri, 1)] == ["AMZ001"]


async def test_notebook_documents_do_not_crash_it(client):
    nb = "file:///tmp/notebook.ipynb"
    cell = "vscode-notebook-cell:/tmp/notebook.ipynb#C1"
    client.notebook_document_did_open(
        t.DidOpenNotebookDocumentParams(
            notebook_document=t.NotebookDocument(
                uri=nb,
                notebook_type="jupyter-notebook",
                version=1,
                cells=[t.NotebookCell(kind=t.NotebookCellKind.Code, document=cell)],
            ),
            cell_text_documents=[
                t.TextDocumentItem(uri=cell, language_id="python", version=1, text=POOL_SOURCE)
            ],
        )
    )
    status = await command(client, "amorsize.showStatus")
    assert status["server"]["version"]


async def test_untrusted_workspace_refuses_to_sample(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    await diagnostics(client, uri, 1)
    with pytest.raises(Exception, match="not trusted"):
        await command(client, "amorsize.sampleCallSite", {"uri": uri, "line": CALL_LINE + 1})
    lenses = await client.text_document_code_lens_async(
        t.CodeLensParams(text_document=t.TextDocumentIdentifier(uri=uri))
    )
    assert not lenses


async def test_daemon_down_warns_once_and_status_says_so(client):
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    await diagnostics(client, uri, 1)
    for version in range(2, 5):
        change_doc(client, uri, POOL_SOURCE + f"\nX = {version}\n", version)
        await diagnostics(client, uri, version)
    warnings = [m for m in client.messages if "daemon is not running" in m.message]
    assert len(warnings) == 1
    status = await command(client, "amorsize.showStatus")
    assert status["daemon"]["state"] == "down"
    assert status["measured_call_sites_open"] == 0


async def test_edit_in_unrelated_function_is_not_reanalysed(client):
    helper = (
        "\n\ndef helper(v):\n    total = 0\n    for i in range(v):\n"
        "        total += i\n    return total\n"
    )
    source = POOL_SOURCE + helper
    uri = open_doc(client, client.root / "a.py", source)
    (first,) = await diagnostics(client, uri, 1)
    before = (await command(client, "amorsize.showStatus"))["worker"]["requests"]
    edited = source.replace("total += i\n", "total += i * 2\n        total -= 1\n")
    change_doc(client, uri, edited, 2)
    (after,) = await diagnostics(client, uri, 2)
    assert after.range == first.range
    status = await command(client, "amorsize.showStatus")
    assert status["worker"]["requests"] == before
    # An edit above the call moves the (reused) result by the inserted lines.
    moved = edited.replace("def score(x):\n", "def score(x):\n    # a comment\n")
    change_doc(client, uri, moved, 3)
    (shifted,) = await diagnostics(client, uri, 3)
    assert shifted.range.start.line == first.range.start.line + 1


async def test_edit_in_a_mapped_function_is_rechecked_in_part(client):
    """The worker re-measures the edited function and sends a patch; what the editor
    gets equals a fresh analysis of the same text."""
    uri = open_doc(client, client.root / "a.py", POOL_SOURCE)
    (first,) = await diagnostics(client, uri, 1)
    assert first.code == "AMZ001"
    before = (await command(client, "amorsize.showStatus"))["analyses"].get("partial", 0)
    # Blocking I/O in the mapped function: IPC per item no longer matters, AMZ001 goes.
    slow = POOL_SOURCE.replace(
        "def score(x):\n    return x * x\n",
        "def score(x):\n    time.sleep(0.01)\n\n    return x * x\n",
    ).replace("from concurrent", "import time\nfrom concurrent")
    change_doc(client, uri, slow, 2)
    assert await diagnostics(client, uri, 2) == []  # a new import statement: a full check
    back = slow.replace("    time.sleep(0.01)\n\n", "    x += 1\n")
    change_doc(client, uri, back, 3)
    rechecked = await diagnostics(client, uri, 3)
    change_doc(client, uri, slow.replace("time.sleep(0.01)", "time.sleep(0.02)"), 4)
    slept = await diagnostics(client, uri, 4)
    status = await command(client, "amorsize.showStatus")
    assert status["analyses"].get("partial", 0) >= before + 2
    fresh_uri = open_doc(client, client.root / "b.py", back)
    fresh = await diagnostics(client, fresh_uri, 1)
    assert [(d.code, d.range, d.message) for d in rechecked] == [
        (d.code, d.range, d.message) for d in fresh
    ]
    assert [d.code for d in rechecked] == ["AMZ001"] and slept == []


CALLS_AT_IMPORT = """from concurrent.futures import ProcessPoolExecutor


def helper(v):
    return v


def run(items):
    with ProcessPoolExecutor(2) as ex:
        return list(ex.map(abs, items, chunksize=8))


run(range(100))
"""


async def test_related_information_points_at_the_pool_and_moves_with_it(client):
    """AMZ003 on a call at import names where the pool is created; after an edit above
    it (reused without analysis), the related location has moved with the text."""
    uri = open_doc(client, client.root / "imp.py", CALLS_AT_IMPORT)
    (diag,) = [d for d in await diagnostics(client, uri, 1) if d.code == "AMZ003"]
    pool_line = CALLS_AT_IMPORT.splitlines().index("    with ProcessPoolExecutor(2) as ex:")
    related = diag.related_information
    related_support = client.capabilities.text_document.publish_diagnostics.related_information
    if not related_support:
        assert related is None
        return
    assert [(r.location.uri, r.location.range.start.line) for r in related] == [(uri, pool_line)]
    assert "created here" in related[0].message
    moved = CALLS_AT_IMPORT.replace("    return v\n", "    w = v\n    return w\n")
    change_doc(client, uri, moved, 2)
    (after,) = [d for d in await diagnostics(client, uri, 2) if d.code == "AMZ003"]
    assert [r.location.range.start.line for r in after.related_information] == [pool_line + 1]
