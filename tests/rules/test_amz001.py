import pytest
from rule_helpers import apply_fix, run_rules

CODE = "AMZ001"


def flagged(source, **kw):
    return [f for f in run_rules(source, [CODE], **kw) if f.code == CODE]


@pytest.mark.parametrize(
    "call",
    [
        "ex.map(work, items)",
        "list(ex.map(work, items, timeout=5))",
    ],
)
def test_process_executor_map_without_chunksize_is_flagged(call):
    src = f"""
    from concurrent.futures import ProcessPoolExecutor
    def work(x):
        return x
    def main(items):
        with ProcessPoolExecutor() as ex:
            return {call}
    """
    (finding,) = flagged(src)
    assert finding.span.line == 7
    assert "chunksize=32" in finding.message
    assert "`ex.map`" in finding.message
    assert finding.fix is not None and finding.fix.is_safe


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_pool_imap_without_chunksize_is_flagged(method):
    src = f"""
    import multiprocessing
    def work(x):
        return x
    def main(items):
        with multiprocessing.Pool(4) as pool:
            return list(pool.{method}(work, items))
    """
    (finding,) = flagged(src)
    assert method in finding.message


@pytest.mark.parametrize(
    "src",
    [
        # Pool.map, starmap and *_async compute a default chunksize.
        """
        from multiprocessing import Pool
        def work(x): return x
        def main(xs):
            with Pool() as pool:
                pool.map(work, xs); pool.starmap(work, xs); pool.map_async(work, xs)
        """,
        # ThreadPoolExecutor.map ignores chunksize.
        """
        from concurrent.futures import ThreadPoolExecutor
        def work(x): return x
        def main(xs):
            with ThreadPoolExecutor() as ex:
                list(ex.map(work, xs))
        """,
        # ThreadPool.imap: threads pay no IPC.
        """
        from multiprocessing.pool import ThreadPool
        def work(x): return x
        def main(xs):
            with ThreadPool(4) as pool:
                list(pool.imap(work, xs))
        """,
        # chunksize given, by keyword or positionally.
        """
        from multiprocessing import Pool
        from concurrent.futures import ProcessPoolExecutor
        def work(x): return x
        def main(xs):
            with Pool() as pool, ProcessPoolExecutor() as ex:
                list(pool.imap(work, xs, 64)); list(ex.map(work, xs, chunksize=8))
        """,
        # Known to be short.
        """
        from concurrent.futures import ProcessPoolExecutor
        def work(x): return x
        def main():
            with ProcessPoolExecutor() as ex:
                list(ex.map(work, range(10))); list(ex.map(work, [1, 2, 3]))
        """,
    ],
)
def test_not_flagged(src):
    assert flagged(src) == []


def test_min_items_threshold_is_configurable():
    src = """
    from concurrent.futures import ProcessPoolExecutor
    def work(x): return x
    def main():
        with ProcessPoolExecutor() as ex:
            list(ex.map(work, range(40)))
    """
    assert flagged(src) == []
    (finding,) = flagged(src, min_items=10)
    # Known length: ceil(40 / (4 * 4 cores)) = 3.
    assert "chunksize=3" in finding.message


def test_fix_uses_known_length_and_constructor_workers():
    src = """
    from multiprocessing import Pool
    def work(x): return x
    def main():
        with Pool(processes=2) as pool:
            return list(pool.imap(work, range(1000)))
    """
    (finding,) = flagged(src)
    fixed = apply_fix(src, finding)
    # ceil(1000 / (4 * 2)) = 125
    assert "pool.imap(work, range(1000), chunksize=125)" in fixed
    assert flagged(fixed) == []


def test_fix_round_trip_unknown_length_keeps_comments():
    src = """
    from concurrent.futures import ProcessPoolExecutor
    def work(x): return x
    def main(items):
        with ProcessPoolExecutor() as ex:  # the pool
            return list(ex.map(
                work,  # the function
                items,
            ))
    """
    (finding,) = flagged(src)
    fixed = apply_fix(src, finding)
    assert "chunksize=32" in fixed
    assert "# the function" in fixed and "# the pool" in fixed
    assert flagged(fixed) == []


def test_engine_recommendation_wins():
    class Rec:
        chunksize = 77
        workers = 2

    src = """
    from concurrent.futures import ProcessPoolExecutor
    def work(x): return x
    def main(items):
        with ProcessPoolExecutor() as ex:
            return list(ex.map(work, items))
    """
    (finding,) = flagged(src, recommend=lambda site: Rec())
    assert "chunksize=77" in finding.message
    assert "engine" in finding.fix.message
