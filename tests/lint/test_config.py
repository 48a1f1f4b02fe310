from pathlib import Path

import pytest
from lint_helpers import BAD_EXECUTOR, lint, write

from amorsize_lsp.config import (
    Config,
    ConfigError,
    find_config_file,
    load_config,
    resolve_config,
    validate_selectors,
)
from amorsize_lsp.rules.registry import all_rules


def test_nearest_pyproject_with_a_tool_table(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.amorsize]\nmin-items = 7\n", "pkg/sub/x.py": ""})
    # A pyproject.toml without [tool.amorsize] in between is skipped.
    write(tmp_path, {"pkg/pyproject.toml": "[project]\nname = 'p'\n"})
    found = find_config_file(tmp_path / "pkg/sub")
    assert found == tmp_path / "pyproject.toml"
    assert load_config(found).min_items == 7


def test_amorsize_toml_wins_in_the_same_directory(tmp_path):
    write(
        tmp_path,
        {
            "pyproject.toml": "[tool.amorsize]\ntarget-cores = 2\n",
            "amorsize.toml": "target-cores = 16\n",
        },
    )
    config = resolve_config(None, [tmp_path])
    assert config.target_cores == 16
    assert config.source == tmp_path / "amorsize.toml"


def test_all_keys_parse(tmp_path):
    write(
        tmp_path,
        {
            "pyproject.toml": """
            [tool.amorsize]
            select = ["AMZ00"]
            ignore = ["AMZ007"]
            exclude = ["generated/"]
            target-cores = 12
            min-items = 100
            [tool.amorsize.per-file-ignores]
            "tests/*" = ["AMZ003", "AMZ007"]
            """
        },
    )
    config = load_config(tmp_path / "pyproject.toml")
    assert config.selected_codes() == frozenset({f"AMZ00{i}" for i in range(1, 7)})
    assert config.selected_codes(["AMZ001"]) == frozenset({"AMZ001"})
    assert config.selected_codes((), ["AMZ00"]) == frozenset()
    assert config.ignored_for(tmp_path / "tests/test_x.py") == {"AMZ003", "AMZ007"}
    assert config.ignored_for(tmp_path / "src/x.py") == frozenset()
    assert (config.target_cores, config.min_items, config.exclude) == (12, 100, ["generated/"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("chunk-size = 3", "unknown key `chunk-size`"),
        ("min_items = 3", "did you mean `min-items`?"),
        ('select = ["AMZ999"]', "select: unknown rule code `AMZ999`"),
        ('ignore = "AMZ001"', "ignore: expected a list of strings"),
        ("target-cores = 0", "target-cores: expected a positive integer, got 0"),
        ('target-cores = "8"', "target-cores: expected a positive integer, got '8'"),
        ("min-items = -1", "min-items: expected a non-negative integer"),
        ('per-file-ignores = {"a.py" = ["XYZ1"]}', 'per-file-ignores "a.py": unknown rule code'),
        ("exclude = [1]", "exclude: expected a list of strings"),
    ],
)
def test_bad_configuration_names_file_and_key(tmp_path, body, message):
    write(tmp_path, {"pyproject.toml": f"[tool.amorsize]\n{body}\n"})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "pyproject.toml")
    text = str(info.value)
    assert str(tmp_path / "pyproject.toml") in text
    assert message in text


def test_invalid_toml_is_reported(tmp_path):
    write(tmp_path, {"amorsize.toml": "target-cores = \n"})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path / "amorsize.toml")


def test_cli_selectors_are_validated():
    assert validate_selectors(["AMZ001,amz002", "AMZ00"], "--select") == [
        "AMZ001",
        "AMZ002",
        "AMZ00",
    ]
    with pytest.raises(ConfigError, match="--ignore: unknown rule code `F401`"):
        validate_selectors(["F401"], "--ignore")


def test_defaults_without_a_file(tmp_path):
    config = resolve_config(None, [tmp_path])
    assert isinstance(config, Config) and config.source is None
    assert config.selected_codes() == {rule.code for rule in all_rules()}


def test_bad_config_exits_2_with_a_message(tmp_path):
    write(
        tmp_path, {"pyproject.toml": "[tool.amorsize]\ntarget-cores = -3\n", "a.py": BAD_EXECUTOR}
    )
    run = lint("a.py", cwd=tmp_path)
    assert run.code == 2
    assert "pyproject.toml: [tool.amorsize] target-cores: expected a positive integer" in run.err
    assert run.out == ""


def test_explicit_config_path(tmp_path):
    write(
        tmp_path,
        {"conf/custom.toml": "[tool.amorsize]\nignore = ['AMZ001']\n", "a.py": BAD_EXECUTOR},
    )
    assert lint("a.py", cwd=tmp_path).code == 1
    assert lint("--config", "conf/custom.toml", "a.py", cwd=tmp_path).code == 0
    missing = lint("--config", "nope.toml", "a.py", cwd=tmp_path)
    assert missing.code == 2 and "--config nope.toml: no such file" in missing.err


def test_per_file_ignores_apply(tmp_path):
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.amorsize.per-file-ignores]\n"legacy/*" = ["AMZ001"]\n',
            "legacy/a.py": BAD_EXECUTOR,
            "new/a.py": BAD_EXECUTOR,
        },
    )
    run = lint(".", "--format", "concise", cwd=tmp_path)
    assert run.code == 1
    assert run.out.splitlines() == [
        line for line in run.out.splitlines() if line.startswith("new/a.py")
    ]
    assert Path(tmp_path / "legacy/a.py").exists()


CRUNCH = "def crunch(n):\n    t = 0\n    for i in range(n):\n        t += i * i\n    return t\n"
RUN = (
    "from concurrent.futures import ThreadPoolExecutor\n"
    "from proj.util import crunch\n\n"
    "def main(xs):\n"
    "    with ThreadPoolExecutor(4) as ex:\n"
    "        return list(ex.map(crunch, xs))\n"
)


@pytest.mark.parametrize(
    ("layout", "config"),
    [
        ({"src/proj/__init__.py": "", "src/proj/util.py": CRUNCH, "src/proj/run.py": RUN}, ""),
        ({"proj/__init__.py": "", "proj/util.py": CRUNCH, "proj/run.py": RUN}, ""),
        (
            {"lib/proj/__init__.py": "", "lib/proj/util.py": CRUNCH, "lib/proj/run.py": RUN},
            'src = ["lib"]\n',
        ),
    ],
    ids=["src-layout", "flat-layout", "src-setting"],
)
def test_imported_functions_resolve_wherever_the_linter_runs(tmp_path, layout, config):
    from amorsize_lsp.engine.system import gil_enabled

    project = tmp_path / "project"
    write(project, {"pyproject.toml": f"[tool.amorsize]\n{config}", **layout})
    (run_py,) = [project / name for name in layout if name.endswith("run.py")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (project, elsewhere):
        run = lint("--select", "AMZ006", "--format", "concise", str(run_py), cwd=cwd)
        assert ("AMZ006" in run.out) == gil_enabled(), (cwd, run.out, run.err)
    # Without the import resolving (the module is missing), nothing is reported.
    (project / next(n for n in layout if n.endswith("util.py"))).unlink()
    run = lint("--select", "AMZ006", "--format", "concise", str(run_py), cwd=elsewhere)
    assert "AMZ006" not in run.out
