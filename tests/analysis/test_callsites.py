"""Call-site discovery on realistic snippets: every receiver pattern, and the traps."""

from __future__ import annotations

import re
import textwrap

import pytest

from amorsize_lsp.analysis.callsites import analyze_text, find_callsites
from amorsize_lsp.analysis.model import (
    EXECUTOR_KINDS,
    POOL_METHODS,
    POOL_SPECIFIC_METHODS,
    AnalysisError,
    FunctionKind,
)

MP = "multiprocessing.pool.Pool"
TP = "multiprocessing.pool.ThreadPool"
PPE = "concurrent.futures.ProcessPoolExecutor"
TPE = "concurrent.futures.ThreadPoolExecutor"
TORCH = "torch.multiprocessing.Pool"


def sites(src: str):
    return find_callsites(textwrap.dedent(src), "snippet.py")


def summary(src: str) -> list[tuple[str, str | None]]:
    return [(s.method, s.executor) for s in sites(src)]


# (id, source, expected [(method, executor)]) -- positives and negatives together.
CASES = [
    (
        "with-target",
        """
        from multiprocessing import Pool
        def work(x): return x
        with Pool(4) as pool:
            pool.map(work, range(10))
        """,
        [("map", MP)],
    ),
    (
        "with-several-items",
        """
        import multiprocessing
        from concurrent.futures import ThreadPoolExecutor
        with multiprocessing.Pool() as p, ThreadPoolExecutor(8) as t:
            p.imap(str, [1])
            t.map(str, [1])
        """,
        [("imap", MP), ("map", TPE)],
    ),
    (
        "plain-assignment",
        """
        import multiprocessing as mp
        pool = mp.Pool(2)
        pool.starmap(pow, [(1, 2)])
        pool.close()
        """,
        [("starmap", MP)],
    ),
    (
        "walrus",
        """
        import multiprocessing as mp
        if (pool := mp.Pool(2)) is not None:
            pool.map_async(abs, [1, 2])
        """,
        [("map_async", MP)],
    ),
    (
        "self-attribute-other-method",
        """
        from concurrent.futures import ProcessPoolExecutor
        class Runner:
            def __init__(self):
                self.executor = ProcessPoolExecutor(max_workers=2)
            def run(self, xs):
                return list(self.executor.map(abs, xs))
        """,
        [("map", PPE)],
    ),
    (
        "chained-constructor",
        """
        from multiprocessing import Pool
        Pool(2).map(abs, [1, 2, 3])
        """,
        [("map", MP)],
    ),
    (
        "annotated-parameter",
        """
        from multiprocessing.pool import Pool
        def run(pool: Pool, xs):
            return pool.map(abs, xs)
        """,
        [("map", MP)],
    ),
    (
        "annotated-parameter-dotted",
        """
        import concurrent.futures
        def run(ex: concurrent.futures.ThreadPoolExecutor, xs):
            return ex.map(abs, xs)
        """,
        [("map", TPE)],
    ),
    (
        "helper-returns-pool",
        """
        import multiprocessing
        def make_pool():
            return multiprocessing.Pool(3)
        def main():
            pool = make_pool()
            pool.imap_unordered(abs, range(100))
        """,
        [("imap_unordered", MP)],
    ),
    (
        "contextmanager-yields-pool",
        """
        import contextlib
        from concurrent.futures import ProcessPoolExecutor
        @contextlib.contextmanager
        def pool_of(n):
            with ProcessPoolExecutor(n) as ex:
                yield ex
        def main():
            with pool_of(4) as ex:
                ex.map(abs, range(10))
        """,
        [("map", PPE)],
    ),
    (
        "closure-captures-pool",
        """
        from multiprocessing import Pool
        def outer(xs):
            pool = Pool()
            def inner():
                return pool.map(abs, xs)
            try:
                return inner()
            finally:
                pool.close()
        """,
        [("map", MP)],
    ),
    (
        "get-context-spawn",
        """
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        with ctx.Pool(2) as pool:
            pool.map(abs, [1])
        """,
        [("map", MP)],
    ),
    (
        "torch-pool",
        """
        import torch.multiprocessing as tmp
        with tmp.Pool(2) as pool:
            pool.map(abs, [1])
        """,
        [("map", TORCH)],
    ),
    (
        "pool-subclass-self-map",
        """
        import multiprocessing.pool
        class MyPool(multiprocessing.pool.Pool):
            def run(self, xs):
                return self.map(abs, xs)
        """,
        [("map", MP)],
    ),
    (
        "pool-subclass-instance",
        """
        from multiprocessing.pool import Pool
        class Quiet(Pool):
            pass
        with Quiet(2) as q:
            q.map(abs, [1])
        """,
        [("map", MP)],
    ),
    (
        "dummy-pool-imported-as-pool",
        """
        from multiprocessing.dummy import Pool
        with Pool(8) as pool:
            pool.map(abs, [1])
        """,
        [("map", TP)],
    ),
    (
        "threadpool-as-pool",
        """
        from multiprocessing.pool import ThreadPool as Pool
        with Pool(8) as pool:
            pool.map(abs, [1])
        """,
        [("map", TP)],
    ),
    (
        "cf-alias",
        """
        import concurrent.futures as cf
        with cf.ProcessPoolExecutor() as ex:
            ex.map(abs, [1])
        """,
        [("map", PPE)],
    ),
    (
        "from-concurrent-import-futures",
        """
        from concurrent import futures
        with futures.ThreadPoolExecutor() as ex:
            ex.map(abs, [1])
        """,
        [("map", TPE)],
    ),
    (
        "from-x-import-y-as-z",
        """
        from concurrent.futures import ProcessPoolExecutor as Executor
        with Executor() as ex:
            ex.map(abs, [1])
        """,
        [("map", PPE)],
    ),
    (
        "star-import",
        """
        from multiprocessing import *
        with Pool() as p:
            p.map(abs, [1])
        """,
        [("map", MP)],
    ),
    (
        "alias-of-class",
        """
        import multiprocessing as mp
        P = mp.Pool
        with P(2) as p:
            p.map(abs, [1])
        """,
        [("map", MP)],
    ),
    (
        "unannotated-parameter-pool-only-method",
        """
        def run(pool, xs):
            return list(pool.imap(abs, xs))
        """,
        [("imap", None)],
    ),
    (
        "imported-name-pool-only-method",
        """
        from myapp.workers import pool
        pool.starmap_async(pow, [(1, 2)])
        """,
        [("starmap_async", None)],
    ),
    # ---- negatives -----------------------------------------------------------
    (
        "unannotated-parameter-map-is-not-reported",
        """
        def run(pool, xs):
            return pool.map(abs, xs)
        """,
        [],
    ),
    (
        "pandas-map",
        """
        import pandas as pd
        s = pd.Series([1, 2])
        s.map(abs)
        pd.Series([1]).map(str)
        """,
        [],
    ),
    (
        "builtin-map",
        """
        import multiprocessing
        list(map(abs, [1, 2]))
        """,
        [],
    ),
    (
        "dask-map",
        """
        import dask.bag as db
        from dask.distributed import Client
        client = Client()
        client.map(abs, [1])
        db.from_sequence([1]).map(abs)
        """,
        [],
    ),
    (
        "executor-submit",
        """
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor() as ex:
            ex.submit(abs, 1)
        """,
        [],
    ),
    (
        "rebound-pool-name",
        """
        from multiprocessing import Pool
        Pool = list
        p = Pool()
        p.map(abs, [1])
        """,
        [],
    ),
    (
        "local-class-named-pool",
        """
        class Pool:
            def map(self, f, xs):
                return [f(x) for x in xs]
        Pool().map(abs, [1])
        """,
        [],
    ),
    (
        "local-function-shadows-import",
        """
        from multiprocessing import Pool
        def main():
            Pool = dict
            p = Pool()
            p.map(abs, [1])
        """,
        [],
    ),
    (
        "parameter-shadows-module-pool",
        """
        import multiprocessing
        pool = multiprocessing.Pool()
        def run(pool):
            return pool.map(abs, [1])
        """,
        [],
    ),
    (
        "itertools-starmap",
        """
        import itertools
        list(itertools.starmap(pow, [(1, 2)]))
        """,
        [],
    ),
    (
        "executor-has-no-imap",
        """
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor() as ex:
            ex.map(abs, [1])
            ex.imap(abs, [1])
        """,
        [("map", TPE)],
    ),
    (
        "comprehension-variable-shadows",
        """
        from multiprocessing import Pool
        pool = Pool()
        [pool.map(abs, [1]) for pool in ["a", "b"]]
        """,
        [],
    ),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_receiver_resolution(source: str, expected: list[tuple[str, str | None]]) -> None:
    assert summary(source) == expected


def test_the_cases_cover_every_executor_method_and_trap() -> None:
    # Derived from the model: a pool class or a method added there needs a case here.
    ids = [c[0] for c in CASES]
    assert len(set(ids)) == len(ids), "case ids must be unique, or a case is shadowed"
    found = [site for c in CASES for site in c[2]]
    assert {executor for _m, executor in found} >= set(EXECUTOR_KINDS)
    assert {method for method, _e in found} >= POOL_METHODS
    # Pool-only methods on an unknown receiver: reported without an executor.
    assert {method for method, executor in found if executor is None} & POOL_SPECIFIC_METHODS
    # Every negative case is a trap: it calls a pool method name or creates a pool.
    negatives = [c for c in CASES if not c[2]]
    assert negatives
    names = sorted(POOL_METHODS | {q.rpartition(".")[2] for q in EXECUTOR_KINDS})
    call = re.compile(rf"\b(?:{'|'.join(names)})\s*\(")
    assert [c[0] for c in negatives if not call.search(c[1])] == []


def test_start_method_from_context_and_mp_context() -> None:
    found = sites(
        """
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with mp.get_context("forkserver").Pool(2) as a:
            a.map(abs, [1])
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(mp_context=ctx) as b:
            b.map(abs, [1])
        with mp.Pool() as c:
            c.map(abs, [1])
        """
    )
    assert [s.start_method for s in found] == ["forkserver", "spawn", None]


def test_function_kinds() -> None:
    found = sites(
        """
        import functools, math, os.path
        from multiprocessing import Pool
        from mylib import transform

        def work(x): return x

        class Job:
            @staticmethod
            def static(x): return x
            def method(self, x): return x
            def run(self, pool):
                pool.imap(self.method, [1])

        def main():
            def nested(x): return x
            with Pool() as p:
                p.map(work, [1])
                p.map(nested, [1])
                p.map(lambda x: x, [1])
                p.map(functools.partial(work), [1])
                p.map(functools.partial(nested), [1])
                p.map(Job.static, [1])
                p.map(len, [[1]])
                p.map(transform, [1])
                p.map(os.path.basename, ["a"])
        """
    )
    kinds = [(s.function.text, s.function.kind) for s in found]
    assert kinds == [
        ("self.method", FunctionKind.BOUND_METHOD),
        ("work", FunctionKind.MODULE_DEF),
        ("nested", FunctionKind.NESTED_DEF),
        ("lambda x: x", FunctionKind.LAMBDA),
        ("functools.partial(work)", FunctionKind.PARTIAL),
        ("functools.partial(nested)", FunctionKind.PARTIAL),
        ("Job.static", FunctionKind.STATICMETHOD),
        ("len", FunctionKind.BUILTIN),
        ("transform", FunctionKind.IMPORTED),
        ("os.path.basename", FunctionKind.IMPORTED),
    ]
    by_text = {s.function.text: s.function for s in found}
    assert by_text["work"].qualname == "work"
    assert by_text["nested"].qualname == "main.<locals>.nested"
    assert by_text["functools.partial(nested)"].wrapped.kind is FunctionKind.NESTED_DEF
    assert not by_text["functools.partial(nested)"].picklable
    assert by_text["functools.partial(work)"].picklable
    assert by_text["transform"].qualname == "mylib.transform"
    assert by_text["Job.static"].qualname == "Job.static"


def test_iterable_lengths() -> None:
    found = sites(
        """
        from multiprocessing import Pool
        N = 10 * 100
        ITEMS = [1, 2, 3]
        def f(x): return x
        with Pool() as p:
            p.map(f, range(N))
            p.map(f, range(2, 12, 2))
            p.map(f, [0] * 64)
            p.map(f, ITEMS)
            p.map(f, (1, 2))
            p.map(f, list(range(7)))
            p.map(f, open("x"))
            p.map(f, [*ITEMS])
        """
    )
    assert [s.length for s in found] == [1000, 5, 64, 3, 2, 7, None, None]


def test_chunksize_positional_keyword_and_executor_third_argument() -> None:
    found = sites(
        """
        from multiprocessing import Pool
        from concurrent.futures import ProcessPoolExecutor
        def f(x, y=0): return x
        with Pool(4) as p, ProcessPoolExecutor(max_workers=2) as ex:
            p.map(f, range(10), 256)
            p.imap(f, range(10), chunksize=8)
            ex.map(f, range(10), range(10))
            ex.map(f, range(10), chunksize=16)
        """
    )
    assert [(s.chunksize, s.chunksize_style) for s in found] == [
        ("256", "positional"),
        ("8", "keyword"),
        (None, None),
        ("16", "keyword"),
    ]
    assert [s.workers for s in found] == ["4", "4", "2", "2"]
    assert found[0].chunksize_value == 256


def test_constructor_context_flags() -> None:
    result = analyze_text(
        textwrap.dedent(
            """
            import multiprocessing as mp
            leaked = mp.Pool(2)
            for i in range(3):
                with mp.Pool(2) as p:
                    p.map(abs, [i])
            def closed_later():
                pool = mp.Pool()
                pool.map(abs, [1])
                pool.close()
                pool.join()
            def handed_back():
                pool = mp.Pool()
                return pool
            if __name__ == "__main__":
                guarded = mp.Pool(4)
            """
        ),
        "flags.py",
    )
    ctors = {c.span.line: c for c in result.constructors}
    assert sorted(ctors) == [3, 5, 8, 13, 16]
    leaked = ctors[3]
    assert (leaked.module_level, leaked.main_guarded, leaked.closed, leaked.bound_name) == (
        True,
        False,
        False,
        "leaked",
    )
    assert ctors[5].in_loop and ctors[5].closed and ctors[5].context_managed
    assert not ctors[8].module_level and ctors[8].closed
    assert ctors[13].closed  # returned: the caller owns it
    assert ctors[16].main_guarded and ctors[16].module_level and not ctors[16].closed
    assert ctors[16].workers_value == 4


def test_pool_in_comprehension_is_in_loop() -> None:
    result = analyze_text(
        "from multiprocessing import Pool\npools = [Pool(2) for _ in range(3)]\n", "c.py"
    )
    assert [c.in_loop for c in result.constructors] == [True]


def test_positions_are_exact_and_one_based_in_json() -> None:
    src = "import multiprocessing as mp\n\n\nwith mp.Pool(2) as pool:\n    pool.map(abs, [1])\n"
    (site,) = find_callsites(src, "p.py")
    assert (site.span.line, site.span.column, site.span.end_line, site.span.end_column) == (
        5,
        4,
        5,
        22,
    )
    data = site.to_json()
    assert (data["line"], data["column"], data["end_column"]) == (5, 5, 23)
    assert src.splitlines()[4][site.span.column : site.span.end_column] == "pool.map(abs, [1])"
    assert site.constructor is not None
    ctor = site.constructor.span
    assert src.splitlines()[ctor.line - 1][ctor.column : ctor.end_column] == "mp.Pool(2)"


def test_positions_survive_form_feeds_crlf_and_multiline_calls() -> None:
    src = (
        "import multiprocessing as mp\r\n\x0c\r\n"
        "def f(x):\r\n    return x\r\n"
        "with mp.Pool() as p:\r\n    p.map(\r\n        f,\r\n        [1],  # items\r\n    )\r\n"
    )
    (site,) = find_callsites(src, "crlf.py")
    assert (site.span.line, site.span.end_line) == (6, 9)
    assert site.iterable_span is not None and site.iterable_span.line == 8


def test_syntax_error_is_analysis_error_with_position() -> None:
    with pytest.raises(AnalysisError) as info:
        find_callsites("import multiprocessing\ndef f(:\n    pass\n", "bad.py")
    assert info.value.line == 2
    assert "syntax error" in info.value.message


def test_code_newer_than_the_interpreter_falls_back_to_libcst() -> None:
    # PEP 695 syntax is 3.12+; libcst parses it whatever runs us.
    src = (
        "from multiprocessing import Pool\n"
        "type Items = list[int]\n"
        "with Pool() as p:\n    p.imap(abs, [1])\n"
    )
    assert [s.method for s in find_callsites(src, "new.py")] == ["imap"]


def test_partial_of_lambda_carries_the_lambda_span_for_complexity() -> None:
    src = (
        "import functools\nfrom multiprocessing import Pool\n"
        "with Pool() as p:\n    p.map(functools.partial(lambda x, k: x * k, k=3), [1])\n"
    )
    (site,) = find_callsites(src, "p.py")
    wrapped = site.function.wrapped
    assert wrapped is not None and wrapped.kind is FunctionKind.LAMBDA
    assert wrapped.span is not None
    line = src.splitlines()[wrapped.span.line - 1]
    assert line[wrapped.span.column : wrapped.span.end_column] == "lambda x, k: x * k"
    assert not site.function.picklable
