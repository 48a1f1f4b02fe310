"""Measure a call site's real function on real items, safely, in a subprocess.

The parent side (``sample_callsite``) starts the user's interpreter on the
stdlib-only child script ``_sampler_child.py``, sends one JSON request, enforces a
wall-clock timeout by killing the child's whole process group, and always returns
a ``SampleResult``: a profile, or an error kind with a precise message. User code
that hangs, crashes, raises, exits or prints never takes the caller down.

``python -m amorsize_lsp.engine.sampler`` runs the child side too (same protocol).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from amorsize_lsp.engine import _sampler_child as child
from amorsize_lsp.engine.workload import WorkloadProfile

CHILD_SCRIPT = str(Path(child.__file__).resolve())

#: Why sampling failed, for programs (the message is for people): the iterable or
#: function cannot be resolved, the import failed, the function raised, the run
#: timed out, crashed or exited, a memory or CPU limit was hit, the child's answer
#: was unreadable, the interpreter could not start, or a bug of ours.
ErrorKind = Literal[
    "cannot_sample",
    "import_error",
    "exception",
    "timeout",
    "crash",
    "exit",
    "memory",
    "cpu_limit",
    "protocol",
    "interpreter",
    "internal",
]

STDERR_TAIL = 4000


@dataclass(slots=True)
class SampleResult:
    """The outcome of sampling one call site; never an exception for user-code failures."""

    ok: bool
    profile: WorkloadProfile | None = None
    error: ErrorKind | None = None
    message: str = ""
    #: Where the sample items came from: "module" (the call's iterable) or "pragma".
    resolved_from: str | None = None
    #: Time spent measuring inside the child, and the whole round trip (seconds).
    sampling_s: float = 0.0
    wall_s: float = 0.0
    returncode: int | None = None
    stderr_tail: str = ""
    traceback: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "profile": self.profile.to_dict() if self.profile else None,
            "error": self.error,
            "message": self.message,
            "resolved_from": self.resolved_from,
            "sampling_s": self.sampling_s,
            "wall_s": self.wall_s,
            "returncode": self.returncode,
            "stderr_tail": self.stderr_tail,
            "traceback": self.traceback,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleResult:
        d = dict(d)
        prof = d.pop("profile", None)
        return cls(profile=WorkloadProfile.from_dict(prof) if prof else None, **d)


def error_kind(value: object) -> ErrorKind:
    """The child's error kind, checked: an unknown one (a newer child) is "protocol"."""
    for kind in get_args(ErrorKind):
        if value == kind:
            return kind
    return "protocol"


def _last_phase(stderr: str) -> str | None:
    phase = None
    for line in stderr.splitlines():
        if line.startswith(child.PHASE_MARK):
            phase = line[len(child.PHASE_MARK) :].strip()
    return phase


def _user_stderr(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if not ln.startswith(child.PHASE_MARK)]
    return "\n".join(lines)[-STDERR_TAIL:]


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def sample_callsite(
    python: str,
    module_path: str,
    function: str,
    iterable: str | None,
    line: int | None = None,
    budget_s: float = 1.0,
    timeout_s: float | None = None,
    memory_mb: float | None = 4096,
    cpu_s: float | None = None,
    per_call_timeout_s: float | None = None,
    star: bool = False,
    max_items: int = 256,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    sys_path: list[str] | None = None,
) -> SampleResult:
    """Sample ``function`` over ``iterable`` (source text, evaluated in the module's scope).

    ``python`` is the user's interpreter. ``line`` is the call's 1-based line, for the
    ``# amorsize: sample=<expr>`` pragma. The child gets ``memory_mb`` of address
    space and ``cpu_s`` of CPU time; the whole run gets ``timeout_s`` of wall time,
    after which its process group is killed. ``per_call_timeout_s`` bounds one call.
    ``sys_path`` is the project's search path (its root, ``src/``): the child puts
    it, in order, right after the module's own root, so workspace imports resolve.
    """
    per_call = per_call_timeout_s if per_call_timeout_s is not None else max(2.0, budget_s)
    wall_limit = timeout_s if timeout_s is not None else 3 * budget_s + per_call + 10.0
    cpu_limit = cpu_s if cpu_s is not None else wall_limit + 1
    request = {
        "module_path": str(Path(module_path).resolve()),
        "function": function,
        "iterable": iterable,
        "line": line,
        "budget_s": budget_s,
        "per_call_timeout_s": per_call,
        "import_timeout_s": max(1.0, wall_limit - budget_s),
        "max_items": max_items,
        "memory_mb": memory_mb,
        "cpu_s": cpu_limit,
        "star": star,
        "sys_path": [str(Path(p).resolve()) for p in sys_path or ()],
    }
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    run_env["PYTHONUNBUFFERED"] = "1"
    if cwd is None:
        cwd = child.module_name_for(request["module_path"])[1]
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [python, CHILD_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=run_env,
            start_new_session=True,
        )
    except OSError as e:
        return SampleResult(
            ok=False,
            error="interpreter",
            message=f"cannot start the interpreter {python!r}: {e.strerror or e}",
        )
    try:
        out, err = proc.communicate(json.dumps(request).encode(), timeout=wall_limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = _drain(proc)
        stderr = err.decode("utf-8", "replace")
        phase = _last_phase(stderr)
        return SampleResult(
            ok=False,
            error="timeout",
            message=f"sampling {function} in {module_path} did not finish within "
            f"{wall_limit:g} s (during {phase or 'start-up'}); the sampler was killed",
            wall_s=time.perf_counter() - t0,
            returncode=proc.returncode,
            stderr_tail=_user_stderr(stderr),
        )
    wall = time.perf_counter() - t0
    stderr = err.decode("utf-8", "replace")
    response = _parse(out)
    if response is None:
        rc = proc.returncode
        phase = _last_phase(stderr)
        during = f" during {phase}" if phase else ""
        died: ErrorKind = "crash"
        if rc is not None and rc < 0:
            how = f"was killed by {_signal_name(-rc)}"
            if -rc == getattr(signal, "SIGXCPU", -1):
                died = "cpu_limit"
        else:
            how = f"exited with code {rc} without an answer"
        return SampleResult(
            ok=False,
            error=died,
            message=f"the sampler process for {function} in {module_path} {how}{during}",
            wall_s=wall,
            returncode=rc,
            stderr_tail=_user_stderr(stderr),
        )
    if not response.get("ok"):
        raw = response.get("error") or "internal"
        kind = error_kind(raw)
        message = str(response.get("message") or "unknown sampler failure")
        if kind != raw:
            message = f"the sampler answered an unknown error kind {raw!r}: {message}"
        return SampleResult(
            ok=False,
            error=kind,
            message=message,
            wall_s=wall,
            returncode=proc.returncode,
            stderr_tail=_user_stderr(stderr),
            traceback=str(response.get("traceback") or ""),
        )
    profile = WorkloadProfile.from_dict(response["profile"])
    return SampleResult(
        ok=True,
        profile=profile,
        resolved_from=response.get("resolved_from"),
        sampling_s=float(response.get("sampling_s") or 0.0),
        wall_s=wall,
        returncode=proc.returncode,
        stderr_tail=_user_stderr(stderr),
        notes=list(profile.notes),
    )


def _parse(out: bytes) -> dict[str, Any] | None:
    text = out.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text.splitlines()[-1])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        # A grandchild in another session still holds our pipes: stop waiting for it.
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait(timeout=5)
        return b"", b""


if __name__ == "__main__":
    sys.exit(child.main())
