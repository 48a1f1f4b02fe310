"""JSON-RPC 2.0 framed as newline-delimited JSON: one UTF-8 object (or batch) per line.

The framing is pinned because other tools talk to the socket directly (``nc -U``
works). This module is pure: it turns bytes into requests and results into bytes;
the server and the client share it so both sides agree on every error code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

JSONRPC = "2.0"
#: A line longer than this is refused: the connection is answered and closed.
MAX_MESSAGE_BYTES = 1 << 20

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: Application errors (JSON-RPC reserves -32000..-32099 for the server).
UNKNOWN_JOB = -32001
PERMISSION_DENIED = -32002
MESSAGE_TOO_LARGE = -32003
SHUTTING_DOWN = -32004

PROGRESS = "$/amorsize/progress"


class RpcError(Exception):
    """An error to send back as a JSON-RPC error object; the message is one precise line."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


@dataclass(slots=True)
class Request:
    """One call. ``id`` is None for a notification (no reply is sent)."""

    method: str
    params: Any
    id: Any
    is_notification: bool


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON: send null rather than fail the whole reply."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def encode(message: Any) -> bytes:
    """One NDJSON line. Compact, UTF-8, never containing a raw newline."""
    try:
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_clean(message), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def result(id_: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id_, "result": value}


def error(id_: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "id": id_, "error": err.to_json()}


def notification(method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "method": method, "params": params}


def request(method: str, params: Any = None, id_: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": JSONRPC, "method": method}
    if params is not None:
        msg["params"] = params
    if id_ is not None:
        msg["id"] = id_
    return msg


def decode_line(line: bytes) -> Any:
    """Parse one line into a JSON value; RpcError(PARSE_ERROR) when it is not JSON."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RpcError(PARSE_ERROR, f"parse error: byte {e.start} is not valid UTF-8") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise RpcError(PARSE_ERROR, f"parse error: {e}") from None


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def parse_request(obj: Any) -> Request:
    """Check one decoded call against JSON-RPC 2.0; RpcError(INVALID_REQUEST) when wrong."""
    if not isinstance(obj, dict):
        raise RpcError(
            INVALID_REQUEST, f"invalid request: expected an object, got {type(obj).__name__}"
        )
    id_ = obj.get("id")
    if not _valid_id(id_):
        raise RpcError(INVALID_REQUEST, "invalid request: id must be a string, number or null")
    if obj.get("jsonrpc") != JSONRPC:
        raise RpcError(INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
    method = obj.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, 'invalid request: "method" must be a string')
    params = obj.get("params")
    if params is not None and not isinstance(params, dict | list):
        raise RpcError(INVALID_REQUEST, 'invalid request: "params" must be an object or an array')
    return Request(method=method, params=params, id=id_, is_notification="id" not in obj)


def request_id(obj: Any) -> Any:
    """The id to answer an invalid request with: its own when readable, else null."""
    if isinstance(obj, dict) and _valid_id(obj.get("id")):
        return obj.get("id")
    return None
