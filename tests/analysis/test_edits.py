"""Edits that set chunksize and worker counts: minimal, idempotent, always parseable."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amorsize_lsp.analysis.callsites import find_callsites
from amorsize_lsp.analysis.edits import (
    EditError,
    TextEdit,
    apply_edits,
    set_chunksize,
    set_parameters,
    set_workers,
    source_parses,
    wrap_in_main_guard,
)
from amorsize_lsp.analysis.model import (
    CallSite,
    FunctionKind,
    FunctionRef,
    PoolConstructor,
    Span,
)

POOL = "multiprocessing.pool.Pool"
THREAD_POOL = "multiprocessing.pool.ThreadPool"
EXECUTOR = "concurrent.futures.ProcessPoolExecutor"
THREAD_EXECUTOR = "concurrent.futures.ThreadPoolExecutor"
PREFIX = "import multiprocessing as mp\n\nwith mp.Pool() as pool:\n    result = "


# --------------------------------------------------------------------------- helpers


def offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column


def span_of(text: str, start: int, end: int) -> Span:
    """Span of ``text[start:end]``, computed by counting (not by the code under test)."""

    def pos(o: int) -> tuple[int, int]:
        return text.count("\n", 0, o) + 1, o - (text.rfind("\n", 0, o) + 1)

    return Span(*pos(start), *pos(end))


def site_for(source: str, call: str, executor: str | None, method: str = "map") -> CallSite:
    start = source.index(call)
    fn = FunctionRef("f", FunctionKind.MODULE_DEF, "f")
    return CallSite("t.py", span_of(source, start, start + len(call)), method, executor, fn)


def ctor_for(source: str, call: str, executor: str) -> PoolConstructor:
    start = source.index(call)
    return PoolConstructor(executor, span_of(source, start, start + len(call)))


def assert_minimal(source: str, edits: list[TextEdit], result: str) -> None:
    """Only the edited ranges changed: the text before, between and after is the same."""
    cursor_old = cursor_new = 0
    for edit in sorted(edits, key=lambda e: (e.span.line, e.span.column)):
        start = offset(source, edit.span.line, edit.span.column)
        end = offset(source, edit.span.end_line, edit.span.end_column)
        gap = source[cursor_old:start]
        assert result[cursor_new : cursor_new + len(gap)] == gap
        cursor_new += len(gap)
        assert result[cursor_new : cursor_new + len(edit.new_text)] == edit.new_text
        cursor_new += len(edit.new_text)
        cursor_old = end
    assert result[cursor_new:] == source[cursor_old:]


def applied(source: str, edits: list[TextEdit]) -> str:
    result = apply_edits(source, edits)
    assert_minimal(source, edits, result)
    cst.parse_module(result)  # raises if the file no longer parses
    return result


# --------------------------------------------------------------------------- chunksize

CHUNKSIZE = [
    # (call as written, executor, method, expected call after setting chunksize=8)
    ("pool.map(f, xs)", POOL, "map", "pool.map(f, xs, chunksize=8)"),
    ("pool.map(f, xs, 256)", POOL, "map", "pool.map(f, xs, 8)"),
    ("pool.map(f, xs, chunksize=256)", POOL, "map", "pool.map(f, xs, chunksize=8)"),
    ("pool.imap(f, xs, chunksize=n)", POOL, "imap", "pool.imap(f, xs, chunksize=8)"),
    (
        "pool.imap_unordered(f, xs)",
        None,
        "imap_unordered",
        "pool.imap_unordered(f, xs, chunksize=8)",
    ),
    ("pool.starmap_async(f, xs, 3, cb)", POOL, "starmap_async", "pool.starmap_async(f, xs, 8, cb)"),
    ("pool.map(f, xs, chunksize=(256))", POOL, "map", "pool.map(f, xs, chunksize=(8))"),
    ("pool.map(f, xs,)", POOL, "map", "pool.map(f, xs, chunksize=8,)"),
    ("pool.map(f, *rest)", POOL, "map", "pool.map(f, *rest, chunksize=8)"),
    ("pool.map(f, xs, **kw)", POOL, "map", "pool.map(f, xs, chunksize=8, **kw)"),
    ("pool.map()", POOL, "map", "pool.map(chunksize=8)"),
    ("pool.map  (f, xs)", POOL, "map", "pool.map  (f, xs, chunksize=8)"),
    ("mp.Pool(2).map(f, xs)", POOL, "map", "mp.Pool(2).map(f, xs, chunksize=8)"),
    # Executor.map: the third positional is another iterable, chunksize is keyword-only.
    ("pool.map(f, xs, ys)", EXECUTOR, "map", "pool.map(f, xs, ys, chunksize=8)"),
    ("pool.map(f, xs, chunksize=2)", EXECUTOR, "map", "pool.map(f, xs, chunksize=8)"),
    (
        "pool.map(f, xs, timeout=3)",
        THREAD_EXECUTOR,
        "map",
        "pool.map(f, xs, timeout=3, chunksize=8)",
    ),
    ("pool.map(f, xs, 4)", THREAD_POOL, "map", "pool.map(f, xs, 8)"),
    # Multi-line calls keep their layout and comments.
    (
        "pool.starmap(\n        f,\n        pairs,  # the work\n    )",
        POOL,
        "starmap",
        "pool.starmap(\n        f,\n        pairs,  # the work\n        chunksize=8,\n    )",
    ),
    (
        "pool.map(f,  # fn\n             xs  # items\n    )",
        POOL,
        "map",
        "pool.map(f,  # fn\n             xs, chunksize=8  # items\n    )",
    ),
    (
        "pool.map(\n        f, xs, 16  # tuned\n    )",
        POOL,
        "map",
        "pool.map(\n        f, xs, 8  # tuned\n    )",
    ),
    (
        "pool.map(f, [\n        1, 2,\n    ],\n    )",
        POOL,
        "map",
        "pool.map(f, [\n        1, 2,\n    ],\n    chunksize=8,\n    )",
    ),
]


@pytest.mark.parametrize(("call", "executor", "method", "expected"), CHUNKSIZE)
def test_set_chunksize(call, executor, method, expected):
    source = f"{PREFIX}{call}\n    print(result)  # unchanged\n"
    site = site_for(source, call, executor, method)
    result = applied(source, set_chunksize(source, site, 8))
    assert result == source.replace(call, expected)
    # Setting the same value again changes nothing.
    again = site_for(result, expected, executor, method)
    assert set_chunksize(result, again, 8) == []


def test_edit_touches_only_the_argument_value():
    source = f"{PREFIX}pool.map(f, xs, 256)\n"
    (edit,) = set_chunksize(source, site_for(source, "pool.map(f, xs, 256)", POOL), 32)
    line = source.split("\n").index("    result = pool.map(f, xs, 256)") + 1
    column = len("    result = pool.map(f, xs, ")
    assert edit == TextEdit(Span(line, column, line, column + 3), "32")


def test_columns_are_code_points_and_crlf_is_kept():
    source = "ünïcödé = 1\r\nwith mp.Pool() as pool:\r\n    é = pool.map(f, xs)  # ü\r\n"
    site = site_for(source, "pool.map(f, xs)", POOL)
    result = applied(source, set_chunksize(source, site, 4))
    assert result == source.replace("pool.map(f, xs)", "pool.map(f, xs, chunksize=4)")
    multi = "with mp.Pool() as pool:\r\n    pool.map(\r\n        f,\r\n        xs,\r\n    )\r\n"
    call = "pool.map(\r\n        f,\r\n        xs,\r\n    )"
    result = applied(multi, set_chunksize(multi, site_for(multi, call, POOL), 4))
    assert result == multi.replace("xs,\r\n", "xs,\r\n        chunksize=4,\r\n")


def test_tabs_and_backslash_continuation():
    source = "if True:\n\tr = pool \\\n\t\t.map(f, xs)\n"
    call = "pool \\\n\t\t.map(f, xs)"
    result = applied(source, set_chunksize(source, site_for(source, call, POOL), 5))
    assert result == "if True:\n\tr = pool \\\n\t\t.map(f, xs, chunksize=5)\n"


# --------------------------------------------------------------------------- workers

WORKERS = [
    ("mp.Pool()", POOL, "mp.Pool(processes=3)"),
    ("mp.Pool(8)", POOL, "mp.Pool(3)"),
    ("mp.Pool(processes=8)", POOL, "mp.Pool(processes=3)"),
    ("mp.Pool(initializer=init)", POOL, "mp.Pool(initializer=init, processes=3)"),
    ("mp.Pool(os.cpu_count() - 1, init)", POOL, "mp.Pool(3, init)"),
    ("ctx.Pool(8)", POOL, "ctx.Pool(3)"),
    ('mp.get_context("spawn").Pool()', POOL, 'mp.get_context("spawn").Pool(processes=3)'),
    ("ThreadPool(2)", THREAD_POOL, "ThreadPool(3)"),
    ("ProcessPoolExecutor()", EXECUTOR, "ProcessPoolExecutor(max_workers=3)"),
    ("ProcessPoolExecutor(8)", EXECUTOR, "ProcessPoolExecutor(3)"),
    (
        "cf.ProcessPoolExecutor(mp_context=ctx)",
        EXECUTOR,
        "cf.ProcessPoolExecutor(mp_context=ctx, max_workers=3)",
    ),
    (
        'ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")',
        THREAD_EXECUTOR,
        'ThreadPoolExecutor(max_workers=3, thread_name_prefix="io")',
    ),
    ("mp.Pool(**opts)", POOL, "mp.Pool(processes=3, **opts)"),
    ("mp.Pool(  # workers\n    )", POOL, "mp.Pool(processes=3  # workers\n    )"),
]


@pytest.mark.parametrize(("call", "executor", "expected"), WORKERS)
def test_set_workers(call, executor, expected):
    source = f"import os\n\ndef main():\n    pool = {call}  # the pool\n    return pool\n"
    ctor = ctor_for(source, call, executor)
    result = applied(source, set_workers(source, ctor, 3))
    assert result == source.replace(call, expected)
    assert set_workers(result, ctor_for(result, expected, executor), 3) == []


def test_set_parameters_on_a_chained_constructor():
    source = "from multiprocessing import Pool\nr = Pool(8).map(f, xs)\n"
    site = site_for(source, "Pool(8).map(f, xs)", POOL)
    site.constructor = ctor_for(source, "Pool(8)", POOL)
    result = applied(source, set_parameters(source, site, chunksize=4, workers=2))
    assert result == "from multiprocessing import Pool\nr = Pool(2).map(f, xs, chunksize=4)\n"
    with pytest.raises(EditError, match="no known pool constructor"):
        set_parameters(source, site_for(source, "Pool(8).map(f, xs)", POOL), workers=2)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "4", None])
def test_invalid_values_are_refused(value):
    source = f"{PREFIX}pool.map(f, xs)\n"
    with pytest.raises(EditError, match="positive integer"):
        set_chunksize(source, site_for(source, "pool.map(f, xs)", POOL), value)
    with pytest.raises(EditError, match="positive integer"):
        set_workers(source, ctor_for(source, "mp.Pool()", POOL), value)


def test_stale_span_is_refused():
    source = f"{PREFIX}pool.map(f, xs)\n"
    site = site_for(source, "pool.map(f, xs)", POOL)
    edited = source.replace("pool.map(f, xs)", "[pool, map, xs]")
    with pytest.raises(EditError, match="not a call any more"):
        set_chunksize(edited, site, 4)
    with pytest.raises(EditError, match="outside the source"):
        set_chunksize("x = 1\n", site, 4)


def test_apply_edits_rejects_overlap_and_bad_positions():
    source = "abcdef\nghi\n"
    with pytest.raises(EditError, match="overlaps"):
        apply_edits(source, [TextEdit(Span(1, 0, 1, 3), "x"), TextEdit(Span(1, 2, 1, 4), "y")])
    with pytest.raises(EditError, match="outside"):
        apply_edits(source, [TextEdit(Span(2, 4, 2, 4), "x")])
    with pytest.raises(EditError, match="outside"):
        apply_edits(source, [TextEdit(Span(9, 0, 9, 0), "x")])
    with pytest.raises(EditError, match="ends before"):
        apply_edits(source, [TextEdit(Span(1, 3, 1, 1), "x")])


def test_apply_edits_in_any_order():
    source = "abcdef\nghi\n"
    edits = [
        TextEdit(Span(2, 0, 2, 3), "GHI"),
        TextEdit(Span(1, 6, 1, 6), "!"),
        TextEdit(Span(1, 0, 1, 1), ""),
        TextEdit(Span(1, 6, 1, 6), "?"),
    ]
    assert apply_edits(source, edits) == "bcdef!?\nGHI\n"
    assert apply_edits(source, []) == source


# --------------------------------------------------------------------------- from the analysis

ANALYSED = """\
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing.pool import ThreadPool


def work(x):
    return x * x


def main(items):
    with mp.Pool(4) as pool:  # four workers
        a = pool.map(work, items)
        b = list(pool.imap(work, items, 64))
        c = pool.starmap(
            work,
            [(1,), (2,)],  # pairs
        )
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes=2) as spawned:
        d = spawned.map_async(work, items, chunksize=1).get()
    with ProcessPoolExecutor() as ex:
        e = list(ex.map(work, items, items))
    with ThreadPoolExecutor(max_workers=16) as tex:
        f = list(tex.map(work, items, chunksize=5))
    with ThreadPool(3) as tp:
        g = tp.map(work, items)
    h = mp.Pool().map(work, items)
    return a, b, c, d, e, f, g, h


if __name__ == "__main__":
    main(range(100))
"""


def test_sites_from_the_analysis_round_trip():
    sites = find_callsites(ANALYSED, "analysed.py")
    assert len(sites) == 8
    for n, site in enumerate(sites):
        result = applied(ANALYSED, set_chunksize(ANALYSED, site, 7))
        after = find_callsites(result, "analysed.py")
        assert len(after) == len(sites)
        assert after[n].chunksize_value == 7
        assert after[n].method == site.method
        assert set_chunksize(result, after[n], 7) == []
        # Executor.map keeps its second iterable; only the keyword was added.
        if site.executor == EXECUTOR:
            assert after[n].chunksize_style == "keyword"


def test_constructors_from_the_analysis_round_trip():
    sites = find_callsites(ANALYSED, "analysed.py")
    ctors = {id(s.constructor): s.constructor for s in sites if s.constructor is not None}
    assert len(ctors) == 6
    for ctor in ctors.values():
        result = applied(ANALYSED, set_workers(ANALYSED, ctor, 3))
        again = [s.constructor for s in find_callsites(result, "analysed.py") if s.constructor]
        match = [c for c in again if c.span.line == ctor.span.line]
        assert match and all(c.workers_value == 3 for c in match)
        assert set_workers(result, match[0], 3) == []


def test_both_parameters_at_once_from_the_analysis():
    sites = find_callsites(ANALYSED, "analysed.py")
    chained = next(s for s in sites if s.constructor and s.constructor.span.line == s.span.line)
    result = applied(ANALYSED, set_parameters(ANALYSED, chained, chunksize=9, workers=2))
    assert "h = mp.Pool(processes=2).map(work, items, chunksize=9)" in result


EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("**/*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_site_can_be_fixed(path):
    source = path.read_text(encoding="utf-8")
    for site in find_callsites(source, str(path)):
        result = applied(source, set_chunksize(source, site, 11))
        assert set_chunksize(result, _same_site(result, site, path), 11) == []
        if site.constructor is not None:
            applied(source, set_workers(source, site.constructor, 2))


def test_standard_library_sites_all_take_a_chunksize():
    """Every call site of CPython's multiprocessing tests, edited at once, still parses."""
    path = Path(sysconfig.get_paths()["stdlib"]) / "test" / "_test_multiprocessing.py"
    if not path.exists():
        pytest.skip(f"{path} is not installed here")
    source = path.read_text(encoding="utf-8")
    sites = find_callsites(source, str(path))
    assert len(sites) >= 10
    edits = [e for site in sites for e in set_chunksize(source, site, 13)]
    result = applied(source, edits)
    after = find_callsites(result, str(path))
    assert [s.chunksize_value for s in after] == [13] * len(sites)


def _same_site(source: str, site: CallSite, path: Path) -> CallSite:
    return next(
        s
        for s in find_callsites(source, str(path))
        if (s.span.line, s.span.column) == (site.span.line, site.span.column)
    )


# --------------------------------------------------------------------------- generated layouts

SPACE = st.sampled_from(["", " ", "  ", "\n        ", "  # note\n        ", "\n\n    "])


@st.composite
def layouts(draw):
    """A map call with random whitespace, comments, trailing comma and argument styles."""
    executor = draw(st.sampled_from([POOL, EXECUTOR, None]))
    args = ["f", draw(st.sampled_from(["xs", "range(10)", "[1, 2,\n  3]", "(x for x in y)"]))]
    style = draw(st.sampled_from(["none", "positional", "keyword", "star", "starstar"]))
    if style == "positional":
        args.append(draw(st.sampled_from(["1", "n", "0x10", "(3)", "1_000"])))
    elif style == "keyword":
        args.append("chunksize=" + draw(st.sampled_from(["1", "n", "2 * k"])))
    elif style == "star":
        args.append("*more")
    elif style == "starstar":
        args.append("**options")
    if executor == EXECUTOR and style == "positional":
        args[-1] = "ys"  # a third iterable
    parts = [draw(SPACE) + a + draw(SPACE) for a in args]
    trailing = "," + draw(SPACE) if draw(st.booleans()) else ""
    call = "pool.map(" + ",".join(parts) + trailing + ")"
    method = "map" if executor else "imap"
    return executor, call.replace("pool.map", f"pool.{method}"), method


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts(), value=st.integers(1, 10**6))
def test_generated_layouts_round_trip(layout, value):
    executor, call, method = layout
    source = f"{PREFIX}{call}\n    done()  # after\n"
    cst.parse_module(source)  # every generated layout is valid Python to begin with
    site = site_for(source, call, executor, method)
    result = applied(source, set_chunksize(source, site, value))
    start = source.index(call)
    new_call = result[start : len(result) - len(source) + start + len(call)]
    again = site_for(result, new_call, executor, method)
    assert set_chunksize(result, again, value) == []
    # The analysis reads back exactly the value that was set.
    expr = cst.parse_expression(new_call)
    assert isinstance(expr, cst.Call)
    given_as = [a for a in expr.args if a.keyword and a.keyword.value == "chunksize"]
    positional = [a for a in expr.args if not a.keyword and not a.star]
    chosen = given_as[0] if given_as else positional[2]
    assert isinstance(chosen.value, cst.Integer) and chosen.value.evaluated_value == value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.one_of(
        st.text(max_size=120),
        st.sampled_from([ANALYSED, f"{PREFIX}pool.map(f, xs)\n", "Pool(4).map(f, [1,\n2])\n"]),
    ),
    lines=st.tuples(st.integers(-1, 40), st.integers(-1, 40)),
    columns=st.tuples(st.integers(-1, 60), st.integers(-1, 60)),
    executor=st.sampled_from([POOL, EXECUTOR, None, "x.Y"]),
    value=st.integers(-2, 64),
)
def test_any_span_gives_edits_or_edit_error(source, lines, columns, executor, value):
    """Stale or arbitrary spans and values: a usable edit or an ``EditError``, nothing else."""
    span = Span(lines[0], columns[0], lines[1], columns[1])
    site = CallSite("t.py", span, "map", executor, FunctionRef("f", FunctionKind.MODULE_DEF))
    for make in (
        lambda: set_chunksize(source, site, value),
        lambda: set_workers(source, PoolConstructor(executor or POOL, span), value),
    ):
        try:
            edits = make()
        except EditError as exc:
            assert str(exc)
            continue
        assert len(edits) <= 1
        apply_edits(source, edits)


# --------------------------------------------------------------------------- main guard

GUARD_SOURCE = '''\
from multiprocessing import Pool


def square(x):
    return x * x


# the pool
pool = Pool(4)
doc = """first
second"""

print(pool.map(square, range(10)), doc)
pool.close()
# trailing comment
'''


def test_wrap_in_main_guard_moves_the_trailing_block_and_keeps_strings():
    from amorsize_lsp.analysis.edits import wrap_in_main_guard

    edit = wrap_in_main_guard(GUARD_SOURCE, 2)
    assert edit is not None
    result = apply_edits(GUARD_SOURCE, [edit])
    cst.parse_module(result)
    assert '# the pool\nif __name__ == "__main__":\n    pool = Pool(4)\n' in result
    assert '    doc = """first\nsecond"""\n' in result  # string contents untouched
    assert result.endswith("    pool.close()\n# trailing comment\n")
    before = GUARD_SOURCE[: GUARD_SOURCE.index("# the pool")]
    assert result.startswith(before)  # nothing above the block changes


@pytest.mark.parametrize(
    "tail",
    [
        "def late():\n    pass\n",  # a def would vanish from workers
        "class Late:\n    pass\n",
        'if __name__ == "__main__":\n    pass\n',  # already guarded below
    ],
)
def test_wrap_in_main_guard_refuses_blocks_that_change_meaning(tail):
    from amorsize_lsp.analysis.edits import wrap_in_main_guard

    assert wrap_in_main_guard(GUARD_SOURCE + tail, 2) is None


def test_wrap_in_main_guard_refuses_names_read_by_functions():
    from amorsize_lsp.analysis.edits import wrap_in_main_guard

    source = "from multiprocessing import Pool\nSCALE = 3\ndef f(x):\n    return x * SCALE\n"
    assert wrap_in_main_guard(source, 1) is None
    assert wrap_in_main_guard(source + "pool = Pool(2)\n", 3) is not None
    assert wrap_in_main_guard(source, 99) is None
    assert wrap_in_main_guard("def broken(:\n", 0) is None


@pytest.mark.parametrize(
    "source",
    [
        "import os\nprint(os.sep)\nPool(2)",
        "x = 1\n\n\nif x:\n    print(x)\nPool(2)",
        "Pool(2)",
        "# a comment\nPool(2)\nprint(1)",
    ],
    ids=["after-a-call", "after-a-block", "alone", "after-a-comment"],
)
def test_main_guard_on_text_without_a_final_newline_parses(source: str) -> None:
    """Found by the fix-property test: the guard was glued to the previous line."""
    index = next(i for i, line in enumerate(source.splitlines()) if line.startswith("Pool"))
    statement = next(i for i, node in enumerate(ast.parse(source).body) if node.lineno == index + 1)
    edit = wrap_in_main_guard(source, statement)
    assert edit is not None
    fixed = apply_edits(source, [edit])
    assert source_parses(fixed)
    assert 'if __name__ == "__main__":\n    Pool(2)' in fixed
    assert fixed.startswith(source[: source.index("Pool")])
