"""The server's settings: the pinned keys, their defaults, and reading them leniently.

The keys are pinned (the VS Code extension and ``docs/editors.md`` use the same ones).
A client may send them nested (``{"sampling": {"enabled": true}}``), dotted
(``{"sampling.enabled": true}``) or under an ``amorsize`` section; every source
(``initializationOptions``, ``workspace/configuration``, ``didChangeConfiguration``)
goes through :func:`parse_settings`. A wrong-typed value is ignored with a message,
never fatal: the editor keeps working with the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

#: The longest debounce the issue allows.
MAX_DEBOUNCE_MS = 300
DEFAULT_DEBOUNCE_MS = 150
LOG_LEVELS = ("error", "warning", "info", "debug")


@dataclass(frozen=True, slots=True)
class Settings:
    """One workspace folder's settings (defaults are the safe ones)."""

    trusted: bool = False
    sampling_enabled: bool = False
    sampling_budget_s: float = 2.0
    debounce_ms: int = DEFAULT_DEBOUNCE_MS
    lint_select: tuple[str, ...] = ()
    lint_ignore: tuple[str, ...] = ()
    inlay_hints_enabled: bool = True
    interpreter: str | None = None
    daemon_auto_start: bool = True
    log_level: str = "warning"
    #: Messages about values that were ignored (shown once, in the log).
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def may_sample(self) -> bool:
        return self.trusted and self.sampling_enabled


#: Pinned key -> (field, expected type).
KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "trusted": ("trusted", bool),
    "sampling.enabled": ("sampling_enabled", bool),
    "sampling.budgetSeconds": ("sampling_budget_s", (int, float)),
    "diagnostics.debounceMs": ("debounce_ms", int),
    "lint.select": ("lint_select", list),
    "lint.ignore": ("lint_ignore", list),
    "inlayHints.enabled": ("inlay_hints_enabled", bool),
    "interpreter": ("interpreter", str),
    "daemon.autoStart": ("daemon_auto_start", bool),
    "logLevel": ("log_level", str),
}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; dotted keys pass through."""
    out: dict[str, Any] = {}
    if not isinstance(value, Mapping):
        return out
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and name not in KEYS:
            out.update(flatten(item, name + "."))
        else:
            out[name] = item
    return out


def parse_settings(raw: Any, base: Settings | None = None) -> Settings:
    """``base`` updated with the pinned keys found in ``raw`` (other keys are ignored)."""
    base = base or Settings()
    flat = flatten(raw)
    # Accept the section name as a prefix: {"amorsize": {...}} or "amorsize.trusted".
    flat.update(
        {k[len("amorsize.") :]: v for k, v in list(flat.items()) if k.startswith("amorsize.")}
    )
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, (name, kind) in KEYS.items():
        if key not in flat or flat[key] is None:
            continue
        value = flat[key]
        if kind is list and value == {}:  # Lua cannot tell an empty list from an empty map
            value = []
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is bool:
            ok = isinstance(value, bool)
        if not ok:
            problems.append(f"setting amorsize.{key}: expected {_kind(kind)}, got {value!r}")
            continue
        if kind is list:
            if not all(isinstance(v, str) for v in value):
                problems.append(f"setting amorsize.{key}: expected a list of rule codes")
                continue
            value = tuple(value)
        if key == "diagnostics.debounceMs" and not 0 <= value <= MAX_DEBOUNCE_MS:
            problems.append(
                f"setting amorsize.{key}: {value} is outside 0..{MAX_DEBOUNCE_MS}; clamped"
            )
            value = min(max(value, 0), MAX_DEBOUNCE_MS)
        if key == "sampling.budgetSeconds" and not 0 < value <= 60:
            problems.append(f"setting amorsize.{key}: {value} is outside (0, 60]; ignored")
            continue
        if key == "logLevel" and value.lower() not in LOG_LEVELS:
            problems.append(
                f"setting amorsize.{key}: {value!r} is not one of {', '.join(LOG_LEVELS)}"
            )
            continue
        if key == "interpreter" and not value.strip():
            value = None
        changes[name] = value.lower() if key == "logLevel" else value
    return replace(base, **changes, problems=tuple(problems))


def to_json(settings: Settings) -> dict[str, Any]:
    """The settings under their pinned keys (for ``amorsize.showStatus``)."""
    out: dict[str, Any] = {}
    names = {f.name for f in fields(settings)}
    for key, (name, _) in KEYS.items():
        if name in names:
            value = getattr(settings, name)
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _kind(kind: type | tuple[type, ...]) -> str:
    if kind is bool:
        return "true or false"
    if kind is list:
        return "a list of strings"
    if kind is str:
        return "a string"
    if kind is int:
        return "an integer"
    return "a number"
