"""The real pre-commit, installing this repository as a hook into a scratch git repo.

Builds the hook's virtualenv from this checkout (``pre-commit try-repo``), which
needs PyPI for the runtime dependencies: about a minute. Runs in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lint_helpers import BAD_EXECUTOR

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.precommit,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
            "GIT_AUTHOR_NAME": "amorsize test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "amorsize test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(tmp_path / "home"),
            "NO_COLOR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    # Let pip reuse the developer's wheel cache even though HOME moved.
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    return env


def _run(args, cwd, env, timeout=600):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _pre_commit(hook: str, cwd: Path, env) -> subprocess.CompletedProcess:
    return _run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(REPO),
            hook,
            "--all-files",
            "--verbose",
            "--color",
            "never",
        ],
        cwd,
        env,
    )


def test_hooks_fail_on_a_bad_file_and_pass_after_the_fix_hook(tmp_path):
    (tmp_path / "home").mkdir()
    project = tmp_path / "project"
    project.mkdir()
    env = _env(tmp_path)
    assert _run(["git", "init", "-q", "-b", "main"], project, env).returncode == 0
    (project / "jobs.py").write_text(BAD_EXECUTOR)
    (project / "README.txt").write_text("not python\n")
    assert _run(["git", "add", "."], project, env).returncode == 0
    assert _run(["git", "commit", "-q", "-m", "init"], project, env).returncode == 0

    check = _pre_commit("amorsize-lint", project, env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "jobs.py:10:21: AMZ001" in check.stdout
    assert "Failed" in check.stdout

    fix = _pre_commit("amorsize-lint-fix", project, env)
    # pre-commit fails a hook that modified files, as with any fixer.
    assert fix.returncode == 1, fix.stdout + fix.stderr
    assert "files were modified by this hook" in fix.stdout
    fixed = (project / "jobs.py").read_text()
    assert "executor.map(work, range(4096), chunksize=128)" in fixed

    again = _pre_commit("amorsize-lint", project, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Passed" in again.stdout
