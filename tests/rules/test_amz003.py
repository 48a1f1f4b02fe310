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


# --------------------------------------------------------------------------- through calls

CALLS_MAIN = """\
from concurrent.futures import ProcessPoolExecutor


def work(x):
    return x * 2


def run(items):
    with ProcessPoolExecutor(2) as ex:
        return list(ex.map(work, items, chunksize=8))


def main():
    print(run(range(100)))


main()
"""


def test_pool_in_a_function_called_at_import_is_reported_at_the_call():
    findings = [f for f in run_rules(CALLS_MAIN) if f.code == CODE]
    (finding,) = findings
    assert (finding.span.line, finding.span.column) == (17, 0)
    assert "`main()` runs at import" in finding.message
    assert "(via main() → run())" in finding.message and "line 9" not in finding.message
    (related,) = finding.related
    assert related.span.line == 9 and "created here" in related.message
    fixed = apply_fix(CALLS_MAIN, finding)
    assert fixed.endswith('if __name__ == "__main__":\n    main()\n')
    assert [f for f in run_rules(fixed) if f.code == CODE] == []


@pytest.mark.parametrize(
    "tail",
    [
        'if __name__ == "__main__":\n    main()\n',  # guarded
        "",  # never called
        "def other():\n    main()\n",  # called only from a function
    ],
    ids=["guarded", "never-called", "called-from-a-function"],
)
def test_not_reported_when_import_does_not_start_the_pool(tail):
    source = CALLS_MAIN[: CALLS_MAIN.rindex("main()")]
    findings = [f for f in run_rules(source + tail) if f.code == CODE]
    assert findings == []


@pytest.mark.parametrize(
    ("pool_code", "reported"),
    [
        ("    with ProcessPoolExecutor(2) as ex:\n        ex.submit(work, 1)\n", True),
        ("    import multiprocessing as mp\n    mp.get_context('fork').Pool(2).close()\n", False),
        (
            "    from concurrent.futures import ThreadPoolExecutor\n"
            "    with ThreadPoolExecutor(2) as ex:\n        ex.submit(work, 1)\n",
            False,
        ),
        (
            "    def nested():\n        with ProcessPoolExecutor(2) as ex:\n"
            "            ex.submit(work, 1)\n    return nested\n",
            False,
        ),
    ],
    ids=["process-pool", "fork-context", "thread-pool", "nested-def-not-called"],
)
def test_only_process_pools_that_a_call_really_starts(pool_code, reported):
    source = (
        "from concurrent.futures import ProcessPoolExecutor\n"
        "def work(x):\n    return x\n"
        f"def start():\n{pool_code}"
        "start()\n"
    )
    codes = [f.code for f in run_rules(source) if f.code == CODE]
    assert codes == (["AMZ003"] if reported else [])
