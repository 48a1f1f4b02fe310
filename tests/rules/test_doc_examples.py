"""Each rule's documentation is a test (Fixit's VALID/INVALID): the Example triggers the
rule, and the "Use instead" code is clean under every rule.

"Use instead" blocks are read as a reader would run them: after the Example's imports,
when they have none of their own.
"""

from __future__ import annotations

import re

import pytest
from rule_helpers import run_rules

from amorsize_lsp.engine.workload import Recommendation
from amorsize_lsp.rules.registry import Rule, all_rules

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
#: The documented examples speak of a 4-core target (AMZ005's "Use instead").
TARGET_CORES = 4
#: What the store would advise for the recommendation rules' examples (AMZ1xx need advice).
DOC_ADVICE = {
    "AMZ100": Recommendation(
        n_jobs=2, chunksize=64, executor_kind="process_pool", expected_speedup=1.8,
        serial_time_s=1.0, parallel_time_s=0.56, curve=[(1, 1.0), (2, 1.8), (4, 1.5), (8, 1.2)],
        source="measured", confidence=0.9,
    ),
    "AMZ101": Recommendation(
        n_jobs=1, chunksize=100, executor_kind="process_pool", expected_speedup=1.0,
        serial_time_s=0.01, parallel_time_s=0.01, use_pool=False,
        curve=[(1, 1.0), (2, 0.6), (4, 0.4)], source="measured", confidence=0.9,
    ),
}  # fmt: skip


def _advice(rule: Rule):
    rec = DOC_ADVICE.get(rule.code)
    return (lambda site: rec) if rec is not None else None


def _blocks(rule: Rule) -> tuple[str, str]:
    section = rule.doc.split("## Example", 1)[1].split("\n## ", 1)[0]
    blocks = _BLOCK.findall(section)
    assert len(blocks) == 2, f"{rule.code}: expected an Example and a 'Use instead' block"
    example, instead = blocks
    if not re.search(r"^(from|import) ", instead, re.MULTILINE):
        imports = [ln for ln in example.splitlines() if re.match(r"(from|import) ", ln)]
        instead = "\n".join(imports) + "\n\n" + instead
    return example, instead


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_example_triggers_its_rule(rule: Rule) -> None:
    example, _ = _blocks(rule)
    codes = {f.code for f in run_rules(example, target_cores=TARGET_CORES, recommend=_advice(rule))}
    assert rule.code in codes


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_use_instead_is_clean_under_every_rule(rule: Rule) -> None:
    _, instead = _blocks(rule)
    findings = run_rules(instead, target_cores=TARGET_CORES, recommend=_advice(rule))
    assert [(f.code, f.message) for f in findings] == []
