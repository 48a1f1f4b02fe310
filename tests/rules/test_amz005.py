import textwrap

import pytest
from rule_helpers import apply_fix, run_rules

CODE = "AMZ005"


def flagged(source, cores=4):
    return [f for f in run_rules(source, [CODE], target_cores=cores) if f.code == CODE]


@pytest.mark.parametrize(
    ("ctor", "arg"),
    [
        ("Pool(16)", "16"),
        ("Pool(processes=16)", "16"),
        ("ProcessPoolExecutor(max_workers=16)", "16"),
    ],
)
def test_literal_count_above_cores_is_flagged_at_the_argument(ctor, arg):
    src = f"""
    from multiprocessing import Pool
    from concurrent.futures import ProcessPoolExecutor
    def main():
        with {ctor} as p:
            pass
    """
    (finding,) = flagged(src)
    line = textwrap.dedent(src).splitlines()[finding.span.line - 1]
    assert line[finding.span.column : finding.span.end_column] == arg
    assert "16 worker processes" in finding.message and "4 usable cores" in finding.message


def test_fix_clamps_to_target_cores_and_is_unsafe():
    src = """
    from multiprocessing import Pool
    def main():
        with Pool(processes=16) as pool:  # keep me
            pass
    """
    (finding,) = flagged(src, cores=6)
    assert finding.fix.applicability.value == "unsafe"
    fixed = apply_fix(src, finding)
    assert "Pool(processes=6) as pool:  # keep me" in fixed
    assert flagged(fixed, cores=6) == []


@pytest.mark.parametrize(
    "ctor",
    [
        "Pool(4)",  # equal to the cores
        "ThreadPoolExecutor(max_workers=64)",  # threads are exempt
        "ThreadPool(64)",
        "Pool(n)",  # not a literal
        "Pool()",
    ],
)
def test_not_flagged(ctor):
    src = f"""
    from multiprocessing import Pool
    from multiprocessing.pool import ThreadPool
    from concurrent.futures import ThreadPoolExecutor
    def main(n):
        with {ctor} as p:
            pass
    """
    assert flagged(src) == []
