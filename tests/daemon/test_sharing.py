"""Sharing measurements: JSON-lines export/import and a project's committed profiles."""

from __future__ import annotations

import io
import json
import logging
import math
import os
from pathlib import Path

import pytest
from data_helpers import callsites_of, loop_function, profile

from amorsize_lsp.daemon import advisor as advisor_module
from amorsize_lsp.daemon.advisor import Advisor
from amorsize_lsp.daemon.sharing import (
    SharingError,
    export_profiles,
    import_profiles,
    project_profiles_path,
)
from amorsize_lsp.daemon.store import Store
from amorsize_lsp.engine.system import Calibration, SystemProfile


def machine(fp: str, item_s: float, measured: bool = True) -> SystemProfile:
    return SystemProfile.synthetic(
        fingerprint=fp, calibration=Calibration(pool_item_s=item_s, measured=measured)
    )


def site_in(root: Path, name: str, depth: int, calls: int = 0) -> dict:
    return callsites_of(loop_function(name, depth, calls), path=str(root / "pkg" / "mod.py"))[0]


@pytest.fixture
def teammate(tmp_path: Path) -> tuple[Store, SystemProfile, list[dict]]:
    """A colleague's store: three functions measured on a machine twice as slow."""
    system = machine("teammate", 4e-6)
    store = Store(tmp_path / "teammate.db")
    store.record_machine(system)
    sites = [site_in(tmp_path / "proj", f"f{i}", 1 + i, i) for i in range(3)]
    for i, s in enumerate(sites):
        store.add_profile(
            callsite=s, profile=profile(1e-3 * (i + 1)), source="sample", machine="teammate"
        )
    yield store, system, sites
    store.close()


def export_text(store: Store, project: Path | None = None) -> str:
    buf = io.StringIO()
    n = export_profiles(store, buf, project=project)
    text = buf.getvalue()
    assert n == len(text.splitlines())
    return text


def test_export_import_round_trip_is_idempotent(tmp_path: Path, teammate: tuple) -> None:
    their_store, _, sites = teammate
    text = export_text(their_store)
    with Store(tmp_path / "mine.db") as mine:
        added = import_profiles(mine, text.splitlines())
        assert added == len(sites)
        assert import_profiles(mine, text.splitlines()) == 0
        rows = mine.profiles()
        assert {r["source"] for r in rows} == {"import"}
        assert {r["code_hash"] for r in rows} == {s["complexity"]["code_hash"] for s in sites}
        assert mine.machine("teammate")["calibration"]["pool_item_s"] == 4e-6
        theirs = {r["uid"]: r["mean_s"] for r in their_store.profiles()}
        assert {r["uid"]: r["mean_s"] for r in rows} == theirs
        # The complexity travels with the profile: the k-NN can learn from it.
        assert [r["f_loop_count"] for r in rows] == [
            r["f_loop_count"] for r in their_store.profiles()
        ]


def test_a_malformed_line_imports_nothing(tmp_path: Path, teammate: tuple) -> None:
    lines = export_text(teammate[0]).splitlines()
    bad = json.loads(lines[1])
    bad["profile"]["mean_s"] = "fast"
    lines[1] = json.dumps(bad)
    with Store(tmp_path / "mine.db") as mine:
        with pytest.raises(SharingError, match=r"line 2: .*mean_s"):
            import_profiles(mine, lines)
        assert mine.counts()["profiles"] == 0
        with pytest.raises(SharingError, match="line 1: not JSON"):
            import_profiles(mine, ["{nope"])
        spread = json.loads(lines[0])
        spread["profile"]["cv"] = float("nan")
        with pytest.raises(SharingError, match=r"line 1: 'profile\.cv' must be a finite number"):
            import_profiles(mine, [json.dumps(spread)])
        assert mine.counts()["profiles"] == 0


def test_export_for_a_project_keeps_its_files_with_relative_paths(
    tmp_path: Path, teammate: tuple
) -> None:
    store = teammate[0]
    outside = callsites_of(loop_function("elsewhere", 2, 9), path="/somewhere/else.py")[0]
    store.add_profile(callsite=outside, profile=profile(1e-3), source="sample", machine="teammate")
    lines = [json.loads(x) for x in export_text(store, project=tmp_path / "proj").splitlines()]
    assert len(lines) == len(teammate[2])
    assert {x["callsite"]["path"] for x in lines} == {"pkg/mod.py"}
    assert len(export_text(store).splitlines()) == len(teammate[2]) + 1


def test_project_file_gives_shared_advice_rescaled_to_this_machine(
    tmp_path: Path, teammate: tuple
) -> None:
    their_store, _, sites = teammate
    project = tmp_path / "proj"
    path = project_profiles_path(project)
    path.parent.mkdir(parents=True)
    path.write_text(export_text(their_store, project=project), encoding="utf-8")
    me = machine("me", 2e-6)  # this machine runs Python twice as fast
    with Store(tmp_path / "mine.db") as mine:
        adv = Advisor(mine, me, project_roots=[project])
        rec = adv.recommend(sites[1])
        assert mine.counts()["profiles"] == 0  # read beside the store, never copied in
    assert rec is not None
    assert rec["source"] == "shared"
    assert math.isclose(rec["serial_time_s"], sites[1]["length"] * 2e-3 * 0.5)
    assert str(path) in rec["reasons"][0]
    assert "×0.50" in rec["reasons"][0]


def test_unscaled_when_a_calibration_is_missing(tmp_path: Path, teammate: tuple) -> None:
    their_store, _, sites = teammate
    with Store(tmp_path / "mine.db") as mine:
        import_profiles(mine, export_text(their_store).splitlines())
        rescaled = Advisor(mine, machine("me", 2e-6)).recommend(sites[0])
        unscaled = Advisor(mine, machine("me", 2e-6, measured=False)).recommend(sites[0])
    assert rescaled is not None and unscaled is not None
    assert rescaled["source"] == unscaled["source"] == "shared"
    assert math.isclose(unscaled["serial_time_s"], sites[0]["length"] * 1e-3)
    assert "not rescaled" in unscaled["reasons"][0]
    assert unscaled["confidence"] < rescaled["confidence"]


def test_this_machines_measurement_beats_a_shared_one(tmp_path: Path, teammate: tuple) -> None:
    their_store, _, sites = teammate
    with Store(tmp_path / "mine.db") as mine:
        import_profiles(mine, export_text(their_store).splitlines())
        mine.add_profile(callsite=sites[0], profile=profile(7e-3), source="sample", machine="me")
        rec = Advisor(mine, machine("me", 2e-6)).recommend(sites[0])
    assert rec is not None and rec["source"] == "measured"
    assert math.isclose(rec["serial_time_s"], sites[0]["length"] * 7e-3)


def test_project_file_with_bad_lines_and_changes(
    tmp_path: Path,
    teammate: tuple,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(advisor_module, "FRESHNESS_S", 0.0)
    their_store, _, sites = teammate
    project = tmp_path / "proj"
    path = project_profiles_path(project)
    path.parent.mkdir(parents=True)
    lines = export_text(their_store, project=project).splitlines()
    path.write_text("\n".join([lines[0], "garbage", "[1, 2]"]) + "\n", encoding="utf-8")
    with Store(tmp_path / "mine.db") as mine:
        with caplog.at_level(logging.WARNING, logger="amorsize.daemon"):
            adv = Advisor(mine, machine("me", 4e-6), project_roots=[project])
        warnings = [r.getMessage() for r in caplog.records if r.name == "amorsize.daemon"]
        assert len(warnings) == 1
        assert "skipped 2 malformed line(s)" in warnings[0] and "line 2" in warnings[0]
        assert adv.recommend(sites[0]) is not None
        assert adv.recommend(sites[2]) is None or adv.recommend(sites[2])["source"] != "shared"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.utime(path, ns=(1, 2))  # a different stamp even within the clock's resolution
        rec = adv.recommend(sites[2])
    assert rec is not None and rec["source"] == "shared"
