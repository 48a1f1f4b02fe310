"""Which files to lint: walk the given paths like ruff does.

Directories are walked recursively for ``*.py`` and ``*.pyi``, skipping the usual
tool and environment directories (``.venv``, ``build``, ``dist``, ``__pycache__``,
...), paths matched by ``.gitignore`` files (of the walked directories and of their
parents up to the repository root) and the configuration's ``exclude`` patterns.
Files named explicitly are always linted, unless ``force_exclude`` is set (what
pre-commit hooks want, since pre-commit passes every changed file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from amorsize_lsp.config import Config, relative_posix

if TYPE_CHECKING:
    import pathspec

DEFAULT_EXCLUDES = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".git",
        ".git-rewrite",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pants.d",
        ".pytest_cache",
        ".pytype",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
    }
)
PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass(frozen=True, slots=True)
class Missing:
    """A path given on the command line that does not exist."""

    path: Path


class _Ignores:
    """``.gitignore`` files in effect, deepest last; deeper files take precedence."""

    def __init__(self, specs: list[tuple[Path, pathspec.PathSpec]]) -> None:
        self.specs = specs

    def with_dir(self, directory: Path) -> _Ignores:
        spec = _read_gitignore(directory)
        return _Ignores([*self.specs, (directory, spec)]) if spec else self

    def named_explicitly(self, root: Path) -> _Ignores:
        """Drop the patterns that ignore ``root`` itself: a directory the user names is linted.

        As in ruff (and git's own walk), ignore rules are checked for each entry
        below the starting point, so ``/versions`` in a parent ``.gitignore`` does not
        hide ``versions/3.11/lib`` when that directory is passed on the command line.
        """
        import pathspec

        kept = []
        for base, spec in self.specs:
            try:
                parts = root.relative_to(base).parts
            except ValueError:
                continue
            prefixes = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
            patterns = [
                pattern
                for pattern in spec.patterns
                if not (pattern.include and any(pattern.match_file(p) for p in prefixes))
            ]
            if patterns:
                kept.append((base, pathspec.GitIgnoreSpec(patterns)))
        return _Ignores(kept)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in reversed(self.specs):
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            result = spec.check_file(rel + "/" if is_dir else rel)
            if result.include is not None:
                return result.include
        return False


def _read_gitignore(directory: Path) -> pathspec.PathSpec | None:
    try:
        text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    import pathspec  # only where a .gitignore exists: keeps the CLI's start-up short

    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())


def _ancestor_ignores(start: Path) -> _Ignores:
    """``.gitignore`` files from the repository root (the dir with ``.git``) to ``start``."""
    start = start.absolute()
    chain: list[Path] = []
    for directory in (start, *start.parents):
        chain.append(directory)
        if (directory / ".git").exists():
            break
    else:
        chain = [start]
    ignores = _Ignores([])
    for directory in reversed(chain[1:]):
        ignores = ignores.with_dir(directory)
    return ignores


class Discovery:
    """Expands command-line paths into the files to lint."""

    def __init__(self, config: Config, *, force_exclude: bool = False) -> None:
        self.config = config
        self.force_exclude = force_exclude
        self._exclude: pathspec.PathSpec | None = None
        if config.exclude:
            import pathspec

            self._exclude = pathspec.PathSpec.from_lines("gitignore", config.exclude)

    def _excluded(self, path: Path, is_dir: bool) -> bool:
        if path.name in DEFAULT_EXCLUDES and is_dir:
            return True
        if self._exclude is None:
            return False
        rel = relative_posix(path, self.config.root)
        return self._exclude.match_file(rel + "/" if is_dir else rel)

    def files(self, paths: Iterable[Path]) -> Iterator[Path | Missing]:
        """Files to lint in a stable order, and :class:`Missing` for bad arguments."""
        seen: set[Path] = set()
        for path in paths:
            if not path.exists():
                yield Missing(path)
                continue
            if path.is_dir():
                for found in self._walk(path):
                    key = found.absolute()
                    if key not in seen:
                        seen.add(key)
                        yield found
            else:
                key = path.absolute()
                if key in seen:
                    continue
                if self.force_exclude and self._force_excluded(path):
                    continue
                seen.add(key)
                yield path

    def _force_excluded(self, path: Path) -> bool:
        """Whether a file named explicitly would be skipped by a walk from the project root."""
        absolute = path.absolute()
        if self._excluded(path, False):
            return True
        for root in (self.config.root.absolute(), Path.cwd()):
            try:
                relative_dirs = absolute.parent.relative_to(root).parts
            except ValueError:
                continue
            if any(part in DEFAULT_EXCLUDES for part in relative_dirs):
                return True
            break
        directory = absolute.parent
        return _ancestor_ignores(directory).with_dir(directory).ignored(absolute, False)

    def _walk(self, root: Path) -> Iterator[Path]:
        ignores = _ancestor_ignores(root).named_explicitly(root.absolute())
        stack: list[tuple[Path, _Ignores]] = [(root, ignores)]
        while stack:
            directory, inherited = stack.pop()
            here = inherited.with_dir(directory.absolute())
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            subdirs: list[Path] = []
            for entry in entries:
                path = Path(directory, entry.name)
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if self._excluded(path, True) or here.ignored(path.absolute(), True):
                        continue
                    subdirs.append(path)
                elif entry.name.endswith(PYTHON_SUFFIXES) and entry.is_file():
                    if self._excluded(path, False) or here.ignored(path.absolute(), False):
                        continue
                    yield path
            stack.extend((d, here) for d in reversed(subdirs))
