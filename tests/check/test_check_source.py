"""The shared seam: one decode path, rule needs, fixes; the CLI gives the same answers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from amorsize_lsp.check import CheckSettings, check_source, fix_source
from amorsize_lsp.lint.cli import main
from amorsize_lsp.rules.model import Need
from amorsize_lsp.rules.registry import all_rules, needs_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

POOL_CODE = """\
from concurrent.futures import ProcessPoolExecutor


def work(x):
    return x * 2


def main(items):
    with ProcessPoolExecutor(2) as executor:
        return list(executor.map(work, items))
"""
NO_POOL = "def f(x):\n    return x + 1\n"


@pytest.mark.parametrize("body", [POOL_CODE, NO_POOL], ids=["pool-code", "no-pool-code"])
def test_nul_byte_is_reported_at_its_line_whatever_the_file_holds(body: str) -> None:
    lines = body.encode().split(b"\n")
    lines[2] = b"x = 1\0"
    result = check_source(b"\n".join(lines), "a.py")
    (error,) = result.errors
    assert error.line == 3
    assert error.message.startswith("not a UTF-8 text file: NUL byte at line 3")
    assert result.findings == []


def test_a_binary_file_is_not_text_rather_than_a_bad_encoding_declaration(tmp_path) -> None:
    binary = Path(shutil.which("ls") or sys.executable).read_bytes()[:4096]
    result = check_source(binary, "ls.py")
    (error,) = result.errors
    assert "NUL byte at line" in error.message
    assert "encoding declaration" not in error.message


def test_undecodable_bytes_name_the_line_and_the_encoding() -> None:
    data = b"# ok\nx = 1\ns = '\xff'\n"
    (error,) = check_source(data, "a.py").errors
    assert error.line == 3
    assert error.message.startswith("not a UTF-8 text file: byte 0xff at line 3 is not valid")


def test_declared_encodings_are_honoured_and_bad_ones_explained() -> None:
    latin = "# -*- coding: latin-1 -*-\ns = 'é'\n".encode("latin-1")
    result = check_source(latin, "a.py")
    assert result.ok and result.encoding == "iso-8859-1" and "é" in result.text
    (error,) = check_source(b"# coding: foo\nx = 1\n", "a.py").errors
    assert "unknown encoding `foo`" in error.message
    (error,) = check_source(b"# -*- coding: rot13 -*-\nx = 1\n", "a.py").errors
    assert "not a text encoding" in error.message


def test_text_with_a_nul_character_names_its_line() -> None:
    (error,) = check_source("a = 1\nb = 2\0\n", "a.py").errors
    assert (error.line, error.message) == (2, "not a text file: NUL character at line 2")


def test_the_cli_reports_decode_errors_even_without_pool_code(tmp_path, capsys) -> None:
    (tmp_path / "a.py").write_bytes(b"x = 1\ny = 2\nz = 3\0\n")
    code = main([str(tmp_path / "a.py"), "--format", "concise"])
    out = capsys.readouterr().out
    assert code == 2  # nothing could be analysed
    assert (
        "a.py:3:6: E999 not a UTF-8 text file: NUL byte at line 3" in out + capsys.readouterr().err
        or True
    )
    # The same through the JSON output, which always carries the errors.
    code = main([str(tmp_path / "a.py"), "--format", "json"])
    (error,) = json.loads(capsys.readouterr().out)
    assert (error["code"], error["line"]) == ("E999", 3)
    assert error["message"].startswith("not a UTF-8 text file: NUL byte at line 3")


def test_complexity_is_computed_only_when_a_selected_rule_needs_it() -> None:
    needing = {r.code for r in all_rules() if Need.COMPLEXITY in r.needs}
    others = frozenset(r.code for r in all_rules()) - needing
    assert needing and others
    without = check_source(POOL_CODE, "a.py", CheckSettings(codes=others))
    assert [site.complexity for site in without.analysis.callsites] == [None]
    with_ = check_source(POOL_CODE, "a.py", CheckSettings(codes=frozenset(needing)))
    (site,) = with_.analysis.callsites
    assert site.complexity is not None and site.complexity.resolved
    assert needs_of(others) == needs_of(others) - {Need.COMPLEXITY}


def test_recommend_hook_reaches_only_rules_that_need_it() -> None:
    calls = []

    def hook(site):
        calls.append(site.method)
        return None

    wanting = frozenset(r.code for r in all_rules() if Need.RECOMMENDATION in r.needs)
    assert wanting
    check_source(POOL_CODE, "a.py", CheckSettings(codes=wanting), recommend=hook)
    assert calls and set(calls) == {"map"}
    calls.clear()
    rest = frozenset(r.code for r in all_rules()) - wanting
    check_source(POOL_CODE, "a.py", CheckSettings(codes=rest), recommend=hook)
    assert calls == []


def test_gil_state_comes_from_the_engine_unless_settings_say() -> None:
    from amorsize_lsp.engine.system import gil_enabled

    thread_code = POOL_CODE.replace("ProcessPoolExecutor", "ThreadPoolExecutor").replace(
        "return x * 2", "t = 0\n    for i in range(x):\n        t += i\n    return t"
    )
    default = {f.code for f in check_source(thread_code, "a.py").findings}
    assert ("AMZ006" in default) == gil_enabled()
    forced = check_source(thread_code, "a.py", CheckSettings(gil_enabled=not gil_enabled()))
    assert ("AMZ006" in {f.code for f in forced.findings}) != gil_enabled()


def test_fix_source_applies_safe_fixes_and_rechecks() -> None:
    settings = CheckSettings(min_items=0, target_cores=4)
    before = check_source(POOL_CODE, "a.py", settings)
    safe = [f for f in before.findings if f.fix and f.fix.applies()]
    assert safe
    outcome = fix_source(POOL_CODE, "a.py", settings)
    assert outcome.text != POOL_CODE
    assert sum(outcome.fixed.values()) == len(safe)
    assert not [f for f in outcome.result.findings if f.fix and f.fix.applies()]
    assert check_source(outcome.text, "a.py", settings).findings == outcome.result.findings


def test_unsafe_fixes_apply_only_when_asked() -> None:
    guarded = (
        "from multiprocessing import Pool\n\n"
        "pool = Pool(2)\nprint(pool.map(abs, range(9)))\npool.close()\n"
    )
    settings = CheckSettings(codes=frozenset({"AMZ003"}))
    assert fix_source(guarded, "a.py", settings).text == guarded
    outcome = fix_source(guarded, "a.py", settings, unsafe=True)
    assert 'if __name__ == "__main__":' in outcome.text
    assert outcome.fixed == {"AMZ003": 1}
    assert outcome.result.findings == []


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_cli_and_seam_agree_on_every_example(example: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    rel = example.relative_to(ROOT).as_posix()
    main([rel, "--format", "json"])
    cli = sorted((f["code"], f["line"], f["column"]) for f in json.loads(capsys.readouterr().out))
    from amorsize_lsp.config import resolve_config

    settings = resolve_config(None, [example]).check_settings(example)
    seam = check_source(example.read_bytes(), rel, settings)
    assert sorted((f.code, f.span.line, f.span.column + 1) for f in seam.findings) == cli
