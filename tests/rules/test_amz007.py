import pytest
from rule_helpers import run_rules

CODE = "AMZ007"


def flagged(source):
    return [f for f in run_rules(source, [CODE]) if f.code == CODE]


def test_unclosed_pool_is_flagged():
    src = """
    from multiprocessing import Pool
    def run(items):
        pool = Pool(4)
        return pool.map(abs, items)
    """
    (finding,) = flagged(src)
    assert finding.span.line == 4
    assert "`pool`" in finding.message
    assert "`with Pool(4) as pool:`" in finding.message
    assert "`pool.close()` and `pool.join()`" in finding.message


def test_unclosed_executor_suggests_shutdown():
    src = """
    from concurrent.futures import ThreadPoolExecutor
    def run(items):
        ex = ThreadPoolExecutor()
        return list(ex.map(abs, items))
    """
    (finding,) = flagged(src)
    assert "`ex.shutdown()`" in finding.message
    assert "threads leak" in finding.message


@pytest.mark.parametrize(
    "src",
    [
        """
        from multiprocessing import Pool
        def run(items):
            pool = Pool(4)
            try:
                return pool.map(abs, items)
            finally:
                pool.close()
                pool.join()
        """,
        """
        from multiprocessing import Pool
        def run(items):
            with Pool(4) as pool:
                return pool.map(abs, items)
        """,
        """
        from concurrent.futures import ProcessPoolExecutor
        def run(items):
            ex = ProcessPoolExecutor()
            out = list(ex.map(abs, items, chunksize=8))
            ex.shutdown()
            return out
        """,
        """
        from multiprocessing import Pool
        def run(items):
            pool = Pool(4)
            pool.terminate()
        """,
    ],
)
def test_closed_pools_are_not_flagged(src):
    assert flagged(src) == []
