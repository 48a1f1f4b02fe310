"""Words and pictures for a recommendation: inlay-hint labels, hovers, code-lens titles.

Pure functions of JSON data (``Recommendation.to_dict()``, the profile the daemon
stored), so they are tested without a server and shared by every handler.
"""

from __future__ import annotations

import base64
import time
from typing import Any

PROVENANCE = ("measured", "recorded", "predicted", "shared")
_BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def _speedup(x: Any) -> str:
    """``~1.8×``; small ratios keep two decimals (``~0.04×``), never a bare ``~0.0×``."""
    value = float(x)
    if value >= 0.1:
        return f"~{value:.1f}×"
    return f"~{value:.2f}×" if value >= 0.01 else "<0.01×"


def hint_label(rec: dict[str, Any] | None) -> str | None:
    """``  ⟵ 2 workers · chunksize=64 · ~1.8× (measured)``, or None when nothing is known."""
    if not rec or rec.get("source") not in PROVENANCE:
        return None
    speedup = rec.get("expected_speedup")
    if not isinstance(speedup, int | float):
        return None
    source = rec["source"]
    if not rec.get("use_pool", True):
        best = best_pool(rec)
        shown = f"{_speedup(best)}, " if best is not None else ""
        return f"  ⟵ serial is faster ({shown}{source})"
    workers = rec.get("n_jobs")
    parts = [f"{workers} worker{'s' if workers != 1 else ''}"]
    if rec.get("executor_kind") in ("process_pool", "process_executor"):
        parts.append(f"chunksize={rec.get('chunksize')}")
    parts.append(f"{_speedup(speedup)} ({source})")
    return "  ⟵ " + " · ".join(parts)


def best_pool(rec: dict[str, Any]) -> float | None:
    """The best speedup a pool (more than one worker) reaches on the curve."""
    pools = [float(s) for w, s in rec.get("curve") or [] if int(w) > 1]
    return max(pools) if pools else None


def bars(curve: list[list[float]] | list[tuple[int, float]], best: int | None = None) -> str:
    """The speedup-versus-workers curve as Unicode bars (a fenced text block)."""
    if not curve:
        return ""
    top = max(max(float(s) for _, s in curve), 1.0)
    rows = []
    for workers, speedup in curve:
        eighths = round(float(speedup) / top * _BAR_WIDTH * 8)
        bar = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
        mark = "  ◀ recommended" if best is not None and int(workers) == best else ""
        rows.append(f"{int(workers):>3} workers │{bar:<{_BAR_WIDTH}} {float(speedup):.2f}×{mark}")
    rows.append(f"{'':>11} └{'─' * _BAR_WIDTH} 1.00× = serial")
    return "```text\n" + "\n".join(rows) + "\n```"


def svg_curve(curve: list[list[float]] | list[tuple[int, float]], best: int | None = None) -> str:
    """The same curve as an SVG image, as a ``data:`` URI for a Markdown image."""
    width, height, pad = 320, 140, 28
    xs = [int(w) for w, _ in curve]
    ys = [float(s) for _, s in curve]
    top = max(max(ys), 1.0) * 1.1
    span = max(len(xs) - 1, 1)

    def point(i: int, y: float) -> tuple[float, float]:
        return (
            pad + i * (width - 2 * pad) / span,
            height - pad - y / top * (height - 2 * pad),
        )

    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, s) for i, s in enumerate(ys)))
    _, serial_y = point(0, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="10">',
        f'<line x1="{pad}" y1="{serial_y:.1f}" x2="{width - pad}" y2="{serial_y:.1f}" '
        'stroke="#999" stroke-dasharray="3,3"/>',
        f'<polyline points="{pts}" fill="none" stroke="#3b82f6" stroke-width="2"/>',
    ]
    for i, (w, s) in enumerate(zip(xs, ys, strict=True)):
        x, y = point(i, s)
        colour = "#ef4444" if best is not None and w == best else "#3b82f6"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{w}</text>')
    parts.append(f'<text x="4" y="{serial_y - 3:.1f}">1×</text>')
    parts.append(f'<text x="{width - pad}" y="12" text-anchor="end">speedup vs workers</text>')
    parts.append("</svg>")
    data = base64.b64encode("".join(parts).encode()).decode()
    return f"data:image/svg+xml;base64,{data}"


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(int(seconds), 0)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 129600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def hover_markdown(
    rec: dict[str, Any] | None,
    callsite: dict[str, Any],
    *,
    images: bool = False,
    measured_at: float | None = None,
) -> str:
    """The hover for a call site: the advice, why (in numbers), provenance, the curve."""
    where = f"`{callsite.get('method')}` of `{callsite.get('function')}`"
    if not rec:
        return (
            f"**amorsize** · {where}\n\nNo recommendation yet: nothing measured or "
            "predicted with enough confidence for this call. Sample it "
            "(`amorsize.sampleCallSite`) or record a real run with `amorsize-daemon record`."
        )
    lines = [f"**amorsize** · {where}", ""]
    speedup = _speedup(rec.get("expected_speedup", 0))
    if rec.get("use_pool", True):
        lines.append(
            f"**Recommended: {rec.get('n_jobs')} workers, chunksize={rec.get('chunksize')}** "
            f"→ {speedup} vs serial"
        )
    else:
        best = best_pool(rec)
        at = f"at best {_speedup(best)}" if best is not None else "slower"
        lines.append(f"**Serial is faster**: the best pool would run {at} vs serial")
    current = rec.get("current")
    if isinstance(current, list | tuple) and len(current) == 3:
        workers, chunk, now = current
        lines.append(
            f"\nAs written ({workers} worker{'s' if workers != 1 else ''}, "
            f"chunksize={chunk}): {_speedup(now)} vs serial."
        )
    serial, parallel = rec.get("serial_time_s"), rec.get("parallel_time_s")
    if isinstance(serial, int | float) and isinstance(parallel, int | float):
        lines.append(f"\nPredicted time: serial {serial:.3g} s, in the pool {parallel:.3g} s.")
    confidence = rec.get("confidence")
    conf = f", confidence {float(confidence):.0%}" if isinstance(confidence, int | float) else ""
    age = f", {_age(time.time() - measured_at)} ago" if measured_at else ""
    lines.append(f"\nProvenance: **{rec.get('source')}**{conf}{age}.")
    reasons = [str(r) for r in rec.get("reasons") or []]
    if reasons:
        lines.append("\nWhy:")
        lines.extend(f"- {r}" for r in reasons[:12])
    curve = rec.get("curve") or []
    if curve:
        best = rec.get("n_jobs") if rec.get("use_pool", True) else None
        lines.append("\nSpeedup versus workers:")
        if images:
            lines.append(f"\n![speedup versus workers]({svg_curve(curve, best)})")
        lines.append("\n" + bars(curve, best))
    return "\n".join(lines)


def lens_title(rec: dict[str, Any] | None, measured_at: float | None) -> str:
    """``Measured 3 min ago: 1.9× with 2 workers`` or ``Sample this call``."""
    if rec and rec.get("source") in ("measured", "recorded") and measured_at:
        speedup = float(rec.get("expected_speedup") or 0)
        if not rec.get("use_pool", True):
            return f"Measured {_age(time.time() - measured_at)} ago: serial is faster"
        return (
            f"Measured {_age(time.time() - measured_at)} ago: {speedup:.1f}× with "
            f"{rec.get('n_jobs')} workers"
        )
    return "Sample this call"
