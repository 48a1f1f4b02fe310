"""Call sites and profiles for the daemon's data-side tests, made by the real analysis."""

from __future__ import annotations

import textwrap
from typing import Any

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.engine.workload import WorkloadProfile


def callsites_of(source: str, path: str = "/project/work.py") -> list[dict[str, Any]]:
    """Every call site of ``source`` as ``--show-callsites --format json`` prints it."""
    analysis = analyze_source(textwrap.dedent(source), path, complexity=True)
    return [c.to_json() for c in analysis.callsites]


def loop_function(name: str, depth: int, calls: int = 0, length: int | None = 100) -> str:
    """A module with one function of ``depth`` nested loops and ``calls`` extra calls,
    mapped once over a list of ``length`` items (a generator when ``length`` is None)."""
    body = ["    s = 0"]
    indent = "    "
    for d in range(depth):
        body.append(f"{indent}for i{d} in range(x):")
        indent += "    "
    body.append(f"{indent}s += 1")
    body += [f"    s += abs(-{k}) + len(str({k}))" for k in range(calls)]
    body.append("    return s")
    items = f"list(range({length}))" if length is not None else "(i for i in range(10))"
    return (
        "from multiprocessing import Pool\n\n"
        f"def {name}(x):\n" + "\n".join(body) + "\n\n"
        "if __name__ == '__main__':\n"
        "    with Pool() as pool:\n"
        f"        pool.map({name}, {items})\n"
    )


def profile(mean_s: float, n_items: int | None = 100, **kw: Any) -> WorkloadProfile:
    """A measured profile with the given per-item time (and anything else in ``kw``)."""
    base: dict[str, Any] = dict(
        n_items=n_items,
        mean_s=mean_s,
        p50_s=mean_s,
        p95_s=mean_s * 1.2,
        max_s=mean_s * 1.5,
        cv=0.1,
        arg_bytes=20.0,
        result_bytes=20.0,
        sample_size=30,
    )
    base.update(kw)
    return WorkloadProfile(**base)
