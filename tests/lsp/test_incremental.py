"""Reusing a snapshot for an edit must give exactly what a fresh analysis gives."""

from __future__ import annotations

import pytest

from amorsize_lsp.check import CheckSettings
from amorsize_lsp.lsp.incremental import carried, incremental, syntax_error
from amorsize_lsp.lsp.worker import build_snapshot

BASE = """from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool


def helper(v):
    acc = []
    for k in range(v):
        acc.append(k)
    return acc


def score(x):
    return x * x


def run(items):
    with ProcessPoolExecutor(8) as executor:
        return list(executor.map(score, items))


def tail(items):
    with Pool() as pool:
        return pool.imap(score, items)
"""
SETTINGS = CheckSettings(target_cores=4)


def full(text: str):
    return build_snapshot(text, "/p/m.py", SETTINGS, None)


def same(a, b) -> None:
    assert a.issues == b.issues
    assert [(s.span, s.callsite, s.apply_edits) for s in a.sites] == [
        (s.span, s.callsite, s.apply_edits) for s in b.sites
    ]
    assert a.blocks == b.blocks


REUSED = {
    "edit a line": BASE.replace("acc.append(k)", "acc.append(k * 2)"),
    "insert lines": BASE.replace(
        "    return acc\n", "    acc.sort()\n    acc.reverse()\n    return acc\n"
    ),
    "delete a line": BASE.replace("    acc = []\n", ""),
    "comment": BASE.replace("def helper(v):\n", "def helper(v):\n    # note\n"),
    "blank lines after": BASE.replace("    return acc\n", "    return acc\n\n\n\n"),
}
REFUSED = {
    "pool text": BASE.replace("acc.append(k)", "acc.append(Pool)"),
    "rename": BASE.replace("def helper(v):", "def helper2(v):"),
    "noqa": BASE.replace("acc.append(k)", "acc.append(k)  # noqa: AMZ001"),
    "new statement": BASE.replace("def helper(v):", "X = 1\ndef helper(v):"),
    "mapped function": BASE.replace("return x * x", "return x * x * x"),
    "pool statement": BASE.replace("ProcessPoolExecutor(8)", "ProcessPoolExecutor(2)"),
    "uses a pool name": BASE.replace("acc.append(k)", "acc.append(run)"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REUSED))
def test_reused_snapshot_equals_fresh_analysis(name):
    old = full(BASE)
    assert old.issues and old.sites
    new_text = REUSED[name]
    reused = incremental(old, new_text)
    assert reused is not None and reused.how == "incremental"
    same(reused, full(new_text))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_edits_that_may_change_results_are_not_reused(name):
    assert incremental(full(BASE), REFUSED[name]) is None


def test_syntax_error_keeps_results_outside_the_edit_and_moves_them():
    old = full(BASE)
    broken = BASE.replace("def helper(v):", "def helper(v:\n    pass\n")
    err = syntax_error(broken)
    assert err is not None and err.span.line == 5
    snap = carried(old, broken, err)
    assert [e.code for e in snap.errors] == ["E999"]
    assert len(snap.issues) == len(old.issues)
    delta = broken.count("\n") - BASE.count("\n")
    assert [i.span.line for i in snap.issues] == [i.span.line + delta for i in old.issues]
