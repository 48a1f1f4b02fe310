"""Read a workspace module's source: the bytecode analysis's only file access."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

#: Workspace modules larger than this are not read for an imported function.
MAX_MODULE_BYTES = 5_000_000


def read_workspace_module(module: str, search_path: Sequence[str]) -> tuple[str, str] | None:
    """The analysis's only file access: ``(path, text)`` of a workspace module, or None."""
    rel = os.path.join(*module.split("."))
    for root in search_path:
        for candidate in (rel + ".py", os.path.join(rel, "__init__.py")):
            path = os.path.join(root, candidate)
            if os.path.isfile(path):
                if os.path.getsize(path) > MAX_MODULE_BYTES:
                    raise ValueError(f"{path} is larger than {MAX_MODULE_BYTES} bytes")
                with open(path, "rb") as fh:
                    data = fh.read()
                try:
                    return path, importlib.util.decode_source(data)
                except LookupError as exc:  # a coding cookie naming rot13, base64, ...
                    raise ValueError(
                        f"{path} declares a coding that cannot decode text ({exc});"
                        " declare utf-8 instead"
                    ) from None
    return None
