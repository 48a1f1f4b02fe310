"""Rules that read a call site's complexity or advice judge each site on its own.

The language server relies on it: after an edit inside a mapped function it re-runs
only these rules, and only for the sites that map the function
(``check.recheck_callsites``). Each rule here must give, site by site, exactly what
it gives for the whole module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_doc_examples import DOC_ADVICE, _blocks

from amorsize_lsp.check import CheckSettings, check_source, recheck_callsites, site_rule_codes
from amorsize_lsp.rules.registry import all_rules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADVICE = [DOC_ADVICE["AMZ100"], DOC_ADVICE["AMZ101"], None]


def _advice(site):
    """Different advice for different sites, so that both AMZ1xx rules fire."""
    return ADVICE[site.span.line % len(ADVICE)]


def _sources() -> list[tuple[str, str]]:
    out = [(p.name, p.read_text()) for p in sorted(EXAMPLES.glob("*.py"))]
    out += [(f"{r.code}-example.py", _blocks(r)[0]) for r in all_rules()]
    return out


def _key(f):
    edits = tuple((e.span, e.new_text) for e in f.fix.edits) if f.fix else ()
    return (f.code, f.span, f.message, edits)


@pytest.mark.parametrize("name,text", _sources(), ids=lambda v: v if v.endswith(".py") else "")
def test_site_rules_give_per_site_what_they_give_per_module(name: str, text: str) -> None:
    settings = CheckSettings(target_cores=4, gil_enabled=True, complexity=True)
    full = check_source(text, name, settings, recommend=_advice)
    assert full.ok and full.analysis is not None
    codes = set(site_rule_codes(None))
    whole = sorted(_key(f) for f in full.findings if f.code in codes)
    by_site = sorted(
        _key(f)
        for site in full.analysis.callsites
        for f in recheck_callsites(text, name, settings, [site], recommend=_advice)[0]
    )
    assert by_site == whole


def test_the_corpus_exercises_every_site_rule() -> None:
    """Otherwise the test above would pass for a rule it never saw fire."""
    settings = CheckSettings(target_cores=4, gil_enabled=True, complexity=True)
    fired = {
        f.code
        for name, text in _sources()
        for f in check_source(text, name, settings, recommend=_advice).findings
    }
    assert set(site_rule_codes(None)) <= fired


def test_site_rules_are_the_rules_that_read_complexity_or_advice() -> None:
    expected = {r.code for r in all_rules() if r.needs}
    assert set(site_rule_codes(None)) == expected
    assert site_rule_codes(frozenset({"AMZ002"})) == []
