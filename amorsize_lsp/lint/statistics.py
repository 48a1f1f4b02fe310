"""``--statistics``: findings counted per rule, most frequent first (like ruff)."""

from __future__ import annotations

import json
from collections import Counter
from typing import TextIO

from amorsize_lsp.rules.registry import get_rule

from .formats.common import E999, E999_NAME, OutputOptions, fix_available


def statistics(result, options: OutputOptions) -> list[dict]:
    counts: Counter[str] = Counter(f.code for f in result.findings)
    fixable: Counter[str] = Counter(f.code for f in result.findings if fix_available(f, options))
    if result.errors:
        counts[E999] = len(result.errors)
    rows = []
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        rule = get_rule(code)
        rows.append(
            {
                "code": code,
                "name": rule.name if rule else E999_NAME,
                "count": count,
                "fixable": fixable[code] > 0,
                "fixable_count": fixable[code],
            }
        )
    return rows


def write_statistics(result, out: TextIO, fmt: str, options: OutputOptions) -> None:
    rows = statistics(result, options)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    width = max((len(str(r["count"])) for r in rows), default=1)
    for row in rows:
        mark = "[*]" if row["fixable"] else "[ ]"
        out.write(f"{row['count']:>{width}}\t{row['code']}\t{mark} {row['name']}\n")
