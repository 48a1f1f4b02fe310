"""``--show-callsites``: dump every call site the analysis found (for debugging and checks)."""

from __future__ import annotations

import json
from typing import TextIO


def write_callsites(result, out: TextIO, fmt: str) -> None:
    sites = [site for report in result.reports for site in report.callsites]
    sites.sort(key=lambda s: (s["path"], s["line"], s["column"]))
    if fmt == "json":
        json.dump(sites, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    for s in sites:
        executor = s["executor"] or "unknown executor"
        details = [
            f"function={s['function']} ({s['function_kind']})",
            f"iterable={s['iterable']}",
            f"length={s['length'] if s['length'] is not None else '?'}",
            f"chunksize={s['chunksize'] if s['chunksize'] is not None else '-'}",
            f"workers={s['workers'] if s['workers'] is not None else '-'}",
        ]
        if s.get("start_method"):
            details.append(f"start_method={s['start_method']}")
        out.write(
            f"{s['path']}:{s['line']}:{s['column']}: {s['method']} on {executor}: "
            f"{' '.join(details)}\n"
        )
