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
    # Length unknown: the fix is offered, but only as an unsafe one.
    assert finding.fix is not None and not finding.fix.is_safe
    assert finding.fix.applies(unsafe=True) and not finding.fix.applies()


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
    assert finding.fix.is_safe  # known length and known cost
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


def _rec(chunksize=77, source="measured", serial_time_s=0.01, n_jobs=2):
    from amorsize_lsp.engine.workload import Recommendation

    return Recommendation(
        n_jobs=n_jobs,
        chunksize=chunksize,
        executor_kind="process_executor",
        expected_speedup=1.8,
        serial_time_s=serial_time_s,
        parallel_time_s=serial_time_s / 1.8,
        source=source,
    )


ITEMS_UNKNOWN = """
from concurrent.futures import ProcessPoolExecutor
def work(x): return x
def main(items):
    with ProcessPoolExecutor() as ex:
        return list(ex.map(work, items))
"""


def test_engine_recommendation_wins_and_is_safe():
    (finding,) = flagged(ITEMS_UNKNOWN, recommend=lambda site: _rec())
    assert "chunksize=77" in finding.message
    assert "engine" in finding.fix.message and finding.fix.is_safe


def test_known_length_never_exceeds_four_chunks_per_worker():
    # The 40-items-over-2-workers case that a fixed chunksize of 32 made 1.6x slower.
    src = """
    from concurrent.futures import ProcessPoolExecutor
    def work(x): return x * 2
    def main():
        with ProcessPoolExecutor(2) as ex:
            return list(ex.map(work, range(40)))
    """
    (finding,) = flagged(src, min_items=0)
    assert "chunksize=5" in finding.message  # ceil(40 / (4 * 2))


@pytest.mark.parametrize(
    "body",
    [
        "    import subprocess\n    return subprocess.run(['true']).returncode",
        "    with open(x) as f:\n        return f.read()",
        "    import time\n    time.sleep(0.1)\n    return x",
    ],
    ids=["starts-a-process", "file-io", "sleeps"],
)
def test_heavy_items_are_not_flagged(body):
    src = (
        "from concurrent.futures import ProcessPoolExecutor\n"
        f"def work(x):\n{body}\n"
        "def main(items):\n"
        "    with ProcessPoolExecutor(2) as ex:\n"
        "        return list(ex.map(work, items))\n"
    )
    assert flagged(src) == []
    # The same call with a cheap function is flagged.
    light = src.replace(body, "    return x")
    assert len(flagged(light)) == 1


def test_a_measured_millisecond_item_is_not_flagged():
    src = ITEMS_UNKNOWN.replace("def main(items):", "def main():\n    items = range(400)")
    # 400 items, 2 s serial: 5 ms per item, so IPC per item does not matter.
    assert flagged(src, recommend=lambda site: _rec(serial_time_s=2.0)) == []
    # A prediction is not a measurement: it does not silence the rule.
    assert len(flagged(src, recommend=lambda s: _rec(serial_time_s=2.0, source="predicted"))) == 1
    # A measured cheap item keeps the finding, with the engine's chunksize.
    (finding,) = flagged(src, recommend=lambda site: _rec(serial_time_s=0.004))
    assert "chunksize=77" in finding.message
