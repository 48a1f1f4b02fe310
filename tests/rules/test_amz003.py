import textwrap

import pytest
from rule_helpers import apply_fix, run_rules

CODE = "AMZ003"


def flagged(source):
    return [f for f in run_rules(source, [CODE]) if f.code == CODE]


SCRIPT = """
from multiprocessing import Pool


def square(x):
    return x * x


pool = Pool(4)
# results, printed
print(pool.map(square, range(100)))
pool.close()
"""


def test_module_level_pool_is_flagged_at_the_constructor():
    (finding,) = flagged(SCRIPT)
    assert (finding.span.line, finding.span.column) == (9, 7)
    assert "Pool(4)" in finding.message
    assert 'if __name__ == "__main__":' in finding.message
    assert finding.severity.value == "error"


def test_guard_fix_wraps_the_trailing_block_and_is_unsafe():
    (finding,) = flagged(SCRIPT)
    assert finding.fix is not None and finding.fix.applicability.value == "unsafe"
    fixed = apply_fix(SCRIPT, finding)
    expected_tail = textwrap.dedent(
        """\
        if __name__ == "__main__":
            pool = Pool(4)
            # results, printed
            print(pool.map(square, range(100)))
            pool.close()
        """
    )
    assert fixed.endswith(expected_tail)
    assert fixed.startswith(SCRIPT[: SCRIPT.index("pool = Pool(4)")])
    assert flagged(fixed) == []


def test_guard_fix_keeps_multiline_strings_intact():
    src = (
        "from concurrent.futures import ProcessPoolExecutor\n"
        "ex = ProcessPoolExecutor()\n"
        'print("""a\nb""")\n'
        "ex.shutdown()\n"
    )
    (finding,) = flagged(src)
    fixed = apply_fix(src, finding)
    assert '    print("""a\nb""")' in fixed


@pytest.mark.parametrize(
    "src",
    [
        # A function defined after the pool would vanish from spawned workers.
        """
        from multiprocessing import Pool
        pool = Pool(2)
        def work(x): return x
        print(pool.map(work, [1]))
        """,
        # A global bound in the block is read by a function.
        """
        from multiprocessing import Pool
        def work(x): return x * FACTOR
        pool = Pool(2)
        FACTOR = 3
        print(pool.map(work, [1]))
        """,
    ],
)
def test_no_fix_when_the_block_cannot_move(src):
    (finding,) = flagged(src)
    assert finding.fix is None


@pytest.mark.parametrize(
    "src",
    [
        # Guarded.
        """
        from multiprocessing import Pool
        def work(x): return x
        if __name__ == "__main__":
            with Pool(2) as pool:
                pool.map(work, [1])
        """,
        # Inside a function.
        """
        from multiprocessing import Pool
        def run():
            with Pool(2) as pool:
                return pool.map(abs, [1])
        """,
        # Thread pools do not re-import the module.
        """
        from concurrent.futures import ThreadPoolExecutor
        ex = ThreadPoolExecutor()
        ex.shutdown()
        """,
        # Explicit fork start method works without a guard.
        """
        import multiprocessing
        ctx = multiprocessing.get_context("fork")
        pool = ctx.Pool(2)
        pool.close()
        """,
    ],
)
def test_not_flagged(src):
    assert flagged(src) == []
