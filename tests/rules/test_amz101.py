"""AMZ101 parallel-slower-than-serial, with advice from the real cost model."""

from __future__ import annotations

from rule_helpers import run_rules

from amorsize_lsp.engine.cost import recommend
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

CODE = """
from multiprocessing import Pool

if __name__ == "__main__":
    with Pool(4) as pool:
        results = pool.map(str.upper, words)
"""


def advice(mean_s: float, arg_bytes: float = 20.0):
    profile = WorkloadProfile(
        n_items=2000, mean_s=mean_s, p50_s=mean_s, p95_s=mean_s * 1.1, max_s=mean_s * 1.3,
        cv=0.05, arg_bytes=arg_bytes, result_bytes=arg_bytes, sample_size=64,
        source="measured",
    )  # fmt: skip
    rec = recommend(profile, SystemProfile.synthetic(usable=4), "process_pool")
    return rec, (lambda site: rec)


def test_cheap_items_make_the_pool_slower_than_map():
    rec, hook = advice(2e-7)
    assert not rec.use_pool
    (f,) = run_rules(CODE, ["AMZ101"], recommend=hook)
    assert "builtin `map`" in f.message and "saves about" in f.message
    assert "measured" in f.message
    assert f.fix is None


def test_expensive_items_are_not_reported():
    rec, hook = advice(5e-3)
    assert rec.use_pool
    assert run_rules(CODE, ["AMZ101"], recommend=hook) == []


def test_no_advice_no_finding():
    assert run_rules(CODE, ["AMZ101"]) == []
