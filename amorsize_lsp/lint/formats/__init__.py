"""Output formats for findings: text, concise, json, sarif, github."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from .common import E999, OutputOptions
from .github import write_github
from .json_format import write_json
from .sarif import write_sarif
from .text import write_concise, write_text

FORMATS: dict[str, Callable[[object, TextIO, OutputOptions], None]] = {
    "text": write_text,
    "concise": write_concise,
    "json": write_json,
    "sarif": write_sarif,
    "github": write_github,
}

__all__ = ["E999", "FORMATS", "OutputOptions"]
