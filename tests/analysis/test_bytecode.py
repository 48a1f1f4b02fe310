"""Bytecode complexity: figures, lookup, code hash, imported functions, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amorsize_lsp.analysis.bytecode import Complexity, complexity_for, function_complexity
from amorsize_lsp.analysis.model import FunctionKind, FunctionRef, Span

HAS_COLUMNS = sys.version_info >= (3, 11)


def cx(source: str, qualname: str = "f", **kw) -> Complexity:
    return function_complexity(textwrap.dedent(source), qualname, **kw)


def assert_zero(c: Complexity, reason_part: str) -> None:
    assert not c.resolved
    assert c.reason is not None and reason_part in c.reason, c.reason
    assert (c.bytecode_size, c.instruction_count, c.loop_count, c.call_count) == (0, 0, 0, 0)
    assert c.code_hash is None and c.io_calls == () and not c.blocking_io and not c.recursive


# --------------------------------------------------------------------------- loops

LOOPS = {
    "straight": ("def f(x):\n    return x + 1\n", 0, 0),
    "for": ("def f(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n", 1, 1),
    "nested for": (
        """
        def f(m):
            for row in m:
                for v in row:
                    print(v)
        """,
        2,
        2,
    ),
    "while with continue in both loops": (
        """
        def f(xs, n):
            i = 0
            while i < n:
                i += 1
                if i % 2:
                    continue
                for x in xs:
                    if x:
                        continue
                    print(x)
        """,
        2,
        2,
    ),
    "one-line continue": (
        """
        def f(xs):
            for x in xs:
                if x: continue
                print(x)
        """,
        1,
        1,
    ),
    "list comprehension": ("def f(xs):\n    return [x * 2 for x in xs]\n", 1, 1),
    "two-clause comprehension": ("def f(m):\n    return [v for r in m for v in r]\n", 2, 2),
    "generator expression in a loop": (
        """
        def f(m):
            for row in m:
                s = sum(v * v for v in row)
        """,
        2,
        2,
    ),
    "retry loop round an except": (
        """
        def f(g):
            while True:
                try:
                    return g()
                except ValueError:
                    continue
        """,
        1,
        1,
    ),
    "continue through a with inside try": (
        """
        def f(finders, name):
            for finder in finders:
                with lock():
                    try:
                        find = finder.find
                    except AttributeError:
                        continue
                    else:
                        spec = find(name)
                if spec is not None:
                    return spec
        """,
        1,
        1,
    ),
    "with block is not a loop": (
        """
        def f(p):
            with open(p) as fh:
                data = fh.read()
            try:
                return int(data)
            except ValueError:
                return 0
        """,
        0,
        0,
    ),
    "loop in a finally block (compiled twice)": (
        """
        def f(xs):
            try:
                g()
            finally:
                for x in xs:
                    h(x)
        """,
        1,
        1,
    ),
    "async for with await": (
        """
        async def f(xs):
            async for x in xs:
                await x
            await g()
        """,
        1,
        1,
    ),
    "loop inside a nested def": (
        """
        def f(xs):
            def inner(ys):
                return [y for y in ys]
            for x in xs:
                inner(x)
        """,
        2,
        1,
    ),
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_loop_count_and_nesting(name):
    source, loops, depth = LOOPS[name]
    c = cx(source)
    assert c.resolved, c.reason
    assert (c.loop_count, c.max_loop_depth) == (loops, depth)


def test_sizes_grow_with_the_code():
    small = cx("def f(x):\n    return x\n")
    big = cx("def f(x):\n    y = x * 2\n    z = y + 3\n    return [y, z, x]\n")
    assert 0 < small.instruction_count < big.instruction_count
    assert 0 < small.bytecode_size < big.bytecode_size


# --------------------------------------------------------------------------- calls

CALLS = {
    "no call": ("def f(x):\n    return x * 2\n", 0),
    "two calls": ("def f(x):\n    return g(h(x))\n", 2),
    "method and keyword call": ("def f(x):\n    return x.strip().split(sep=',')\n", 2),
    "star call": ("def f(a):\n    return g(*a, **a)\n", 1),
    # Running a comprehension is a loop, not a call, on every Python version.
    "comprehension invocation": ("def f(xs):\n    return [g(x) for x in xs]\n", 1),
    "generator over a call": ("def f(xs):\n    return sum(g(x) for x in h(xs))\n", 3),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_call_count(name):
    source, calls = CALLS[name]
    assert cx(source).call_count == calls


# --------------------------------------------------------------------------- recursion

RECURSION = {
    "direct": ("def f(n):\n    return 1 if n < 2 else n * f(n - 1)\n", "f", True),
    "not recursive": ("def f(n):\n    return g(n)\n", "f", False),
    "referenced, not called": ("def f(n):\n    f.cache = {}\n    return n\n", "f", False),
    "method via self": (
        "class C:\n    def walk(self, n):\n        return self.walk(n - 1) if n else 0\n",
        "C.walk",
        True,
    ),
    "other method": (
        "class C:\n    def walk(self, n):\n        return self.step(n)\n",
        "C.walk",
        False,
    ),
    "closure": (
        """
        def outer():
            def inner(k):
                return inner(k - 1) if k else 0
            return inner
        """,
        "outer.<locals>.inner",
        True,
    ),
    "in a comprehension": (
        "def f(t):\n    return [f(c) for c in t.children]\n",
        "f",
        True,
    ),
}


@pytest.mark.parametrize("name", list(RECURSION))
def test_recursion(name):
    source, qualname, expected = RECURSION[name]
    assert cx(source, qualname).recursive is expected


# --------------------------------------------------------------------------- blocking I/O

IO = {
    "open": ("def f(p):\n    with open(p) as fh:\n        return fh.read()\n", ("open",)),
    "time.sleep": ("import time\ndef f(x):\n    time.sleep(1)\n", ("time.sleep",)),
    "sleep imported by name": (
        "from time import sleep\ndef f(x):\n    sleep(1)\n",
        ("time.sleep",),
    ),
    "requests under an alias": (
        "import requests as rq\ndef f(u):\n    return rq.get(u).json()\n",
        ("requests.get",),
    ),
    "subprocess, constants ignored": (
        "import subprocess\ndef f(c):\n    return subprocess.run(c, stdout=subprocess.PIPE)\n",
        ("subprocess.run",),
    ),
    "urllib dotted": (
        "import urllib.request\ndef f(u):\n    return urllib.request.urlopen(u).read()\n",
        ("urllib.request.urlopen",),
    ),
    "urlopen by name": (
        "from urllib.request import urlopen\ndef f(u):\n    return urlopen(u)\n",
        ("urllib.request.urlopen",),
    ),
    "socket": (
        "import socket\ndef f(a):\n    s = socket.create_connection(a)\n",
        ("socket.create_connection",),
    ),
    "import inside the function": (
        "def f(c):\n    import subprocess as sp\n    return sp.check_output(c)\n",
        ("subprocess.check_output",),
    ),
    "os.system and input": (
        "import os\ndef f(c):\n    os.system(c)\n    return input()\n",
        ("input", "os.system"),
    ),
    "pathlib read": ("def f(path):\n    return path.read_text()\n", ("path.read_text",)),
    "in a lambda inside": (
        "import time\ndef f(xs):\n    return list(map(lambda x: time.sleep(x), xs))\n",
        ("time.sleep",),
    ),
    "pure arithmetic": ("import math\ndef f(x):\n    return math.sqrt(x) * 2\n", ()),
    "parameter named open": ("def f(open):\n    return open(1)\n", ()),
    "exception class only": (
        "import socket\ndef f(x):\n    try:\n        return g(x)\n    except socket.timeout:\n"
        "        return None\n    except socket.gaierror:\n        return None\n",
        (),
    ),
    "exception tuple, then a real call": (
        "import socket, requests\ndef f(u):\n    try:\n        return requests.get(u)\n"
        "    except (socket.timeout, requests.HTTPError, OSError):\n        return None\n",
        ("requests.get",),
    ),
}


@pytest.mark.parametrize("name", list(IO))
def test_blocking_io(name):
    source, expected = IO[name]
    c = cx(source)
    assert c.io_calls == expected
    assert c.blocking_io is bool(expected)


def test_module_imports_override_what_the_module_says():
    source = "def f(x):\n    return nap(x)\n"
    assert cx(source).io_calls == ()
    assert cx(source, module_imports={"nap": "time.sleep"}).io_calls == ("time.sleep",)


# --------------------------------------------------------------------------- code hash


def test_hash_changes_with_a_constant():
    two = cx("def f(x):\n    return x * 2\n")
    three = cx("def f(x):\n    return x * 3\n")
    assert two.code_hash and three.code_hash
    assert two.code_hash != three.code_hash


def test_hash_changes_with_a_name_or_a_nested_constant():
    base = cx("def f(x):\n    return g(lambda y: y + 1)\n")
    other_name = cx("def f(x):\n    return h(lambda y: y + 1)\n")
    nested_constant = cx("def f(x):\n    return g(lambda y: y + 2)\n")
    assert len({base.code_hash, other_name.code_hash, nested_constant.code_hash}) == 3


def test_hash_ignores_position_and_comments():
    a = cx("def f(x):\n    return x * 2\n")
    b = cx("# a comment\n\n\nimport os\n\ndef f(x):  # moved down\n    return x * 2\n")
    assert a.code_hash == b.code_hash


HASH_SCRIPT = """
import sys
from amorsize_lsp.analysis.bytecode import function_complexity
src = "def f(x):\\n    return x in {'a', 'b', 'c', 1.5, (1, 2)} and g(lambda: {'p', 'q'})\\n"
sys.stdout.write(function_complexity(src, "f").code_hash)
"""


def test_hash_is_stable_across_processes_and_hash_seeds():
    hashes = set()
    for seed in ("0", "1", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", HASH_SCRIPT], capture_output=True, text=True, env=env, check=True
        )
        hashes.add(out.stdout)
    assert len(hashes) == 1 and len(next(iter(hashes))) == 16


# --------------------------------------------------------------------------- lookup

MODULE = """
class C:
    def __init__(self, n):
        self.n = [i for i in range(n)]

    def method(self, x):
        return x

    @staticmethod
    def helper(x):
        return x

class Bare:
    pass

def outer():
    def inner(x):
        for i in x:
            pass
    return inner

def again(x):
    return 1

def again(x):
    for i in x:
        pass
"""


@pytest.mark.parametrize(
    ("qualname", "loops"),
    [
        ("C.method", 0),
        ("C.helper", 0),
        ("outer.<locals>.inner", 1),
        ("outer.inner", 1),  # ``<locals>`` may be left out
        ("C", 1),  # a class is analysed through its __init__
        ("again", 1),  # the later definition is the one that runs
    ],
)
def test_lookup_by_qualname(qualname, loops):
    c = function_complexity(MODULE, qualname)
    assert c.resolved, c.reason
    assert c.loop_count == loops


@pytest.mark.parametrize(
    ("qualname", "reason"),
    [
        ("missing", "function 'missing' not found in module"),
        ("C.missing", "function 'C.missing' not found in module"),
        ("Bare", "class 'Bare' has no __init__"),
    ],
)
def test_lookup_failures_say_why(qualname, reason):
    assert_zero(function_complexity(MODULE, qualname), reason)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def f(:\n    pass\n", "syntax error at line 1"),
        ("def f(x):\n\treturn x\n        return 2\n", "line 3"),
        ("x = 1\0\ndef f(): pass\n", ""),
        ("(" * 300 + ")" * 300 + "\ndef f(): pass\n", ""),
        ("def f(x):\n    return " + "lambda: " * 2000 + "1\n", "nests too deeply"),
    ],
)
def test_bad_source_gives_a_reason_not_an_exception(source, reason):
    assert_zero(function_complexity(source, "f"), reason)


def test_source_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\ndef f(x):\n    return x\n"
    assert function_complexity(source, "f").resolved
    assert not marker.exists()


def test_to_json_has_every_field():
    c = cx("import time\ndef f(x):\n    time.sleep(x)\n")
    data = c.to_json()
    assert list(data) == [f.name for f in fields(Complexity)]
    assert data["io_calls"] == ["time.sleep"] and data["resolved"] is True
    assert json.loads(json.dumps(data)) == data
    zero = Complexity.unresolved("builtin: no Python bytecode").to_json()
    assert zero["resolved"] is False and zero["code_hash"] is None


# --------------------------------------------------------------------------- FunctionRef kinds

REF_MODULE = """import functools

def work(x):
    for i in range(x):
        pass

class K:
    def m(self, x):
        return self.m(x - 1) if x else 0

    @staticmethod
    def s(x):
        return [i for i in x]

pair = (lambda x: x + 1, lambda y: [v for v in y])
"""


def ref(kind: FunctionKind, text: str, qualname: str | None = None, **kw) -> FunctionRef:
    return FunctionRef(text=text, kind=kind, qualname=qualname, **kw)


def test_complexity_for_defs_and_methods():
    assert complexity_for(ref(FunctionKind.MODULE_DEF, "work", "work"), REF_MODULE).loop_count == 1
    bound = complexity_for(ref(FunctionKind.BOUND_METHOD, "self.m", "K.m"), REF_MODULE)
    assert bound.resolved and bound.recursive
    static = complexity_for(ref(FunctionKind.STATICMETHOD, "K.s", "K.s"), REF_MODULE)
    assert static.loop_count == 1


def test_complexity_for_partial_uses_the_wrapped_function():
    inner = ref(FunctionKind.MODULE_DEF, "work", "work")
    partial = ref(FunctionKind.PARTIAL, "functools.partial(work, 2)", "work", wrapped=inner)
    assert complexity_for(partial, REF_MODULE) == complexity_for(inner, REF_MODULE)
    assert_zero(complexity_for(ref(FunctionKind.PARTIAL, "partial(g)"), REF_MODULE), "wrapped by")


def test_complexity_for_lambda_found_by_position():
    line = REF_MODULE.splitlines().index("pair = (lambda x: x + 1, lambda y: [v for v in y])") + 1
    first = Span(line, 8, line, 23)
    second = Span(line, 25, line, 50)
    a = complexity_for(ref(FunctionKind.LAMBDA, "lambda x: x + 1", span=first), REF_MODULE)
    assert a.resolved and a.loop_count == 0
    if HAS_COLUMNS:  # 3.10 has no columns in code objects: the first lambda on the line wins
        b = complexity_for(ref(FunctionKind.LAMBDA, "lambda y: ...", span=second), REF_MODULE)
        assert b.resolved and b.loop_count == 1
    missing = complexity_for(
        ref(FunctionKind.LAMBDA, "lambda: 0", span=Span(1, 0, 1, 9)), REF_MODULE
    )
    assert_zero(missing, "no lambda found at line 1")
    assert_zero(complexity_for(ref(FunctionKind.LAMBDA, "lambda: 0"), REF_MODULE), "no source")


def test_complexity_for_builtin_and_unknown():
    assert_zero(
        complexity_for(ref(FunctionKind.BUILTIN, "len", "len"), REF_MODULE),
        "builtin: no Python bytecode",
    )
    assert_zero(complexity_for(ref(FunctionKind.BUILTIN, "str.upper"), REF_MODULE), "builtin")
    assert_zero(complexity_for(ref(FunctionKind.UNKNOWN, "get()"), REF_MODULE), "resolved")


# --------------------------------------------------------------------------- imported functions


@pytest.fixture
def workspace(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .impl import work as exported\n")
    (pkg / "impl.py").write_text(
        "import time\n\ndef work(x):\n    for i in x:\n        time.sleep(i)\n"
    )
    (pkg / "sub" / "__init__.py").write_text("def deep(x):\n    return [y for y in x]\n")
    (pkg / "broken.py").write_text("def work(:\n")
    (pkg / "latin.py").write_bytes(
        "# -*- coding: latin-1 -*-\ndef f(x):\n    return 'café'\n".encode("latin-1")
    )
    return str(tmp_path)


def test_imported_function_found_on_the_search_path(workspace):
    c = function_complexity("", "pkg.impl.work", search_path=[workspace])
    assert c.resolved and c.loop_count == 1 and c.io_calls == ("time.sleep",)
    imported = ref(FunctionKind.IMPORTED, "work", "pkg.impl.work")
    assert complexity_for(imported, "from pkg.impl import work\n", [workspace]) == c


def test_imported_package_and_reexport(workspace):
    assert function_complexity("", "pkg.sub.deep", search_path=[workspace]).loop_count == 1
    reexported = function_complexity("", "pkg.exported", search_path=[workspace])
    assert reexported.resolved and reexported.io_calls == ("time.sleep",)


def test_imported_name_used_in_the_module_is_followed(workspace):
    source = "from pkg.impl import work as w\n"
    assert function_complexity(source, "w", search_path=[workspace]).loop_count == 1
    assert_zero(function_complexity(source, "w"), "function 'w' not found in module")


def test_source_encoding_is_honoured(workspace):
    assert function_complexity("", "pkg.latin.f", search_path=[workspace]).resolved


@pytest.mark.parametrize(
    ("qualname", "reason"),
    [
        ("pkg.missing.work", "module 'pkg.missing' not found on the search path"),
        ("pkg.impl.nothing", "function 'nothing' not found in module 'pkg.impl'"),
        ("pkg.broken.work", "syntax error at line 1"),
    ],
)
def test_imported_failures_say_why(workspace, qualname, reason):
    assert_zero(function_complexity("", qualname, search_path=[workspace]), reason)


@pytest.mark.parametrize("qualname", ["pkg..impl.work", "pkg/../pkg.impl.work", ".impl.work"])
def test_malformed_import_paths_are_refused(workspace, qualname):
    c = function_complexity("", qualname, search_path=[workspace])
    assert not c.resolved and c.reason and qualname in c.reason


def test_imported_without_search_path():
    imported = ref(FunctionKind.IMPORTED, "work", "pkg.impl.work")
    assert_zero(complexity_for(imported, "from pkg.impl import work\n"), "no search path")


# --------------------------------------------------------------------------- with find_callsites

SITES = """import functools
from multiprocessing import Pool

def square(x):
    return x * x

def slow(x):
    total = 0
    for i in range(x):
        for j in range(i):
            total += j
    return total

class Job:
    def run(self, x):
        return x

    @staticmethod
    def static(x):
        return [x for _ in range(3)]

    def go(self, pool):
        pool.map(self.run, range(3))

if __name__ == "__main__":
    with Pool(4) as pool:
        pool.map(square, range(10))
        pool.map(slow, range(10))
        pool.map(lambda x: [y for y in range(x)], range(10))
        pool.map(functools.partial(slow), range(10))
        pool.map(Job.static, range(10))
        pool.map(len, ["a"])
"""


def test_every_site_of_a_module_gets_its_complexity():
    from amorsize_lsp.analysis.callsites import find_callsites

    sites = find_callsites(SITES, "sites.py")
    by_text = {s.function.text: complexity_for(s.function, SITES) for s in sites}
    assert by_text["square"].resolved and by_text["square"].loop_count == 0
    assert (by_text["slow"].loop_count, by_text["slow"].max_loop_depth) == (2, 2)
    assert by_text["lambda x: [y for y in range(x)]"].loop_count == 1
    assert by_text["functools.partial(slow)"] == by_text["slow"]
    assert by_text["Job.static"].loop_count == 1
    assert not by_text["len"].resolved and "builtin" in by_text["len"].reason
    if "self.run" in by_text:  # only if the analysis resolves pools passed as parameters
        assert by_text["self.run"].resolved


# --------------------------------------------------------------------------- never an exception

VALID = [
    "def f(x):\n    return [y * 2 for y in x if y]\n",
    "import time\nclass C:\n    def f(self, n):\n        while n:\n            time.sleep(n)\n"
    "            n -= 1\n        return self.f(n)\n",
    "async def f(xs):\n    async for x in xs:\n        try:\n            await x\n"
    "        finally:\n            continue\n",
    "def f(a, *b, **c):\n    with open(a) as h:\n        for i in h:\n"
    "            yield from (j for j in i)\n    return lambda: f\n",
]


@st.composite
def mutated(draw):
    source = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(source)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        text = draw(st.text(alphabet=" \t\n():[]{}.,=*\\'\"#@xyfin0\0é", max_size=4))
        if op == "insert":
            source = source[:pos] + text + source[pos:]
        elif op == "delete":
            source = source[:pos] + source[pos + len(text) + 1 :]
        else:
            source = source[:pos] + text + source[pos + len(text) :]
    return source


def check_outcome(c: Complexity) -> None:
    assert isinstance(c, Complexity)
    if c.resolved:
        assert c.reason is None and isinstance(c.code_hash, str) and len(c.code_hash) == 16
        assert c.instruction_count > 0 and c.max_loop_depth <= c.loop_count
        assert c.blocking_io is bool(c.io_calls)
    else:
        assert isinstance(c.reason, str) and c.reason
        assert c.code_hash is None and c.instruction_count == 0
    json.dumps(c.to_json())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.one_of(mutated(), st.text(max_size=200)),
    qualname=st.sampled_from(["f", "C.f", "f.<locals>.g", "<lambda>", "pkg.mod.f", "", "."]),
)
def test_random_and_mutated_sources_never_raise(source, qualname):
    check_outcome(function_complexity(source, qualname))


@settings(max_examples=150, deadline=None)
@given(
    source=mutated(),
    kind=st.sampled_from(list(FunctionKind)),
    line=st.integers(-2, 12),
    column=st.integers(-2, 40),
)
def test_random_function_refs_never_raise(source, kind, line, column):
    span = Span(line, column, line + 1, column)
    check_outcome(complexity_for(FunctionRef("f", kind, "f", span=span), source))
