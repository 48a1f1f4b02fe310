"""AMZ100 tune-parallel-map: advice from the real cost model, and from a real sample
read by ``amorsize-lint`` out of the store (read-only, no daemon started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rule_helpers import apply_fix, run_rules

from amorsize_lsp.engine.cost import recommend
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile

CODE = """
from multiprocessing import Pool

def score(x):
    return x * x

if __name__ == "__main__":
    with Pool(WORKERS) as pool:
        results = pool.map(score, range(20000), chunksize=CHUNK)
"""


def advice(mean_s: float, *, source: str = "measured", confidence: float | None = None):
    """The engine's recommendation for a measured per-item time on a 4-core machine."""
    profile = WorkloadProfile(
        n_items=20000, mean_s=mean_s, p50_s=mean_s, p95_s=mean_s * 1.1, max_s=mean_s * 1.3,
        cv=0.05, arg_bytes=20.0, result_bytes=20.0, sample_size=64, source="measured",
    )  # fmt: skip
    rec = recommend(profile, SystemProfile.synthetic(usable=4), "process_pool")
    rec.source = source
    if confidence is not None:
        rec.confidence = confidence
    return lambda site: rec


def code(workers: int, chunk: int) -> str:
    return CODE.replace("WORKERS", str(workers)).replace("CHUNK", str(chunk))


def test_too_few_workers_for_a_cpu_bound_map_is_reported_with_both_configurations():
    hook = advice(1e-3)
    rec = hook(None)
    assert rec.use_pool and rec.n_jobs > 1
    (f,) = run_rules(code(1, 1), ["AMZ100"], recommend=hook)
    assert f.code == "AMZ100"
    assert "1 worker and chunksize=1" in f.message
    assert f"recommended {rec.n_jobs} workers, chunksize={rec.chunksize}" in f.message
    assert "measured" in f.message
    assert f.fix is not None and f.fix.is_safe
    fixed = apply_fix(code(1, 1), f)
    assert f"Pool({rec.n_jobs})" in fixed and f"chunksize={rec.chunksize}" in fixed
    assert run_rules(fixed, ["AMZ100"], recommend=hook) == []


def test_the_recommended_configuration_is_clean():
    hook = advice(1e-3)
    rec = hook(None)
    assert run_rules(code(rec.n_jobs, rec.chunksize), ["AMZ100"], recommend=hook) == []


@pytest.mark.parametrize(
    ("source", "confidence", "reported"),
    [("measured", None, True), ("recorded", None, True), ("shared", None, True),
     ("predicted", 0.9, True), ("predicted", 0.1, False), ("heuristic", 0.9, False)],
)  # fmt: skip
def test_only_trusted_advice_is_reported(source, confidence, reported):
    hook = advice(1e-3, source=source, confidence=confidence)
    findings = run_rules(code(1, 1), ["AMZ100"], recommend=hook)
    assert bool(findings) is reported


def with_current(mean_s: float, workers: int, chunk: int):
    """Advice that also predicts the call as written, as the daemon's advisor does."""
    from amorsize_lsp.engine.cost import predict

    rec = advice(mean_s)(None)
    system = SystemProfile.synthetic(usable=4)
    profile = WorkloadProfile(
        n_items=20000, mean_s=mean_s, p50_s=mean_s, p95_s=mean_s * 1.1, max_s=mean_s * 1.3,
        cv=0.05, arg_bytes=20.0, result_bytes=20.0, sample_size=64, source="measured",
    )  # fmt: skip
    now = predict(profile, system, "process_pool", workers, chunk)
    rec.current = (workers, chunk, rec.serial_time_s / now.total_s)
    return lambda site: rec


def test_the_recommended_worker_count_with_a_bad_chunksize_is_reported():
    """Light items with chunksize=1: one IPC round trip each, although the worker count
    is the recommended one. The curve (best chunksize per worker count) cannot see it;
    the advice's prediction of the call as written does."""
    rec = advice(2e-5)(None)
    assert rec.use_pool and rec.chunksize > 1
    source = code(rec.n_jobs, 1)
    assert run_rules(source, ["AMZ100"], recommend=lambda site: rec) == []
    hook = with_current(2e-5, rec.n_jobs, 1)
    (f,) = run_rules(source, ["AMZ100"], recommend=hook)
    assert f"{rec.n_jobs} workers and chunksize=1" in f.message
    fixed = apply_fix(source, f)
    assert f"chunksize={rec.chunksize}" in fixed and f"Pool({rec.n_jobs})" in fixed


def test_a_prediction_for_another_configuration_is_not_used():
    """The advice judged a different call (other literals): fall back to the curve."""
    rec = advice(2e-5)(None)
    hook = with_current(2e-5, rec.n_jobs, 2)
    assert run_rules(code(rec.n_jobs, 1), ["AMZ100"], recommend=hook) == []


def test_no_advice_no_finding():
    assert run_rules(code(1, 1), ["AMZ100"]) == []


WORK = """from multiprocessing import Pool


def weigh(x):
    return sum(i * x for i in range(3000))


if __name__ == "__main__":
    with Pool(processes=1) as pool:
        results = pool.map(weigh, range(4000), chunksize=1)
"""


LINT_MAIN = "import sys; from amorsize_lsp.lint.cli import main; sys.exit(main())"


def _lint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT_MAIN, *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_lint_reads_a_store_seeded_by_a_real_sample(tmp_path: Path):
    work = tmp_path / "work.py"
    work.write_text(WORK)
    env = {
        **os.environ,
        "AMORSIZE_DB": str(tmp_path / "store.db"),
        "AMORSIZE_SOCKET": str(tmp_path / "d.sock"),
    }
    assert _lint(str(work), "--format", "json", env=env).returncode == 0  # no store: no advice
    assert not (tmp_path / "store.db").exists()  # and the linter never made one
    sample = subprocess.run(
        [sys.executable, "-m", "amorsize_lsp.daemon", "sample", f"{work}:10", "--json",
         "--socket", env["AMORSIZE_SOCKET"], "--db", env["AMORSIZE_DB"]],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    try:
        assert sample.returncode == 0, sample.stderr
        rec = json.loads(sample.stdout)
    finally:
        subprocess.run(
            [sys.executable, "-m", "amorsize_lsp.daemon", "stop",
             "--socket", env["AMORSIZE_SOCKET"]],
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
    run = _lint(str(work), "--format", "json", env=env)
    codes = [f["code"] for f in json.loads(run.stdout)]
    expected = "AMZ100" if rec["use_pool"] else "AMZ101"
    assert expected in codes, run.stdout + run.stderr
    assert not (tmp_path / "d.sock").exists()  # no daemon was started by the linter
    no_store = _lint(str(work), "--format", "json", "--no-store", env=env)
    assert not {"AMZ100", "AMZ101"} & {f["code"] for f in json.loads(no_store.stdout)}
