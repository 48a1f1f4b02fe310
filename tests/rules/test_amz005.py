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


@pytest.mark.parametrize(
    ("ctor", "after"),
    [
        ("Pool(processes=16)", "Pool()"),
        ("Pool(16)", "Pool()"),
        ("Pool(16, init)", "Pool(None, init)"),
        ("Pool(16, initializer=init)", "Pool(initializer=init)"),
        (
            "ProcessPoolExecutor(max_workers=16, mp_context=ctx)",
            "ProcessPoolExecutor(mp_context=ctx)",
        ),
    ],
)
def test_fix_removes_the_literal_and_never_writes_a_machine_number(ctor, after):
    src = f"""
    from multiprocessing import Pool
    from concurrent.futures import ProcessPoolExecutor
    def main(init, ctx):
        with {ctor} as pool:  # keep me
            pass
    """
    for cores in (2, 6):
        (finding,) = flagged(src, cores=cores)
        assert finding.fix.applicability.value == "unsafe"
        fixed = apply_fix(src, finding)
        assert f"{after} as pool:  # keep me" in fixed
        assert str(cores) not in fixed.split("def main")[1]
        assert flagged(fixed, cores=cores) == []


def test_silent_without_a_target_and_informational_on_the_users_machine():
    src = """
    from multiprocessing import Pool
    def main():
        with Pool(16) as pool:
            pass
    """
    assert [f for f in run_rules(src, [CODE], target_cores=None) if f.code == CODE] == []
    (configured,) = flagged(src, cores=4)
    assert configured.severity.value == "warning"
    from amorsize_lsp.check import CheckSettings, check_source

    machine = CheckSettings(target_cores=4, target_cores_origin="this machine's usable cores")
    (finding,) = [
        f for f in check_source(textwrap.dedent(src), "a.py", machine).findings if f.code == CODE
    ]
    assert finding.severity.value == "information"


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


def test_construction_expected_to_fail_is_not_flagged():
    src = """
    import pytest
    from multiprocessing import Pool
    def test_too_many():
        with pytest.raises(ValueError):
            Pool(64)
    """
    assert flagged(src) == []
    assert len(flagged(src.replace("with pytest.raises(ValueError):", "if True:"))) == 1
