"""``sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

Columns are 1-based Unicode code points (``columnKind: unicodeCodePoints``), end
exclusive as SARIF defines. Relative paths are resolved against ``%SRCROOT%``, the
directory the linter ran in. Files that could not be analysed are results of the
pseudo-rule E999, so they show up wherever findings do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from amorsize_lsp import __version__
from amorsize_lsp.rules.model import Severity
from amorsize_lsp.rules.registry import all_rules

from .common import E999, E999_NAME, E999_SUMMARY, OutputOptions

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://pypi.org/project/amorsize-lsp/"
SRCROOT = "%SRCROOT%"


def _artifact(path: str) -> dict[str, Any]:
    p = Path(path)
    if p.is_absolute():
        return {"uri": p.as_uri()}
    return {"uri": p.as_posix(), "uriBaseId": SRCROOT}


def _region(line: int, column: int, end_line: int, end_column: int) -> dict[str, int]:
    return {
        "startLine": line,
        "startColumn": column + 1,
        "endLine": end_line,
        "endColumn": end_column + 1,
    }


def _rules() -> list[dict[str, Any]]:
    descriptors = []
    for rule in all_rules():
        descriptors.append(
            {
                "id": rule.code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": rule.section("What it does")},
                "help": {"text": rule.doc, "markdown": rule.doc},
                "defaultConfiguration": {"level": SARIF_LEVELS[rule.severity]},
                "properties": {
                    "tags": ["correctness" if rule.severity is Severity.ERROR else "performance"]
                },
            }
        )
    descriptors.append(
        {
            "id": E999,
            "name": E999_NAME,
            "shortDescription": {"text": E999_SUMMARY},
            "defaultConfiguration": {"level": "error"},
        }
    )
    return descriptors


#: SARIF's result levels per severity.
SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def sarif_log(result, options: OutputOptions) -> dict[str, Any]:
    rules = _rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for f in sorted(result.findings, key=lambda f: f.sort_key()):
        s = f.span
        entry: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": SARIF_LEVELS[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact(f.path),
                        "region": _region(s.line, s.column, s.end_line, s.end_column),
                    }
                }
            ],
        }
        if f.related:
            entry["relatedLocations"] = [
                {
                    "id": n,
                    "message": {"text": r.message},
                    "physicalLocation": {
                        "artifactLocation": _artifact(f.path),
                        "region": _region(
                            r.span.line, r.span.column, r.span.end_line, r.span.end_column
                        ),
                    },
                }
                for n, r in enumerate(f.related)
            ]
        if f.fix is not None and f.fix.edits:
            entry["fixes"] = [
                {
                    "description": {"text": f"{f.fix.message} ({f.fix.applicability.value})"},
                    "artifactChanges": [
                        {
                            "artifactLocation": _artifact(f.path),
                            "replacements": [
                                {
                                    "deletedRegion": _region(
                                        e.span.line,
                                        e.span.column,
                                        e.span.end_line,
                                        e.span.end_column,
                                    ),
                                    "insertedContent": {"text": e.new_text},
                                }
                                for e in f.fix.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(entry)
    for e in result.errors:
        results.append(
            {
                "ruleId": E999,
                "ruleIndex": index[E999],
                "level": "error",
                "message": {"text": e.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _artifact(e.path),
                            "region": _region(e.line, e.column, e.line, e.column),
                        }
                    }
                ],
            }
        )
    root = options.root.absolute().as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "amorsize-lint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root}},
                "columnKind": "unicodeCodePoints",
                "invocations": [{"executionSuccessful": not result.nothing_analysed}],
                "results": results,
            }
        ],
    }


def write_sarif(result, out: TextIO, options: OutputOptions) -> None:
    json.dump(sarif_log(result, options), out, indent=2, ensure_ascii=False)
    out.write("\n")
