"""What the store knows about its accuracy: errors per version, best-config hits, importance."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest
from data_helpers import callsites_of, loop_function, profile

from amorsize_lsp.daemon.advisor import Advisor
from amorsize_lsp.daemon.features import FEATURES
from amorsize_lsp.daemon.knn import KNN, PREDICTOR_VERSION, Example
from amorsize_lsp.daemon.stats import permutation_importance, summary
from amorsize_lsp.daemon.store import Store
from amorsize_lsp.engine.system import SystemProfile

ME = "me"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "a.db")
    yield s
    s.close()


def site(name: str, depth: int, calls: int = 0, length: int = 100) -> dict:
    return callsites_of(loop_function(name, depth, calls, length))[0]


def test_summary_median_and_p90() -> None:
    values = [0.1 * i for i in range(1, 11)]
    s = summary(values)
    assert s == {"n": 10, "median": round(statistics.median(values), 4), "p90": 0.9}
    assert summary([]) is None


def test_outcome_errors_per_predictor_version(store: Store) -> None:
    rng = random.Random(3)
    s = site("f", 2, 1)
    expected: dict[str, list[float]] = {"v1": [], "v2": []}
    items: dict[str, list[float]] = {"v1": [], "v2": []}
    for version, scatter in (("v1", 0.5), ("v2", 0.1)):
        for _ in range(20):
            wall = rng.uniform(0.5, 2.0)
            pred = wall * (1 + rng.uniform(-scatter, scatter))
            item, pitem = 1e-3, 1e-3 * (1 + rng.uniform(0, scatter))
            store.add_outcome(
                callsite=s,
                n_jobs=2,
                chunksize=10,
                n_items=100,
                wall_s=wall,
                predicted_wall_s=pred,
                predictor_version=version,
                machine=ME,
                item_s=item,
                predicted_item_s=pitem,
            )
            expected[version].append(abs(pred - wall) / wall)
            items[version].append(abs(pitem - item) / item)
    stats = Advisor(store, SystemProfile.synthetic(fingerprint=ME)).stats()
    rows = {r["predictor_version"]: r for r in stats["error"] if r["from"] == "outcomes"}
    for version in ("v1", "v2"):
        assert rows[version]["wall_time"] == summary(expected[version])
        assert rows[version]["item_time"] == summary(items[version])
    assert rows["v2"]["wall_time"]["median"] < rows["v1"]["wall_time"]["median"]
    assert json.loads(json.dumps(stats)) == stats


def test_within_ten_percent_of_the_best_recorded_configuration(store: Store) -> None:
    sites = [site(f"g{i}", 1 + i % 3, i) for i in range(4)]
    # (configurations run with their wall times, the recommended one)
    plans = [
        ([(1, 100, 1.0), (2, 10, 0.50), (2, 50, 0.52)], (2, 50)),  # within 10%
        ([(1, 100, 1.0), (2, 10, 0.50), (2, 50, 0.80)], (2, 50)),  # 60% slower
        ([(1, 100, 0.30), (2, 10, 0.50)], (1, 100)),  # serial recommended and best
        ([(2, 10, 0.50)], (2, 99)),  # the recommended configuration never ran
    ]
    for s, (runs, (w, c)) in zip(sites, plans, strict=True):
        for n_jobs, chunk, wall in runs:
            store.add_outcome(
                callsite=s,
                n_jobs=n_jobs,
                chunksize=chunk,
                n_items=100,
                wall_s=wall,
                predicted_wall_s=None,
                predictor_version=PREDICTOR_VERSION,
                machine=ME,
                recommended_n_jobs=w,
                recommended_chunksize=c,
            )
    got = Advisor(store, SystemProfile.synthetic(fingerprint=ME)).stats()["within_10pct_of_best"]
    expect_within = 0
    expect_sites = 0
    for runs, (w, c) in plans:
        matching = [t for n, ch, t in runs if n == w and (w == 1 or ch == c)]
        if matching:
            expect_sites += 1
            expect_within += min(matching) <= 1.1 * min(t for *_, t in runs)
    assert got["call_sites"] == expect_sites
    assert got["within_10pct"] == expect_within
    assert got["recommended_never_run"] == len(plans) - expect_sites
    assert got["share"] == round(expect_within / expect_sites, 4)


def test_leave_one_out_errors_from_profiles(store: Store) -> None:
    for i in range(18):
        depth = 1 + i % 3
        store.add_profile(
            callsite=site(f"t{i}", depth, i // 3),
            profile=profile(1e-5 * 10**depth * (1 + 0.05 * i)),
            source="sample",
            machine=ME,
        )
    stats = Advisor(store, SystemProfile.synthetic(fingerprint=ME)).stats()
    loo = next(r for r in stats["error"] if r["from"] == "leave-one-out")
    assert loo["predictor_version"] == PREDICTOR_VERSION
    assert loo["item_time"]["n"] == stats["model"]["functions"]
    # Shapes decide the time here: the prediction is within a factor of two.
    assert loo["item_time"]["median"] < 1.0
    assert loo["wall_time"]["n"] == loo["item_time"]["n"]
    assert {f["feature"] for f in stats["feature_importance"]} == set(FEATURES)


def test_permutation_importance_finds_the_feature_that_matters() -> None:
    rng = random.Random(5)
    depth_i = FEATURES.index("max_loop_depth")
    noise_i = FEATURES.index("call_count")
    examples = []
    for i in range(50):
        v = [0.0] * len(FEATURES)
        v[depth_i] = rng.randint(0, 4)
        v[noise_i] = rng.uniform(0, 5)  # unrelated to the time
        examples.append(Example(tuple(v), profile(1e-6 * 10 ** v[depth_i]), f"g{i}"))
    ranked = permutation_importance(KNN(examples))
    by_name = {r["feature"]: r["importance"] for r in ranked}
    assert ranked[0]["feature"] == "max_loop_depth"
    assert by_name["max_loop_depth"] > 10 * max(by_name["call_count"], 0.01)
    assert math.isclose(by_name["recursive"], 0.0)  # never varies


def test_stats_of_an_empty_store(store: Store) -> None:
    stats = Advisor(store, SystemProfile.synthetic(fingerprint=ME)).stats()
    assert stats["model"] is None
    assert stats["error"] == []
    assert stats["feature_importance"] == []
    assert stats["within_10pct_of_best"]["share"] is None
    assert stats["counts"]["profiles"] == 0
    assert json.loads(json.dumps(stats)) == stats
