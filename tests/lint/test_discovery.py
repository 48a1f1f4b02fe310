from pathlib import Path

from lint_helpers import write

from amorsize_lsp.config import Config
from amorsize_lsp.lint.discovery import Discovery, Missing


def found(root: Path, paths=None, exclude=(), force=False):
    config = Config(root=root, exclude=list(exclude))
    result = []
    for item in Discovery(config, force_exclude=force).files(paths or [root]):
        if isinstance(item, Missing):
            result.append(("missing", item.path.name))
        else:
            result.append(item.relative_to(root).as_posix())
    return sorted(result, key=str)


def test_walks_python_files_and_skips_default_excludes(tmp_path):
    write(
        tmp_path,
        {
            "a.py": "",
            "stubs/b.pyi": "",
            "notes.txt": "",
            "pkg/c.py": "",
            ".venv/lib/d.py": "",
            "build/e.py": "",
            "dist/f.py": "",
            "pkg/__pycache__/g.py": "",
            "node_modules/h.py": "",
        },
    )
    assert found(tmp_path) == ["a.py", "pkg/c.py", "stubs/b.pyi"]


def test_honours_gitignore_files_including_parents_and_negation(tmp_path):
    (tmp_path / ".git").mkdir()
    write(
        tmp_path,
        {
            ".gitignore": "generated/\n*_pb2.py\n",
            "src/.gitignore": "scratch.py\n!keep_pb2.py\n",
            "src/a.py": "",
            "src/scratch.py": "",
            "src/x_pb2.py": "",
            "src/keep_pb2.py": "",
            "src/generated/b.py": "",
            "other/scratch.py": "",
        },
    )
    assert found(tmp_path) == ["other/scratch.py", "src/a.py", "src/keep_pb2.py"]
    # Walking a subdirectory still applies the repository root's .gitignore.
    assert found(tmp_path, [tmp_path / "src"]) == ["src/a.py", "src/keep_pb2.py"]


def test_config_exclude_patterns(tmp_path):
    write(tmp_path, {"a.py": "", "migrations/m.py": "", "pkg/migrations/n.py": "", "b_test.py": ""})
    assert found(tmp_path, exclude=["migrations/", "*_test.py"]) == ["a.py"]


def test_explicit_files_are_linted_unless_force_exclude(tmp_path):
    write(tmp_path, {"build/gen.py": "", "script": "", "ok.py": ""})
    explicit = [tmp_path / "build/gen.py", tmp_path / "script", tmp_path / "ok.py"]
    assert found(tmp_path, explicit) == ["build/gen.py", "ok.py", "script"]
    assert found(tmp_path, explicit, force=True) == ["ok.py", "script"]
    assert found(tmp_path, [tmp_path / "ok.py"], exclude=["ok.py"], force=True) == []


def test_missing_paths_are_reported(tmp_path):
    assert found(tmp_path, [tmp_path / "nope.py"]) == [("missing", "nope.py")]


def test_each_file_once(tmp_path):
    write(tmp_path, {"a.py": ""})
    assert found(tmp_path, [tmp_path, tmp_path / "a.py"]) == ["a.py"]


def test_a_directory_named_explicitly_is_walked_even_if_a_parent_ignores_it(tmp_path):
    # Like a pyenv checkout: its .gitignore lists /versions, yet linting the stdlib
    # under versions/ must see the files (ruff does the same).
    (tmp_path / ".git").mkdir()
    write(
        tmp_path,
        {
            ".gitignore": "/versions\n*.tmp.py\n",
            "versions/3.11/lib/os.py": "",
            "versions/3.11/lib/x.tmp.py": "",
        },
    )
    assert found(tmp_path, [tmp_path / "versions/3.11"]) == ["versions/3.11/lib/os.py"]
    assert found(tmp_path) == []


def test_force_exclude_looks_only_below_the_project_root(tmp_path):
    # The project itself may live under a directory called "build".
    root = tmp_path / "build" / "proj"
    write(root, {"a.py": "", ".venv/b.py": "", "gen/c.py": "", ".gitignore": "gen/\n"})
    (root / ".git").mkdir()
    explicit = [root / "a.py", root / ".venv/b.py", root / "gen/c.py"]
    assert found(root, explicit, force=True) == ["a.py"]
