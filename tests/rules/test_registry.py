import re

import pytest

from amorsize_lsp.rules import all_rules, codes_matching, get_rule, register
from amorsize_lsp.rules.registry import Rule

EXPECTED = {
    "AMZ001": "default-chunksize-ipc",
    "AMZ002": "unpicklable-callable",
    "AMZ003": "pool-without-main-guard",
    "AMZ004": "pool-created-in-loop",
    "AMZ005": "oversubscribed-workers",
    "AMZ006": "cpu-bound-thread-pool",
    "AMZ007": "pool-not-closed",
    "AMZ100": "tune-parallel-map",
    "AMZ101": "parallel-slower-than-serial",
}


def test_catalogue_codes_and_names_are_the_stable_ones():
    assert {r.code: r.name for r in all_rules()} == EXPECTED


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_every_rule_is_documented(rule):
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.name)
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix"):
        assert section in rule.doc, f"{rule.code} lacks {section}"
    assert "```python" in rule.doc
    text = rule.explain()
    assert text.startswith(f"# {rule.name} ({rule.code})")
    assert rule.section("What it does")


def test_fix_applicability_matches_the_issue():
    fixes = {r.code: (r.fix.value if r.fix else None) for r in all_rules()}
    assert fixes == {
        "AMZ001": "safe",
        "AMZ002": None,
        "AMZ003": "unsafe",
        "AMZ004": None,
        "AMZ005": "unsafe",
        "AMZ006": None,
        "AMZ007": None,
        "AMZ100": "safe",
        "AMZ101": None,
    }


def test_selectors_are_prefixes_like_ruff():
    assert codes_matching("ALL") == sorted(EXPECTED)
    assert codes_matching("AMZ") == sorted(EXPECTED)
    assert codes_matching("amz00") == sorted(c for c in EXPECTED if c.startswith("AMZ00"))
    assert codes_matching("AMZ1") == ["AMZ100", "AMZ101"]
    assert codes_matching("AMZ003") == ["AMZ003"]
    assert codes_matching("AMZ9") == []
    assert codes_matching("") == []


def test_lookup_by_code_or_name():
    assert get_rule("amz002").name == "unpicklable-callable"
    assert get_rule("pool-not-closed").code == "AMZ007"
    assert get_rule("AMZ999") is None


def test_catalogue_is_open_but_codes_are_unique():
    existing = get_rule("AMZ001")
    with pytest.raises(ValueError, match="already registered"):
        register(existing)
    with pytest.raises(ValueError, match="already registered"):
        register(Rule("AMZ199", existing.name, "", "", existing.severity, None, existing.check))


def test_measured_sources_are_the_engines():
    from amorsize_lsp.engine import workload
    from amorsize_lsp.rules.model import MEASURED_SOURCES

    assert {workload.MEASURED, workload.RECORDED, workload.SHARED} == MEASURED_SOURCES
    assert set(workload.SOURCES) >= MEASURED_SOURCES
