import pytest
from rule_helpers import run_rules

CODE = "AMZ002"


def flagged(source):
    return [f for f in run_rules(source, [CODE]) if f.code == CODE]


def mapped_in_main(setup: str, func: str) -> str:
    """A module whose ``main`` runs ``setup`` then maps ``func`` over a process pool."""
    return (
        "from multiprocessing import Pool\n"
        "def main(xs):\n"
        f"{setup}"
        "    with Pool() as pool:\n"
        f"        return pool.map({func}, xs)\n"
    )


@pytest.mark.parametrize(
    ("setup", "func", "expected"),
    [
        ("", "lambda x: x * 2", "a lambda"),
        ("    def inner(x):\n        return x\n", "inner", "nested function `main.inner`"),
        ("", "functools.partial(lambda x, y: x + y, 1)", "`functools.partial` of a lambda"),
    ],
)
def test_unpicklable_callables_on_process_pools_are_flagged(setup, func, expected):
    src = "import functools\n" + mapped_in_main(setup, func)
    (finding,) = flagged(src)
    assert expected in finding.message
    assert "cannot be pickled" in finding.message
    assert finding.severity.value == "error"
    assert finding.fix is None


def _real_pickling_error(obj) -> str:
    import pickle

    with pytest.raises(Exception) as info:
        pickle.dumps(obj)
    return type(info.value).__name__


def _local_def():
    def inner(x):
        return x

    return inner


def _local_lambda():
    return lambda x: x


@pytest.mark.parametrize(
    ("setup", "func", "local", "qualname"),
    [
        ("    def inner(x):\n        return x\n", "inner", _local_def, "main.<locals>.inner"),
        ("", "lambda x: x", _local_lambda, "main.<locals>.<lambda>"),
    ],
    ids=["nested-def", "lambda-in-function"],
)
def test_the_message_names_the_exception_this_python_raises(setup, func, local, qualname):
    import sys

    src = mapped_in_main(setup, func)
    (finding,) = flagged(src)
    version = ".".join(map(str, sys.version_info[:2]))
    # The exception type comes from pickling a real local object of the same kind.
    assert f"Python {version} raises `{_real_pickling_error(local())}: " in finding.message
    assert f"'{qualname}'" in finding.message


def test_process_executor_lambda_is_flagged():
    src = """
    from concurrent.futures import ProcessPoolExecutor
    def main(xs):
        with ProcessPoolExecutor() as ex:
            return list(ex.map(lambda x: x, xs, chunksize=4))
    """
    (finding,) = flagged(src)
    assert "define it with `def` at module level" in finding.message


@pytest.mark.parametrize(
    "src",
    [
        # Thread pools never pickle.
        """
        from concurrent.futures import ThreadPoolExecutor
        def main(xs):
            with ThreadPoolExecutor() as ex:
                return list(ex.map(lambda x: x, xs))
        """,
        """
        from multiprocessing.dummy import Pool
        def main(xs):
            with Pool() as pool:
                return pool.map(lambda x: x, xs)
        """,
        # Module-level function and a partial of it are picklable.
        """
        import functools
        from multiprocessing import Pool
        def work(x, y): return x + y
        def main(xs):
            with Pool() as pool:
                pool.map(work, xs)
                return pool.map(functools.partial(work, 1), xs)
        """,
    ],
)
def test_not_flagged(src):
    assert flagged(src) == []
