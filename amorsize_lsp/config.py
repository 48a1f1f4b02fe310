"""``[tool.amorsize]`` configuration: finding it, validating it, resolving rule selection.

Shared by every client (``amorsize-lint``, the language server), so a project's
settings mean the same wherever its files are checked; :meth:`Config.check_settings`
turns them into the :class:`~amorsize_lsp.check.CheckSettings` of one file.

Read from the nearest ``amorsize.toml`` (keys at top level or under
``[tool.amorsize]``) or ``pyproject.toml`` with a ``[tool.amorsize]`` table, searching
upward from the first linted path; ``--config PATH`` names the file explicitly. In
one directory, ``amorsize.toml`` wins over ``pyproject.toml``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amorsize_lsp.check import CheckSettings
from amorsize_lsp.rules.model import DEFAULT_MIN_ITEMS
from amorsize_lsp.rules.registry import codes_matching

if TYPE_CHECKING:
    import pathspec

KNOWN_KEYS = (
    "select",
    "ignore",
    "per-file-ignores",
    "exclude",
    "target-cores",
    "min-items",
    "src",
)
#: Files or folders that mark a project's root (where its imports start).
ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


class ConfigError(Exception):
    """A configuration file or option is invalid; the message names file and key."""


@dataclass(slots=True)
class Config:
    """Validated settings; ``root`` is the directory patterns are relative to."""

    root: Path
    source: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    target_cores: int | None = None
    min_items: int = DEFAULT_MIN_ITEMS
    #: Source roots (like ruff's ``src``), relative to ``root``: where imports resolve.
    src: list[str] = field(default_factory=list)
    _per_file_specs: list[tuple[pathspec.PathSpec, frozenset[str]]] | None = None

    def selected_codes(self, cli_select: Iterable[str] = (), cli_ignore: Iterable[str] = ()):
        """Enabled rule codes: CLI ``--select`` replaces the file's, ``--ignore`` adds."""
        cli_select = list(cli_select)
        selectors = cli_select or self.select or ["ALL"]
        codes: set[str] = set()
        for sel in selectors:
            codes.update(codes_matching(sel))
        for sel in [*self.ignore, *cli_ignore]:
            codes.difference_update(codes_matching(sel))
        return frozenset(codes)

    def check_settings(
        self,
        path: Path | None = None,
        select: Iterable[str] = (),
        ignore: Iterable[str] = (),
    ) -> CheckSettings:
        """The settings to check ``path`` with (per-file ignores applied when given).

        ``select`` and ``ignore`` come from the client (command line, editor settings).
        """
        codes = self.selected_codes(select, ignore)
        if path is not None:
            codes -= self.ignored_for(path)
        origin = f"target-cores in {self.source.name if self.source else 'configuration'}"
        base = tuple(str((self.root / s).absolute()) for s in self.src)
        return CheckSettings(
            codes=codes,
            target_cores=self.target_cores,
            target_cores_origin=origin,
            min_items=self.min_items,
            search_path=file_search_path(path, base) if path is not None else base,
        )

    def ignored_for(self, path: Path) -> frozenset[str]:
        """Codes that ``per-file-ignores`` turns off for ``path``."""
        if not self.per_file_ignores:
            return frozenset()
        if self._per_file_specs is None:
            import pathspec  # only for per-file-ignores: keeps the CLI's start-up short

            self._per_file_specs = [
                (
                    pathspec.PathSpec.from_lines("gitignore", [pattern]),
                    frozenset(c for sel in codes for c in codes_matching(sel)),
                )
                for pattern, codes in self.per_file_ignores.items()
            ]
        rel = relative_posix(path, self.root)
        ignored: set[str] = set()
        for spec, codes in self._per_file_specs:
            if spec.match_file(rel):
                ignored |= codes
        return frozenset(ignored)


def file_search_path(path: Path, base: Sequence[str] = ()) -> tuple[str, ...]:
    """Where the modules a file imports are found, wherever the linter runs from.

    ``base`` (the configured ``src`` roots) first, then the folder above the file's
    top-level package, the project root (nearest folder with a ``pyproject.toml``,
    ``setup.cfg``, ``setup.py`` or ``.git``) and its ``src/`` folder.
    """
    folder = path.absolute().parent
    found = [*base, str(_package_root(folder))]
    root = _project_root(folder)
    if root is not None:
        found.append(str(root))
        if (root / "src").is_dir():
            found.append(str(root / "src"))
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=4096)
def _package_root(folder: Path) -> Path:
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


@lru_cache(maxsize=4096)
def _project_root(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return None


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or absolute when outside it."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(root.absolute()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _table(path: Path, data: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The amorsize settings in a parsed file, and how to name their table in messages."""
    tool = data.get("tool")
    if isinstance(tool, dict) and "amorsize" in tool:
        table = tool["amorsize"]
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.amorsize] must be a table")
        return table, "[tool.amorsize]"
    if path.name == "amorsize.toml":
        return {k: v for k, v in data.items() if k != "tool"}, "amorsize.toml"
    return None, ""


def find_config_file(start: Path) -> Path | None:
    """The nearest ``amorsize.toml``, or ``pyproject.toml`` with ``[tool.amorsize]``."""
    directory = start.absolute()
    if not directory.is_dir():
        directory = directory.parent
    for candidate_dir in (directory, *directory.parents):
        amorsize_toml = candidate_dir / "amorsize.toml"
        if amorsize_toml.is_file():
            return amorsize_toml
        pyproject = candidate_dir / "pyproject.toml"
        try:
            stat = pyproject.stat()
        except OSError:
            continue
        if _declares_amorsize(pyproject, stat.st_mtime_ns, stat.st_size):
            return pyproject
    return None


@lru_cache(maxsize=64)
def _declares_amorsize(pyproject: Path, mtime_ns: int, size: int) -> bool:
    """Whether ``pyproject`` has a ``[tool.amorsize]`` table; memoised by its stat,
    because the language server looks for the configuration on every analysis."""
    if not pyproject.is_file():
        return False
    try:
        data = _load_toml(pyproject)
    except ConfigError:
        # A broken pyproject.toml only matters if it is ours; report it then.
        if b"[tool.amorsize" in pyproject.read_bytes():
            raise
        return False
    return isinstance(data.get("tool"), dict) and "amorsize" in data["tool"]


def load_config(path: Path) -> Config:
    """Read and validate the amorsize settings in ``path``."""
    data = _load_toml(path)
    table, where = _table(path, data)
    if table is None:
        if path.name == "pyproject.toml":
            return Config(root=path.absolute().parent, source=path)
        raise ConfigError(f"{path}: no [tool.amorsize] table")
    return parse_settings(table, path, where)


def parse_settings(table: Mapping[str, Any], path: Path, where: str) -> Config:
    """Validate a settings table; every error names the file and the key."""
    config = Config(root=path.absolute().parent, source=path)

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {where} {key}: {problem}")

    for key, value in table.items():
        if key not in KNOWN_KEYS:
            hint = ""
            underscored = key.replace("_", "-")
            if underscored in KNOWN_KEYS:
                hint = f" (did you mean `{underscored}`?)"
            raise ConfigError(
                f"{path}: {where}: unknown key `{key}`{hint}; known keys: {', '.join(KNOWN_KEYS)}"
            )
        if key in ("select", "ignore"):
            codes = _codes(value, lambda p, k=key: fail(k, p))
            if key == "select":
                config.select = codes
            else:
                config.ignore = codes
        elif key == "src":
            config.src = _strings(value, lambda p: fail("src", p))
        elif key == "exclude":
            config.exclude = _strings(value, lambda p: fail("exclude", p))
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise fail(key, 'expected a table of glob = ["CODE", ...]')
            for pattern, codes in value.items():
                config.per_file_ignores[pattern] = _codes(
                    codes, lambda p, pat=pattern: fail(f'per-file-ignores "{pat}"', p)
                )
        elif key == "target-cores":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(key, f"expected a positive integer, got {value!r}")
            config.target_cores = value
        elif key == "min-items":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(key, f"expected a non-negative integer, got {value!r}")
            config.min_items = value
    return config


def _strings(value: Any, fail) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise fail(f"expected a list of strings, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise fail(f"expected a list of strings, got {item!r} in the list")
    return list(value)


def _codes(value: Any, fail) -> list[str]:
    codes = _strings(value, fail)
    for code in codes:
        if not codes_matching(code):
            raise fail(f"unknown rule code `{code}`; run `amorsize-lint --explain` for the list")
    return [c.strip().upper() for c in codes]


def validate_selectors(selectors: Iterable[str], option: str) -> list[str]:
    """Check ``--select``/``--ignore`` values given on the command line."""
    result: list[str] = []
    for item in selectors:
        for code in (c.strip() for c in item.split(",")):
            if not code:
                continue
            if not codes_matching(code):
                raise ConfigError(
                    f"{option}: unknown rule code `{code}`; "
                    "run `amorsize-lint --explain` for the list"
                )
            result.append(code.upper())
    return result


def resolve_config(explicit: Path | None, paths: Iterable[Path]) -> Config:
    """The configuration for this run: ``--config`` or the nearest file, else defaults."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return load_config(explicit)
    first = next(iter(paths), Path("."))
    start = first.absolute()
    while not start.exists() and start != start.parent:
        start = start.parent
    found = find_config_file(start)
    if found is None:
        return Config(root=Path.cwd())
    return load_config(found)
