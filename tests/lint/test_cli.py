import json
import re
from pathlib import Path

import pytest
from lint_helpers import BAD_EXECUTOR, CLEAN, UNRELATED, lint, write

from amorsize_lsp.engine.system import gil_enabled

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def test_clean_tree_exits_0_and_says_so(tmp_path):
    write(tmp_path, {"a.py": CLEAN, "b.py": UNRELATED})
    run = lint(cwd=tmp_path)
    assert (run.code, run.out, run.err) == (0, "All checks passed!\n", "")


def test_findings_exit_1_with_ruff_style_lines_and_summary(tmp_path):
    write(tmp_path, {"pkg/bad.py": BAD_EXECUTOR})
    run = lint("pkg", cwd=tmp_path)
    assert run.code == 1
    lines = run.out.splitlines()
    assert re.fullmatch(
        r"pkg/bad\.py:10:21: AMZ001 \[\*\] `executor\.map` on a ProcessPoolExecutor has no "
        r"chunksize, so every item is a separate IPC round trip; pass `chunksize=32`",
        lines[0],
    )
    assert lines[1:] == ["Found 1 problem.", "[*] 1 fixable with `--fix`."]


def test_concise_has_no_summary_and_no_fix_marks(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--format", "concise", "bad.py", cwd=tmp_path)
    assert run.code == 1
    assert run.out.splitlines() == [
        run.out.splitlines()[0],
    ]
    assert run.out.startswith("bad.py:10:21: AMZ001 `executor.map`")


def test_exit_zero(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--exit-zero", "bad.py", cwd=tmp_path)
    assert run.code == 0 and "AMZ001" in run.out


def test_select_and_ignore(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    assert lint("--ignore", "AMZ001", "bad.py", cwd=tmp_path).code == 0
    assert lint("--select", "AMZ002,AMZ003", "bad.py", cwd=tmp_path).code == 0
    assert lint("--select", "AMZ0", "bad.py", cwd=tmp_path).code == 1
    bad = lint("--select", "AMZ01x", "bad.py", cwd=tmp_path)
    assert bad.code == 2 and "--select: unknown rule code `AMZ01x`" in bad.err


def test_usage_error_exits_2(tmp_path):
    run = lint("--format", "xml", cwd=tmp_path)
    assert run.code == 2
    assert "invalid choice" in run.err


def test_noqa_suppresses(tmp_path):
    write(
        tmp_path,
        {
            "a.py": BAD_EXECUTOR.replace(
                "executor.map(work, items))", "executor.map(work, items))  # noqa: AMZ001"
            ),
            "b.py": BAD_EXECUTOR.replace(
                "executor.map(work, items))", "executor.map(work, items))  # noqa: AMZ002"
            ),
        },
    )
    run = lint("--format", "concise", cwd=tmp_path)
    assert [line.split(":")[0] for line in run.out.splitlines()] == ["b.py"]


def test_syntax_error_gets_e999_and_others_are_still_linted(tmp_path):
    write(
        tmp_path,
        {"broken.py": "from multiprocessing import Pool\ndef f(:\n", "bad.py": BAD_EXECUTOR},
    )
    run = lint("--format", "concise", cwd=tmp_path)
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].startswith("bad.py:10:21: AMZ001 ")
    assert re.match(r"broken\.py:2:\d+: E999 ", lines[1])


def test_nothing_analysable_exits_2(tmp_path):
    write(tmp_path, {"broken.py": "from multiprocessing import Pool\ndef f(:\n"})
    (tmp_path / "latin.py").write_bytes(b"from multiprocessing import Pool\nx = '\xff'\n")
    run = lint(cwd=tmp_path)
    assert run.code == 2
    assert "broken.py:2:" in run.err and "E999" in run.err
    assert "latin.py:2:" in run.err and "not valid utf-8" in run.err
    assert "no file could be analysed" in run.err


def test_missing_path_is_an_e999_line(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("bad.py", "nope.py", "--format", "concise", cwd=tmp_path)
    assert run.code == 1
    assert "nope.py:1:1: E999 no such file or directory" in run.out
    assert lint("nope.py", cwd=tmp_path).code == 2


def test_no_python_files_warns_and_exits_0(tmp_path):
    run = lint(cwd=tmp_path)
    assert run.code == 0 and "no Python files found" in run.err


def test_unrelated_files_are_not_parsed(tmp_path):
    # A syntax error in a file the prefilter rules out is not this tool's business.
    write(tmp_path, {"a.py": "def f(:\n", "b.py": CLEAN})
    assert lint(cwd=tmp_path).code == 0


def test_encoding_and_bom_are_kept_by_fix(tmp_path):
    path = tmp_path / "bad.py"
    text = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + BAD_EXECUTOR
    path.write_bytes(text.replace("\n", "\r\n").encode("latin-1"))
    run = lint("--fix", "bad.py", cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    data = path.read_bytes()
    assert b"caf\xe9\r\n" in data and b"chunksize=32" in data
    assert data.count(b"\r\n") == data.count(b"\n")


def test_fix_writes_safe_fixes_only(tmp_path):
    write(
        tmp_path, {"bad.py": BAD_EXECUTOR, "pyproject.toml": "[tool.amorsize]\ntarget-cores = 2\n"}
    )
    source = BAD_EXECUTOR.replace("ProcessPoolExecutor()", "ProcessPoolExecutor(max_workers=8)")
    (tmp_path / "bad.py").write_text(source)
    run = lint("--fix", "bad.py", cwd=tmp_path)
    assert run.code == 1
    fixed = (tmp_path / "bad.py").read_text()
    assert "executor.map(work, items, chunksize=32)" in fixed
    assert "max_workers=8" in fixed  # AMZ005's fix is unsafe
    assert "bad.py:9:" in run.out and "AMZ005" in run.out
    assert "Found 2 problems (1 fixed, 1 remaining)." in run.out
    assert "No fixes available (1 unsafe fix available with `--fix --unsafe-fixes`)." in run.out

    run = lint("--fix", "--unsafe-fixes", "bad.py", cwd=tmp_path)
    assert run.code == 0, run.out
    assert "max_workers=2" in (tmp_path / "bad.py").read_text()
    assert "Found 1 problem (1 fixed, 0 remaining)." in run.out


def test_diff_prints_and_writes_nothing(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--diff", "bad.py", cwd=tmp_path)
    assert run.code == 1
    assert (tmp_path / "bad.py").read_text() == BAD_EXECUTOR
    assert run.out.startswith("--- bad.py\n+++ bad.py\n")
    assert "-        return list(executor.map(work, items))\n" in run.out
    assert "+        return list(executor.map(work, items, chunksize=32))\n" in run.out
    assert "Would fix 1 problem." in run.err
    write(tmp_path, {"ok.py": CLEAN})
    clean = lint("--diff", "ok.py", cwd=tmp_path)
    assert (clean.code, clean.out) == (0, "")


def test_module_guard_fix_needs_unsafe_fixes(tmp_path):
    script = (
        "from multiprocessing import Pool\n\n\n"
        "def square(x):\n    return x * x\n\n\n"
        "with Pool(2) as pool:\n    print(pool.map(square, range(10)))\n"
    )
    write(tmp_path, {"s.py": script})
    assert lint("--fix", "s.py", cwd=tmp_path).code == 1
    assert (tmp_path / "s.py").read_text() == script
    run = lint("--fix", "--unsafe-fixes", "s.py", cwd=tmp_path)
    assert run.code == 0, run.out
    assert (
        (tmp_path / "s.py")
        .read_text()
        .endswith(
            'if __name__ == "__main__":\n    with Pool(2) as pool:\n'
            "        print(pool.map(square, range(10)))\n"
        )
    )


def test_add_noqa(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--add-noqa", "bad.py", cwd=tmp_path)
    assert run.code == 0 and "Added 1 noqa directive." in run.err
    assert "executor.map(work, items))  # noqa: AMZ001\n" in (tmp_path / "bad.py").read_text()
    assert lint("bad.py", cwd=tmp_path).code == 0


def test_explain(tmp_path):
    run = lint("--explain", "AMZ002")
    assert run.code == 0
    assert run.out.startswith("# unpicklable-callable (AMZ002)\n")
    assert "## Why is this bad?" in run.out and "PicklingError" in run.out
    assert lint("--explain", "pool-not-closed").out.startswith("# pool-not-closed (AMZ007)")
    listing = lint("--explain")
    from amorsize_lsp.rules.registry import all_rules

    assert listing.code == 0 and len(listing.out.splitlines()) == len(all_rules())
    unknown = lint("--explain", "AMZ999")
    assert unknown.code == 2 and "unknown rule `AMZ999`" in unknown.err


def test_statistics(tmp_path):
    write(
        tmp_path,
        {"a.py": BAD_EXECUTOR, "b.py": BAD_EXECUTOR, "c.py": "import multiprocessing\nx = Pool(\n"},
    )
    run = lint("--statistics", cwd=tmp_path)
    assert run.code == 1
    assert run.out.splitlines() == [
        "2\tAMZ001\t[*] default-chunksize-ipc",
        "1\tE999\t[ ] analysis-error",
    ]
    data = json.loads(lint("--statistics", "--format", "json", cwd=tmp_path).out)
    assert data[0] == {
        "code": "AMZ001",
        "name": "default-chunksize-ipc",
        "count": 2,
        "fixable": True,
        "fixable_count": 2,
    }


def test_show_callsites_json_and_text(tmp_path):
    write(tmp_path, {"a.py": BAD_EXECUTOR, "b.py": UNRELATED})
    run = lint("--show-callsites", "--format", "json", ".", cwd=tmp_path)
    assert run.code == 0
    (site,) = json.loads(run.out)
    assert site["path"] == "a.py" and site["method"] == "map"
    assert site["executor"] == "concurrent.futures.ProcessPoolExecutor"
    assert (site["line"], site["column"]) == (10, 21)
    assert site["complexity"]["resolved"] is True
    text = lint("--show-callsites", ".", cwd=tmp_path)
    assert text.out.startswith("a.py:10:21: map on concurrent.futures.ProcessPoolExecutor: ")


@pytest.mark.parametrize(
    ("env", "tty", "colored"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
    ],
)
def test_colour_only_on_tty_and_no_color_respected(monkeypatch, env, tty, colored):
    from amorsize_lsp.lint.cli import _use_color

    for key in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    class Stream:
        def isatty(self):
            return tty

    assert _use_color(Stream()) is colored


def test_coloured_text_output(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("bad.py", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[1mbad.py\x1b[0m" in run.out and "\x1b[1m\x1b[31mAMZ001\x1b[0m" in run.out
    json_run = lint("--format", "json", "bad.py", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in json_run.out


def test_output_file(tmp_path):
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--format", "json", "-o", "report.json", "bad.py", cwd=tmp_path)
    assert run.code == 1 and run.out == ""
    assert json.loads((tmp_path / "report.json").read_text())[0]["code"] == "AMZ001"


def test_examples_show_every_rule_and_the_clean_one_is_clean():
    run = lint("--format", "json", str(EXAMPLES))
    assert run.code == 1, run.err
    findings = json.loads(run.out)
    expected = {f"AMZ00{i}" for i in range(1, 8)}
    if not gil_enabled():  # AMZ006 is off on free-threaded builds
        expected.discard("AMZ006")
    assert {f["code"] for f in findings} == expected
    assert not [f for f in findings if f["path"].endswith("good_pipeline.py")]
    assert lint(str(EXAMPLES / "good_pipeline.py")).code == 0


def test_a_fix_that_would_not_parse_is_never_written(tmp_path, monkeypatch):
    from dataclasses import replace

    from amorsize_lsp import check
    from amorsize_lsp.analysis.model import TextEdit
    from amorsize_lsp.rules.model import Fix

    real_check = check.check_module

    def check_with_a_broken_fix(analysis, ctx, codes=None):
        findings = real_check(analysis, ctx, codes)
        broken = []
        for f in findings:
            bad = TextEdit(f.span, "executor.map(work, items, chunksize=")  # unbalanced
            broken.append(replace(f, fix=Fix(f.fix.applicability, f.fix.message, (bad,))))
        return broken

    monkeypatch.setattr(check, "check_module", check_with_a_broken_fix)
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("--fix", "bad.py", cwd=tmp_path)
    assert (tmp_path / "bad.py").read_text() == BAD_EXECUTOR
    assert run.code == 1
    assert "bad.py:10:21: AMZ001 fix not applied: the result would not parse" in run.err
    assert "AMZ001" in run.out and "(0 fixed, 1 remaining)" in run.out


def _stdin(monkeypatch, data: bytes):
    import io as _io

    class Stdin:
        buffer = _io.BytesIO(data)

    monkeypatch.setattr("sys.stdin", Stdin())


def test_stdin_with_a_filename_uses_its_config(tmp_path, monkeypatch):
    write(tmp_path, {"pkg/pyproject.toml": "[tool.amorsize]\nmin-items = 0\n"})
    _stdin(monkeypatch, BAD_EXECUTOR.encode())
    run = lint("--stdin-filename", "pkg/jobs.py", "-", "--format", "concise", cwd=tmp_path)
    assert run.code == 1
    assert run.out.startswith("pkg/jobs.py:10:21: AMZ001 ")
    _stdin(monkeypatch, b"[tool]\n")
    bad_config = tmp_path / "pkg/pyproject.toml"
    bad_config.write_text("[tool.amorsize]\nnope = 1\n")
    _stdin(monkeypatch, BAD_EXECUTOR.encode())
    assert lint("--stdin-filename", "pkg/jobs.py", "-", cwd=tmp_path).code == 2


def test_stdin_fix_prints_the_fixed_source(tmp_path, monkeypatch):
    import contextlib
    import io as _io
    import sys as _sys

    from amorsize_lsp.lint.cli import main

    _stdin(monkeypatch, BAD_EXECUTOR.encode())
    out = _io.BytesIO()

    class Stdout:
        buffer = out

        def write(self, text):
            out.write(text.encode())

        def flush(self):
            pass

    err = _io.StringIO()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_sys, "stdout", Stdout())
    with contextlib.redirect_stderr(err):
        code = main(["--fix", "-"])
    assert code == 0
    assert out.getvalue().decode() == BAD_EXECUTOR.replace(
        "executor.map(work, items)", "executor.map(work, items, chunksize=32)"
    )
    assert "(1 fixed, 0 remaining)" in err.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_internal_error_exits_2_with_a_report(tmp_path, monkeypatch):
    from amorsize_lsp.lint import cli

    def explode(*args, **kwargs):
        raise RuntimeError("discovery broke")

    monkeypatch.setattr(cli, "lint", explode)
    write(tmp_path, {"bad.py": BAD_EXECUTOR})
    run = lint("bad.py", cwd=tmp_path)
    assert run.code == 2
    assert "internal error: RuntimeError: discovery broke; please report this" in run.err
    assert "Traceback" in run.err
