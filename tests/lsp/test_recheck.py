"""A partial re-check (an edit inside a mapped function) must equal a full check.

The worker keeps its last analysis of each document; for an edit that stays inside
a function the analysis reads only for its complexity, it re-measures that function
and re-runs the per-site rules for the sites that map it (``lsp.recheck``). Each
case here compares that with a fresh full check of the same text, with advice that
depends on the measured function, so that a stale complexity would show.
"""

from __future__ import annotations

from typing import Any

import pytest

from amorsize_lsp.check import CheckSettings
from amorsize_lsp.engine.workload import Recommendation
from amorsize_lsp.lsp.incremental import apply_patch, incremental
from amorsize_lsp.lsp.snapshot import Patch
from amorsize_lsp.lsp.worker import _check_request, _Memory

BASE = """import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool

ITEMS = list(range(1000))


def early(items):
    with Pool(2) as pool:
        return pool.map(score, items)


def score(x):
    total = 0
    total += x * 3
    return total


def helper(v):
    return [v] * 3


def threads(items):
    with ThreadPool(4) as pool:
        return pool.map(score, ITEMS)


def run(items):
    with ProcessPoolExecutor(8) as executor:
        return list(executor.map(score, ITEMS))


def tail():
    with Pool() as pool:
        return pool.imap(score, ITEMS)
"""
SETTINGS = CheckSettings(target_cores=4, gil_enabled=True)


class Advice:
    """Advice that depends on the mapped function's measured size (a stand-in for the
    daemon, whose own tests run it for real): a changed function changes it."""

    def __init__(self) -> None:
        self.used = "none"
        self.asked = 0

    def configure(self, options: dict[str, Any]) -> None:
        pass

    def recommend(self, callsite: dict[str, Any]) -> dict[str, Any] | None:
        self.asked += 1
        cx = callsite.get("complexity") or {}
        size = cx.get("instruction_count") or 0
        self.used = "store"
        serial = size * 1e-3
        if cx.get("blocking_io") or size > 40:
            return Recommendation(
                n_jobs=2,
                chunksize=size,
                executor_kind="process_pool",
                expected_speedup=1.8,
                serial_time_s=serial,
                parallel_time_s=serial / 1.8,
                curve=[(1, 1.0), (2, 1.8)],
                source="measured",
                confidence=0.9,
            ).to_dict()
        return Recommendation(
            n_jobs=1, chunksize=1, executor_kind="process_pool", expected_speedup=1.0,
            serial_time_s=serial, parallel_time_s=serial * 2, use_pool=False,
            curve=[(1, 1.0), (2, 0.5)], source="measured", confidence=0.9,
        ).to_dict()  # fmt: skip


class Session:
    """The worker's side of one document, driven the way the server drives it: each
    request names the text of the last snapshot, and a patch is applied to it."""

    def __init__(self) -> None:
        self.memory, self.advice = _Memory(), Advice()
        self.last = None

    def check(self, text: str):
        request = {"op": "check", "path": "/p/m.py", "text": text, "settings": SETTINGS}
        request["advice"] = {"daemon": False}
        if self.last is not None:
            request["previous"] = self.last.text
        answer = _check_request(request, self.advice, self.memory)  # type: ignore[arg-type]
        if isinstance(answer, Patch):
            answer = apply_patch(self.last, text, answer)
            assert answer is not None
        self.last = answer
        return answer


def fresh(text: str):
    return Session().check(text)


def same(a, b) -> None:
    assert a.issues == b.issues
    assert [(s.span, s.callsite, s.rec, s.apply_title, s.apply_edits) for s in a.sites] == [
        (s.span, s.callsite, s.rec, s.apply_title, s.apply_edits) for s in b.sites
    ]
    assert a.blocks == b.blocks
    assert a.tainted == b.tainted


PARTIAL = {
    "constant": BASE.replace("x * 3", "x * 4"),
    "bigger function": BASE.replace(
        "    total += x * 3\n",
        "    total += x * 3\n" + "".join(f"    total += x * {k} - total // 7\n" for k in range(9)),
    ),
    "a loop": BASE.replace("    total += x * 3\n", "    for k in range(x):\n        total += k\n"),
    "blocking I/O": BASE.replace("    total += x * 3\n", "    time.sleep(0.01)\n"),
    "deleted line": BASE.replace("    total += x * 3\n", ""),
    "blank line": BASE.replace("    total = 0\n", "    total = 0\n\n"),
}
FULL = {
    "passes its parameter through": BASE.replace("    return total\n", "    return x\n", 1),
    "pool text": BASE.replace("total += x * 3", "total += len(Pool.__name__)"),
    "a new use of a pool function": BASE.replace("total += x * 3", "total += len(run(ITEMS))"),
    "a pool statement": BASE.replace("ProcessPoolExecutor(8)", "ProcessPoolExecutor(2)"),
    "noqa": BASE.replace("total += x * 3", "total += x * 3  # noqa"),
}


@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_partial_recheck_equals_a_full_check(name: str) -> None:
    session = Session()
    base = session.check(BASE)
    assert base.how == "full" and base.issues and all(s.rec for s in base.sites)
    new_text = PARTIAL[name]
    partial = session.check(new_text)
    assert partial.how == "partial"
    same(partial, fresh(new_text))


def test_the_cases_change_what_a_full_check_finds() -> None:
    """Otherwise the equality above would hold for a re-check that reused everything."""
    base = fresh(BASE)
    changed = [
        name
        for name, text in PARTIAL.items()
        if [(i.code, i.message) for i in fresh(text).issues]
        != [(i.code, i.message) for i in base.issues]
        or [s.rec for s in fresh(text).sites] != [s.rec for s in base.sites]
    ]
    assert {"bigger function", "blocking I/O", "a loop"} <= set(changed)


def test_successive_partial_rechecks_stay_equal_to_full_checks() -> None:
    session = Session()
    session.check(BASE)
    text = BASE
    for k in range(6):
        text = text.replace("    return total\n", f"    total -= {k}\n    return total\n", 1)
        partial = session.check(text)
        assert partial.how == "partial"
        same(partial, fresh(text))


@pytest.mark.parametrize("name", sorted(FULL))
def test_edits_that_may_change_more_are_checked_in_full(name: str) -> None:
    session = Session()
    session.check(BASE)
    new_text = FULL[name]
    snap = session.check(new_text)
    assert snap.how == "full"
    same(snap, fresh(new_text))


def test_only_the_sites_that_map_the_function_are_asked_again() -> None:
    text = BASE.replace("def helper(v):", "def other(v):\n    return v\n\n\ndef helper(v):")
    text = text.replace("pool.imap(score, ITEMS)", "pool.imap(other, ITEMS)")
    session = Session()
    session.check(text)
    session.advice.asked = 0
    assert session.check(text.replace("x * 3", "x * 5")).how == "partial"
    assert session.advice.asked == text.count("(score,")


def test_the_worker_catches_up_with_edits_the_server_made_alone() -> None:
    """The server moves its snapshot on by itself for edits the analysis never reads;
    the next request names that text, and the patch must fit the server's snapshot."""
    session = Session()
    session.check(BASE)
    moved = BASE.replace("    return [v] * 3\n", "    w = v\n\n    return [w] * 3\n")
    server_side = incremental(session.last, moved)
    assert server_side is not None and server_side.how == "incremental"
    session.last = server_side
    new_text = moved.replace("x * 3", "x * 4")
    partial = session.check(new_text)
    assert partial.how == "partial"
    same(partial, fresh(new_text))


def test_without_the_previous_text_the_worker_checks_in_full() -> None:
    session = Session()
    session.check(BASE)
    session.last = None  # a server that names no previous text (a restart, new settings)
    assert session.check(PARTIAL["constant"]).how == "full"
