"""Inputs that once crashed or hung the interpreter inside libcst's native parser.

Each runs in a subprocess with a time limit, so a regression fails the test
instead of killing the test run. Files that CPython's parser rejects for a
reason no newer Python accepts get CPython's message and position.
"""

from __future__ import annotations

import json
import multiprocessing.pool
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from amorsize_lsp.analysis.callsites import find_callsites
from amorsize_lsp.analysis.model import AnalysisError

_PROBE = """
import json, sys
from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.analysis.model import AnalysisError
source = sys.stdin.read()
try:
    result = analyze_source(source, "probe.py", search_path=sys.argv[1:])
    out = {"sites": [s.to_json() for s in result.callsites]}
except AnalysisError as exc:
    out = {"error": exc.message, "line": exc.line, "column": exc.column}
print(json.dumps(out))
"""

HEAD = "from multiprocessing import Pool\n"


def probe(source: str, *search_path: str, limit: float = 60.0) -> dict:
    """``analyze_source`` in a child interpreter: its result, or a failed test."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *search_path],
        input=source,
        capture_output=True,
        text=True,
        timeout=limit,
    )
    assert proc.returncode == 0, f"the analysis died with code {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def cpython_error(source: str) -> tuple[str, int, int]:
    try:
        compile(source, "probe.py", "exec", dont_inherit=True, flags=0x400)  # ast only
    except SyntaxError as exc:
        return exc.msg, exc.lineno or 1, (exc.offset or 1) - 1
    raise AssertionError("CPython parses this")


def nested_call(depth: int, newer: str = "") -> str:
    body = "(" * depth + "1" + ")" * depth
    return HEAD + newer + f"with Pool() as p:\n    p.map(abs, [{body}])\n"


def broken_indentation(places: int) -> str:
    lines = Path(multiprocessing.pool.__file__).read_text().splitlines(keepends=True)
    step = len(lines) // (places + 1)
    for i in range(1, places + 1):
        at = i * step
        while not lines[at].strip():
            at += 1
        lines[at] = "      " + lines[at]
    text = "".join(lines)
    while len(text) < 60_000:
        text += "".join(lines[:200])
    return text


NEWER = "type T = int\n"  # 3.12 syntax, newer than some interpreters we run on


@pytest.mark.parametrize("newer", ["", NEWER], ids=["plain", "beside-newer-syntax"])
@pytest.mark.parametrize(
    "source",
    [
        pytest.param(nested_call(250), id="250-nested-parentheses"),
        pytest.param(nested_call(5000), id="5000-nested-parentheses"),
        pytest.param(broken_indentation(6), id="broken-indentation-60kb"),
        pytest.param(HEAD + "x = 'open\nwith Pool() as p:\n    p.imap(abs, [1])\n", id="string"),
        pytest.param(HEAD + "x = 1 \u2603 2\nwith Pool() as p:\n    p.imap(abs, [1])\n", id="char"),
    ],
)
def test_errors_no_python_accepts_get_cpythons_message_without_libcst(
    source: str, newer: str
) -> None:
    # Beside newer syntax, the error reported is the first one that is not newer syntax.
    msg, line, column = cpython_error(("pass\n" if newer else "") + source)
    expected = {"error": f"syntax error: {msg}", "line": line, "column": column}
    assert probe(newer + source) == expected


def test_deep_expression_is_reported_not_crashed_on() -> None:
    # CPython's parser gives up (RecursionError or MemoryError): an AnalysisError.
    out = probe(HEAD + "x = " + "-" * 200_000 + "1\nwith Pool() as p:\n    p.imap(abs, [1])\n")
    assert "error" in out and out["line"] >= 1


def test_long_chain_that_cpython_accepts_is_bounded_before_libcst() -> None:
    chain = "+".join(["1"] * 1500)  # CPython parses it; libcst would take seconds
    out = probe(HEAD + f"with Pool() as p:\n    p.imap(abs, [{chain}])\n", limit=30)
    assert out["error"].startswith("the statement at line 2 nests expressions over")
    assert out["line"] == 2


@pytest.mark.parametrize(
    ("newer", "expected_method"),
    [
        ("type Items = list[int]\n", "imap"),
        ("type Items = (\n    list[int]\n)\n", "imap"),
        ("@dec\ndef gen[T](x: T) -> T:\n    return x\n", "imap"),
        ("def gen[T](\n    x: T,\n) -> T:\n    return x\n", "imap"),
        ('label = f"{d["k"]}"\n', "imap"),
        ("try:\n    pass\nexcept A, B:\n    pass\n", "imap"),
    ],
)
def test_newer_syntax_still_goes_to_libcst_statement_by_statement(
    newer: str, expected_method: str
) -> None:
    source = HEAD + newer + "with Pool() as p:\n    p.imap(abs, [1])\n"
    try:
        compile(source, "n.py", "exec", flags=0x400)
    except SyntaxError:
        pass
    else:
        pytest.skip("this interpreter already parses it")
    sites = find_callsites(source, "n.py")
    assert [s.method for s in sites] == [expected_method]
    assert sites[0].span.line == source.count("\n")  # the last line


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="parses type statements natively")
def test_a_long_chain_in_newer_syntax_is_not_given_to_libcst() -> None:
    chain = "+".join(["1"] * 3000)
    out = probe(HEAD + f"type T = {chain}\nwith Pool() as p:\n    p.imap(abs, [1])\n", limit=30)
    assert out["error"] == "syntax error: invalid syntax (over 500 operators in one expression)"
    assert out["line"] == 2


def test_newer_syntax_beside_a_real_error_reports_the_real_error() -> None:
    source = HEAD + "type Items = list[int]\nwith Pool() as p:\n    p.imap(abs, [1])\n    )\n"
    with pytest.raises(AnalysisError) as info:
        find_callsites(source, "n.py")
    assert info.value.line == 5
    assert info.value.message.startswith("syntax error: unmatched ')'")


def test_mapped_function_in_a_generic_def_resolves() -> None:
    source = HEAD + textwrap.dedent(
        """\
        def work[T](x: T) -> T:
            return x
        with Pool() as p:
            p.map(work, [1])
        """
    )
    (site,) = find_callsites(source, "g.py")
    assert site.function.qualname == "work"


def test_workspace_module_with_a_non_text_codec_is_a_reason(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("# -*- coding: rot13 -*-\ndef f(x):\n    return x\n")
    source = HEAD + "from pkg.mod import f\nwith Pool() as p:\n    p.map(f, [1])\n"
    (site,) = probe(source, str(tmp_path))["sites"]
    reason = site["complexity"]["reason"]
    assert "rot13" in reason and "declare utf-8" in reason
