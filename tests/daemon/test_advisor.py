"""The advisor on a real store: exact matches win, k-NN above its threshold, None below."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from data_helpers import callsites_of, loop_function, profile
from hypothesis import given, settings
from hypothesis import strategies as st

from amorsize_lsp.daemon import advisor as advisor_module
from amorsize_lsp.daemon.advisor import Advisor
from amorsize_lsp.daemon.knn import CONFIDENCE_THRESHOLD
from amorsize_lsp.daemon.store import Store
from amorsize_lsp.engine.system import SystemProfile

ME = "this-machine"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "a.db")
    yield s
    s.close()


@pytest.fixture
def system() -> SystemProfile:
    return SystemProfile.synthetic(fingerprint=ME)


def site(name: str, depth: int, calls: int = 0, length: int | None = 100) -> dict:
    return callsites_of(loop_function(name, depth, calls, length))[0]


def fill_training(store: Store, n: int = 24) -> list[tuple[dict, float]]:
    """Functions whose item time is decided by their loop depth (tenfold per level)."""
    out = []
    for i in range(n):
        depth = 1 + i % 3
        s = site(f"t{i}", depth, calls=i // 3)
        mean = 1e-6 * 10 ** (depth + 1) * (1 + 0.02 * i)
        store.add_profile(callsite=s, profile=profile(mean), source="sample", machine=ME)
        out.append((s, mean))
    return out


def test_exact_measured_profile_wins_with_the_callsite_item_count(
    store: Store, system: SystemProfile
) -> None:
    fill_training(store)
    target = site("mine", 2, calls=30, length=5000)
    store.add_profile(
        callsite=target, profile=profile(4e-3, n_items=7), source="sample", machine=ME
    )
    rec = Advisor(store, system).recommend(target)
    assert rec is not None
    assert rec["source"] == "measured"
    assert math.isclose(rec["serial_time_s"], target["length"] * 4e-3)
    assert "sampled on this machine" in rec["reasons"][0]
    assert any(f"item count {target['length']}" in r for r in rec["reasons"])
    assert 0 < rec["confidence"] <= 0.95


def test_item_count_comes_from_the_profile_when_the_callsite_does_not_know(
    store: Store, system: SystemProfile
) -> None:
    target = site("gen", 2, calls=5, length=None)
    assert target["length"] is None
    store.add_profile(
        callsite=target, profile=profile(2e-3, n_items=321), source="sample", machine=ME
    )
    rec = Advisor(store, system).recommend(target)
    assert rec is not None
    assert math.isclose(rec["serial_time_s"], 321 * 2e-3)
    assert any("from the profile" in r for r in rec["reasons"])


def test_match_by_code_hash_survives_moved_lines(store: Store, system: SystemProfile) -> None:
    original = site("moved", 2, calls=2)
    store.add_profile(callsite=original, profile=profile(1e-3), source="sample", machine=ME)
    shifted_source = "\n\n\n# a comment\n" + loop_function("moved", 2, 2)
    shifted = callsites_of(shifted_source)[0]
    assert shifted["line"] != original["line"]
    rec = Advisor(store, system).recommend(shifted)
    assert rec is not None and rec["source"] == "measured"


def test_recorded_and_noisy_profiles(store: Store, system: SystemProfile) -> None:
    quiet, noisy, recorded = site("q", 1, 1), site("n", 1, 2), site("r", 1, 3)
    store.add_profile(callsite=quiet, profile=profile(2e-3), source="sample", machine=ME)
    store.add_profile(
        callsite=noisy, profile=profile(2e-3), source="sample", machine=ME, noisy=True
    )
    store.add_profile(callsite=recorded, profile=profile(2e-3), source="record", machine=ME)
    adv = Advisor(store, system)
    rq, rn, rr = adv.recommend(quiet), adv.recommend(noisy), adv.recommend(recorded)
    assert rq and rn and rr
    assert rr["source"] == "recorded"
    assert "real run" in rr["reasons"][0]
    assert rn["source"] == "measured"
    assert rn["confidence"] < rq["confidence"]
    assert any("busy" in r for r in rn["reasons"])


def test_a_quiet_sample_beats_a_newer_noisy_one(store: Store, system: SystemProfile) -> None:
    s = site("both", 2, 4)
    store.add_profile(
        callsite=s, profile=profile(1e-3), source="sample", machine=ME, measured_at=100.0
    )
    store.add_profile(
        callsite=s,
        profile=profile(9e-3),
        source="sample",
        machine=ME,
        noisy=True,
        measured_at=200.0,
    )
    rec = Advisor(store, system).recommend(s)
    assert rec is not None
    assert math.isclose(rec["serial_time_s"], s["length"] * 1e-3)


def test_unknown_function_is_predicted_from_similar_measured_ones(
    store: Store, system: SystemProfile
) -> None:
    training = fill_training(store)
    new = site("new", 3, calls=11, length=200)
    assert new["complexity"]["code_hash"] not in {s["complexity"]["code_hash"] for s, _ in training}
    adv = Advisor(store, system)
    rec = adv.recommend(new)
    assert rec is not None
    assert rec["source"] == "predicted"
    depth3 = [m for s, m in training if s["complexity"]["max_loop_depth"] == 3]
    predicted_item = rec["serial_time_s"] / new["length"]
    assert min(depth3) / 2 < predicted_item < max(depth3) * 2
    same_shape = next(s for s, _ in training if s["complexity"]["max_loop_depth"] == 3)
    measured = adv.recommend(dict(same_shape, length=new["length"]))
    assert measured is not None and measured["source"] == "measured"
    assert 0 < rec["confidence"] < measured["confidence"]
    assert "predicted" in rec["reasons"][0]


def test_nothing_known_gives_none(store: Store, system: SystemProfile) -> None:
    adv = Advisor(store, system)
    assert adv.recommend(site("lonely", 2)) is None
    builtin = dict(site("b", 1), complexity=None, function="len")
    assert adv.recommend(builtin) is None


def test_far_from_everything_gives_none(store: Store, system: SystemProfile) -> None:
    fill_training(store)
    huge = site("huge", 7, calls=200, length=10)
    adv = Advisor(store, system)
    pred = adv.model().predict(  # type: ignore[union-attr]
        advisor_module.features.from_callsite(huge, "process_pool", None)  # type: ignore[arg-type]
    )
    assert pred is not None and pred.confidence < CONFIDENCE_THRESHOLD
    assert adv.recommend(huge) is None


def test_new_profile_is_seen_after_profile_added(store: Store, system: SystemProfile) -> None:
    adv = Advisor(store, system)
    s = site("later", 2, 9)
    assert adv.recommend(s) is None
    store.add_profile(callsite=s, profile=profile(1e-3), source="sample", machine=ME)
    adv.profile_added()
    rec = adv.recommend(s)
    assert rec is not None and rec["source"] == "measured"


def test_readonly_advisor_sees_the_writers_rows(
    tmp_path: Path, system: SystemProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(advisor_module, "FRESHNESS_S", 0.0)
    writer = Store(tmp_path / "shared.db")
    reader = Store(tmp_path / "shared.db", readonly=True)
    adv = Advisor(reader, system)
    s = site("seen", 2, 7)
    assert adv.recommend(s) is None
    writer.add_profile(callsite=s, profile=profile(1e-3), source="sample", machine=ME)
    rec = adv.recommend(s)
    writer.close()
    reader.close()
    assert rec is not None and rec["source"] == "measured"


def test_thread_executor_gets_a_thread_recommendation(store: Store, system: SystemProfile) -> None:
    s = site("io", 1, 1)
    s["executor"] = "concurrent.futures.ThreadPoolExecutor"
    store.add_profile(
        callsite=s, profile=profile(5e-3, cpu_fraction=0.05), source="sample", machine=ME
    )
    rec = Advisor(store, system).recommend(s)
    assert rec is not None
    assert rec["executor_kind"] == "thread_executor"
    assert rec["n_jobs"] > system.usable_cores  # waiting threads overlap


def test_unknown_executor_assumes_a_process_pool(store: Store, system: SystemProfile) -> None:
    s = dict(site("anon", 1, 2), executor=None)
    store.add_profile(callsite=s, profile=profile(5e-3), source="sample", machine=ME)
    rec = Advisor(store, system).recommend(s)
    assert rec is not None and rec["executor_kind"] == "process_pool"
    assert any("assumed multiprocessing.Pool" in r for r in rec["reasons"])


@pytest.mark.parametrize(
    ("callsite", "key"),
    [
        ([], "callsite must be a JSON object"),
        ({"length": "ten"}, "callsite.length"),
        ({"length": True}, "callsite.length"),
        ({"length": -3}, "callsite.length"),
        ({"line": 1.5}, "callsite.line"),
        ({"executor": 3}, "callsite.executor"),
        ({"complexity": "x"}, "callsite.complexity"),
        ({"complexity": {"code_hash": 12}}, "callsite.complexity.code_hash"),
        ({"complexity": {"loop_count": "2"}}, "callsite.complexity.loop_count"),
        ({"complexity": {"recursive": 1}}, "callsite.complexity.recursive"),
        ({"complexity": {"io_calls": "open"}}, "callsite.complexity.io_calls"),
    ],
)
def test_wrong_types_are_a_precise_value_error(
    store: Store, system: SystemProfile, callsite: object, key: str
) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        Advisor(store, system).recommend(callsite)  # type: ignore[arg-type]


def test_missing_keys_are_unknown_not_errors(store: Store, system: SystemProfile) -> None:
    fill_training(store)
    adv = Advisor(store, system)
    full = site("partial", 2, 1)
    for drop in list(full):
        partial = {k: v for k, v in full.items() if k != drop}
        rec = adv.recommend(partial)
        assert rec is None or rec["source"] in ("measured", "predicted")
    assert adv.recommend({}) is None


def test_answers_are_json_and_independent_copies(store: Store, system: SystemProfile) -> None:
    s = site("copy", 2, 3)
    store.add_profile(callsite=s, profile=profile(1e-3), source="sample", machine=ME)
    adv = Advisor(store, system)
    first = adv.recommend(s)
    assert first is not None
    first["reasons"].append("mutated by a caller")
    second = adv.recommend(s)
    assert second is not None and "mutated by a caller" not in second["reasons"]
    assert json.loads(json.dumps(second)) == second


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    ["path", "line", "executor", "function", "length", "method", "complexity", "other"]
)
cx_keys = st.sampled_from(
    ["code_hash", "loop_count", "recursive", "io_calls", "instruction_count", "resolved"]
)


@pytest.fixture(scope="module")
def fuzz_advisor(tmp_path_factory: pytest.TempPathFactory) -> Advisor:
    store = Store(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    yield Advisor(store, SystemProfile.synthetic(fingerprint=ME))
    store.close()


@settings(max_examples=150, deadline=None)
@given(
    callsite=st.dictionaries(keys, json_values, max_size=6),
    complexity=st.none() | st.dictionaries(cx_keys, json_values, max_size=6),
)
def test_any_json_object_gives_an_answer_or_a_value_error(
    fuzz_advisor: Advisor, callsite: dict, complexity: dict | None
) -> None:
    if complexity is not None:
        callsite = dict(callsite, complexity=complexity)
    try:
        rec = fuzz_advisor.recommend(callsite)
    except ValueError as exc:
        assert str(exc).startswith("callsite")
    else:
        assert rec is None


def test_a_function_without_bytecode_matches_by_path_and_name(
    store: Store, system: SystemProfile
) -> None:
    builtin = dict(site("b", 1), function="zlib.crc32", function_kind="imported", complexity=None)
    store.add_profile(callsite=builtin, profile=profile(3e-4), source="sample", machine=ME)
    adv = Advisor(store, system)
    rec = adv.recommend(dict(builtin, line=builtin["line"] + 40))
    assert rec is not None and rec["source"] == "measured"
    assert math.isclose(rec["serial_time_s"], builtin["length"] * 3e-4)
    assert adv.recommend(dict(builtin, path="/elsewhere.py")) is None


@pytest.mark.parametrize(
    ("workers", "chunksize", "expected"),
    [
        (None, None, ("cores", "ceil")),  # Pool() and map's own chunking
        ("3", "7", (3, 7)),
        ("n", None, None),  # only running the code tells
        ("2", "size", None),
    ],
)
def test_the_call_as_written_is_predicted_too(
    store: Store, system: SystemProfile, workers, chunksize, expected
) -> None:
    """AMZ100 compares the call's own configuration with the best one: the advisor
    predicts it with the same cost model, under the call's start method."""
    from amorsize_lsp.engine import cost

    target = {**site("mine", 2, length=5000), "workers": workers, "chunksize": chunksize}
    store.add_profile(callsite=target, profile=profile(2e-5), source="sample", machine=ME)
    rec = Advisor(store, system).recommend(target)
    assert rec is not None
    if expected is None:
        assert rec["current"] is None
        return
    w = system.usable_cores if expected[0] == "cores" else expected[0]
    c = math.ceil(5000 / (4 * w)) if expected[1] == "ceil" else expected[1]
    prof = profile(2e-5, n_items=5000)
    prof.source = "measured"
    now = cost.predict(prof, system, "process_pool", w, c, start_method=rec["start_method"])
    assert rec["current"][:2] == [w, c]
    assert math.isclose(rec["current"][2], rec["serial_time_s"] / now.total_s, rel_tol=1e-3)


def test_the_calls_start_method_is_the_one_assumed(store: Store, system: SystemProfile) -> None:
    assert system.start_method != "spawn"
    target = {**site("mine", 2, length=5000), "start_method": "spawn"}
    store.add_profile(callsite=target, profile=profile(2e-5), source="sample", machine=ME)
    rec = Advisor(store, system).recommend(target)
    assert rec is not None and rec["start_method"] == "spawn"
    other = Advisor(store, system).recommend({**target, "start_method": None})
    assert other is not None and other["start_method"] == system.start_method
