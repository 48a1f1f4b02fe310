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


@pytest.mark.parametrize(
    "handover",
    [
        "loop.set_default_executor(pool)",
        "self._pools.append(pool)",
        "register(pool)",
        "atexit.register(pool.terminate)",
    ],
)
def test_a_pool_handed_to_another_call_has_a_new_owner(handover):
    src = f"""
    from concurrent.futures import ThreadPoolExecutor
    def setup(self, loop, register, atexit):
        pool = ThreadPoolExecutor(4)
        {handover}
        return None
    """
    assert flagged(src) == []
    # Looking at it is not handing it over.
    looked = src.replace(handover, "print(pool)")
    assert len(flagged(looked)) == 1


SELF_POOL = """
from multiprocessing import Pool
{bases_def}
class Worker({bases}):
    def start(self):
        self.pool = Pool(2)

    def run(self, items):
        return self.pool.map(abs, items)
{closer}
"""


@pytest.mark.parametrize(
    ("bases_def", "bases", "closer", "expected"),
    [
        ("", "", "", 1),  # nothing closes it
        ("", "object", "", 1),
        ("", "", "    def stop(self):\n        self.pool.close()\n", 0),  # own method
        # A base class in the file closes it.
        ("class Base:\n    def stop(self):\n        self.pool.terminate()\n", "Base", "", 0),
        # A base the analysis did not parse (it names no pool) may close it: not flagged.
        ("class Base:\n    def stop(self):\n        pass\n", "Base", "", 0),
        # Bases that name the pool are analysed: their methods count, or not.
        (
            "class Base:\n    pool: 'Pool | None' = None\n"
            "    def stop(self):\n        self.pool.close()\n",
            "Base",
            "",
            0,
        ),
        (
            "class Base:\n    pool: 'Pool | None' = None\n    def stop(self):\n        pass\n",
            "Base",
            "",
            1,
        ),
        # A base from elsewhere may close it in a method we cannot see.
        ("from service import Service\n", "Service", "", 0),
    ],
    ids=[
        "no-close",
        "object-base",
        "own-method",
        "unparsed-base-closes",
        "unparsed-base",
        "analysed-base-closes",
        "analysed-base-does-not",
        "imported-base",
    ],
)
def test_self_pools_follow_the_class_and_its_bases(bases_def, bases, closer, expected):
    src = SELF_POOL.format(bases_def=bases_def, bases=bases, closer=closer)
    assert len(flagged(src)) == expected


@pytest.mark.parametrize(
    "src",
    [
        "from multiprocessing import Pool\ndef f(xs):\n    return Pool(2).map(abs, xs)\n",
        "from multiprocessing import Pool\n"
        "def f(batches):\n    return [Pool(2).map(abs, b) for b in batches]\n",
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def f(x):\n    return ThreadPoolExecutor(2).submit(abs, x).result()\n",
    ],
    ids=["pool-map", "in-comprehension", "executor-submit"],
)
def test_inline_pools_are_never_closed(src):
    (finding,) = flagged(src)
    assert "never closed" in finding.message and "ResourceWarning" in finding.message
    assert "with " in finding.message


def test_inline_pool_that_is_closed_or_managed_is_not_flagged():
    src = (
        "from multiprocessing import Pool\n"
        "def f(xs):\n"
        "    Pool(2).close()\n"
        "    with Pool(2) as p:\n        return p.map(abs, xs)\n"
    )
    assert flagged(src) == []
