"""``json``: one object per finding (and per E999 error), 1-based columns like ruff."""

from __future__ import annotations

import json
from typing import Any, TextIO

from amorsize_lsp.rules.model import Finding

from .common import E999, E999_NAME, OutputOptions


def _range(span) -> dict[str, int]:
    return {
        "line": span.line,
        "column": span.column + 1,
        "end_line": span.end_line,
        "end_column": span.end_column + 1,
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    fix = finding.fix
    return {
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
        "severity": finding.severity.value,
        "path": finding.path,
        **_range(finding.span),
        "fix": None
        if fix is None
        else {
            "applicability": fix.applicability.value,
            "message": fix.message,
            "edits": [{**_range(e.span), "content": e.new_text} for e in fix.edits],
        },
        "related": [{**_range(r.span), "message": r.message} for r in finding.related],
    }


def error_json(error) -> dict[str, Any]:
    return {
        "code": E999,
        "name": E999_NAME,
        "message": error.message,
        "severity": "error",
        "path": error.path,
        "line": error.line,
        "column": error.column + 1,
        "end_line": error.line,
        "end_column": error.column + 1,
        "fix": None,
        "related": [],
    }


def write_json(result, out: TextIO, options: OutputOptions) -> None:
    items = [finding_json(f) for f in result.findings]
    items.extend(error_json(e) for e in result.errors)
    items.sort(key=lambda d: (d["path"], d["line"], d["column"], d["code"]))
    json.dump(items, out, indent=2, ensure_ascii=False)
    out.write("\n")
