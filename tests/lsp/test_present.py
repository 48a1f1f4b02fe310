"""Hint labels, hovers and lens titles from recommendation JSON (pure functions)."""

from __future__ import annotations

import base64

from amorsize_lsp.engine.cost import recommend
from amorsize_lsp.engine.system import SystemProfile
from amorsize_lsp.engine.workload import WorkloadProfile
from amorsize_lsp.lsp import present


def rec(mean_s: float, source: str = "measured") -> dict:
    profile = WorkloadProfile(
        n_items=2000, mean_s=mean_s, p50_s=mean_s, p95_s=mean_s, max_s=mean_s * 1.2,
        cv=0.05, arg_bytes=20.0, result_bytes=20.0, sample_size=64, source="measured",
    )  # fmt: skip
    r = recommend(profile, SystemProfile.synthetic(usable=4), "process_pool")
    r.source = source
    return r.to_dict()


def test_parallel_hint_names_workers_chunksize_speedup_and_provenance():
    r = rec(1e-3)
    label = present.hint_label(r)
    assert label == (
        f"  ⟵ {r['n_jobs']} workers · chunksize={r['chunksize']} · "
        f"~{r['expected_speedup']:.1f}× ({r['source']})"
    )


def test_serial_hint_gives_the_best_pool_speedup():
    r = rec(2e-7, source="shared")
    assert not r["use_pool"]
    best = max(s for w, s in r["curve"] if w > 1)
    label = present.hint_label(r)
    shown = float(label.split("(~")[1].split("×")[0])
    assert abs(shown - best) <= 0.005 + 0.05 * best  # rounded, never to a bare 0.0
    assert label.endswith("×, shared)") and "~0.0×" not in label


def test_nothing_known_or_untrusted_provenance_gives_no_hint():
    assert present.hint_label(None) is None
    assert present.hint_label({**rec(1e-3), "source": "heuristic"}) is None


def test_hover_has_numbers_provenance_and_both_pictures():
    r = rec(1e-3)
    text = present.hover_markdown(r, {"method": "map", "function": "score"}, images=True)
    assert f"Recommended: {r['n_jobs']} workers, chunksize={r['chunksize']}" in text
    assert "Provenance: **measured**" in text and r["reasons"][0] in text
    bars = [ln for ln in text.splitlines() if "workers │" in ln]
    assert len(bars) == len(r["curve"])
    assert "◀ recommended" in next(b for b in bars if b.strip().startswith(f"{r['n_jobs']} "))
    uri = text.split("](", 1)[1].split(")", 1)[0]
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert svg.startswith("<svg") and svg.count("<circle") == len(r["curve"])
    assert "![" not in present.hover_markdown(r, {"method": "map", "function": "score"})


def test_lens_title():
    assert present.lens_title(None, None) == "Sample this call"
    import time

    title = present.lens_title(rec(1e-3), time.time() - 180)
    assert title.startswith("Measured 3 min ago: ") and "workers" in title


def test_hover_gives_the_call_as_written_beside_the_recommendation():
    r = {**rec(1e-3), "current": [1, 1, 0.97]}
    text = present.hover_markdown(r, {"method": "map", "function": "score"})
    assert "As written (1 worker, chunksize=1): ~1.0× vs serial." in text
    assert "As written" not in present.hover_markdown(rec(1e-3), {"method": "map"})
