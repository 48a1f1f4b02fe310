"""The sampler's child side: measure a user's function on a sample of its real items.

Stdlib only (cloudpickle is used when importable) so that it runs under the user's
interpreter even where amorsize_lsp is not installed: the parent runs this file by
path. It reads one JSON request on stdin and writes one JSON response on the real
stdout, which it moves away from fd 1 before any user code runs, so user prints
land on stderr and cannot corrupt the channel.

``measure()`` is also what the in-process library API uses.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import pickle
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

PROTOCOL_VERSION = 1
PHASE_MARK = "[amorsize-sampler] phase: "
PRAGMA = re.compile(r"#\s*amorsize:\s*sample\s*=\s*(?P<expr>.+?)\s*$")

#: Spend at most this share of the budget timing calls (the rest is start-up slack).
TIMING_SHARE = 0.3
MIN_ITEMS = 3
#: Calls shorter than this are timed twice and the faster run kept.
REPEAT_BELOW_NS = 2_000_000


class SampleError(Exception):
    """A structured failure: ``kind`` is machine-readable, the message is for people."""

    def __init__(self, kind: str, message: str, tb: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb


class _CallTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that ``except Exception`` cannot eat it."""


class _CpuLimit(BaseException):
    """Raised by SIGXCPU when the CPU-time limit is reached."""


# ---------------------------------------------------------------------- statistics


def _percentile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return 0.0
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation; 0 when either side is constant or too short."""
    if len(xs) < 3:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=False))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx <= 0 or vy <= 0:
        return 0.0
    return cov / math.sqrt(vx * vy)


def spread_order(n: int, k: int) -> list[int]:
    """``k`` indices spread over ``range(n)``, ordered so every prefix is spread too.

    Van der Corput order over a strided grid: sampling that stops early still covers
    the start, middle and end of the sequence, not only its first items.
    """
    k = max(0, min(n, k))
    if k == 0:
        return []
    grid = [min(n - 1, (j * n) // k) for j in range(k)]

    def vdc(j: int) -> float:
        x, denom = 0.0, 1.0
        while j:
            denom *= 2
            j, bit = divmod(j, 2)
            x += bit / denom
        return x

    order = sorted(range(k), key=vdc)
    seen: set[int] = set()
    out: list[int] = []
    for j in order:
        if grid[j] not in seen:
            seen.add(grid[j])
            out.append(grid[j])
    return out


# ------------------------------------------------------------------------ pickling


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _PickleMeter:
    """Times dumps and loads of one side (arguments or results), pickle first."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.error: str | None = None
        self.using = pickle
        self.n = 0
        self.bytes = 0
        self.dumps_ns = 0
        self.loads_ns = 0
        self.failed = False

    def add(self, obj: Any, index: int | None) -> None:
        if self.failed:
            return
        try:
            t0 = time.perf_counter_ns()
            s = self.using.dumps(obj)
            t1 = time.perf_counter_ns()
        except Exception as e:
            where = f" (item {index})" if index is not None else ""
            if self.error is None:
                self.error = f"{self.what}{where} of type {type(obj).__name__}: {_describe(e)}"
            cp = _cloudpickle()
            if self.using is pickle and cp is not None:
                self.using = cp
                self.add(obj, index)
            else:
                self.failed = True
            return
        try:
            t2 = time.perf_counter_ns()
            pickle.loads(s)
            t3 = time.perf_counter_ns()
        except Exception as e:
            if self.error is None:
                self.error = (
                    f"{self.what} of type {type(obj).__name__} unpickles with {_describe(e)}"
                )
            self.failed = True
            return
        self.n += 1
        self.bytes += len(s)
        self.dumps_ns += t1 - t0
        self.loads_ns += t3 - t2

    def means(self) -> tuple[float, float, float]:
        if not self.n:
            return 0.0, 0.0, 0.0
        return self.bytes / self.n, self.dumps_ns / self.n / 1e9, self.loads_ns / self.n / 1e9


def function_pickle_check(func: Any) -> tuple[str | None, str]:
    """(precise error or None, pickler that works) for sending ``func`` to a worker."""
    try:
        pickle.loads(pickle.dumps(func))
        return None, "pickle"
    except Exception as e:
        name = getattr(func, "__qualname__", None) or repr(func)
        msg = f"function {name!s}: {_describe(e)}"
        cp = _cloudpickle()
        if cp is not None:
            try:
                pickle.loads(cp.dumps(func))
                return msg, "cloudpickle"
            except Exception as e2:
                return f"{msg}; cloudpickle also fails: {_describe(e2)}", "none"
        return msg, "none"


# ------------------------------------------------------------------------- timing


def _timer_overhead_ns() -> int:
    best = 1 << 62
    for _ in range(50):
        t0 = time.perf_counter_ns()
        t1 = time.perf_counter_ns()
        best = min(best, t1 - t0)
    return best


class _Alarm:
    """A per-call wall-clock limit via SIGALRM (main thread, POSIX); no-op elsewhere."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.enabled = (
            bool(seconds)
            and hasattr(signal, "setitimer")
            and _in_main_thread()
            and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None, _raise_timeout)
        )
        self._old: Any = None

    def __enter__(self) -> _Alarm:
        if self.enabled:
            self._old = signal.signal(signal.SIGALRM, _raise_timeout)
        return self

    def arm(self) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def disarm(self) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old or signal.SIG_DFL)


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _CallTimeout()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _plan(data: Any, max_items: int) -> tuple[int | None, Any, bool]:
    """(length, source, indexable): strided indices for sequences, else an iterator."""
    if isinstance(data, Mapping):
        return len(data), iter(data), False
    n: int | None = None
    try:
        n = len(data)
    except TypeError:
        n = None
    if n is not None and (
        isinstance(data, Sequence)
        or (hasattr(data, "__getitem__") and not isinstance(data, Mapping))
    ):
        try:
            if n:
                data[0]
            return n, data, True
        except Exception:
            pass
    return n, iter(data), False


def measure(
    func: Callable[..., Any],
    data: Iterable[Any],
    *,
    budget_s: float = 1.0,
    max_items: int = 256,
    per_call_timeout_s: float | None = None,
    star: bool = False,
) -> dict[str, Any]:
    """Time ``func`` on items of ``data`` and pickle its arguments and results.

    Returns the fields of a ``WorkloadProfile`` plus ``consumed``: the items taken
    from an iterator (so the caller can put them back) or None for a sequence.
    Raises ``SampleError`` for a function that raises, times out or exits.
    """
    start = time.perf_counter()
    n, source, indexable = _plan(data, max_items)
    consumed: list[Any] | None = None if indexable else []
    sized_iter = not indexable and n is not None  # a set or a dict: iterating is harmless

    def items() -> Iterator[tuple[int, Any]]:
        if indexable:
            for i in spread_order(n or 0, max_items):
                yield i, source[i]
        else:
            for i, x in enumerate(source):
                if consumed is not None and not sized_iter:
                    consumed.append(x)
                yield i, x
                if i + 1 >= max_items:
                    return

    overhead = _timer_overhead_ns()
    times: list[float] = []
    positions: list[float] = []
    args = _PickleMeter("argument")
    results = _PickleMeter("result")
    deadline = start + TIMING_SHARE * budget_s
    warmed = False
    raw_ns = 0
    sched0 = _schedstat()
    cpu0 = time.process_time_ns()
    loop0 = time.perf_counter_ns()
    with _Alarm(per_call_timeout_s) as alarm:
        gen = items()
        while True:
            try:
                i, x = next(gen)
            except StopIteration:
                break
            except (_CpuLimit, KeyboardInterrupt):
                raise
            except _CallTimeout:
                raise SampleError("timeout", "producing the next item timed out") from None
            except Exception as e:
                raise SampleError(
                    "exception",
                    f"iterating the data raised {_describe(e)} after {len(times)} items",
                    traceback.format_exc(),
                ) from None
            call_args = tuple(x) if star else (x,)
            if not warmed:
                warmed = True
                raw_ns += _timed(func, call_args, x, i, alarm, per_call_timeout_s)[1]
            r, dt = _timed(func, call_args, x, i, alarm, per_call_timeout_s)
            raw_ns += dt
            if dt < REPEAT_BELOW_NS:
                # Short calls: the less preempted of two runs (the machine is shared).
                _, dt2 = _timed(func, call_args, x, i, alarm, per_call_timeout_s)
                raw_ns += dt2
                dt = min(dt, dt2)
            times.append(max(0, dt - overhead) / 1e9)
            positions.append(float(i))
            args.add(x, i)
            results.add(r, i)
            if len(times) >= MIN_ITEMS and time.perf_counter() >= deadline:
                break
        gen.close()
    loop_ns = time.perf_counter_ns() - loop0
    sched1 = _schedstat()
    if sched0 is not None and sched1 is not None:
        # Off-CPU time that was not run-queue delay: the function waited (I/O, sleep).
        on_cpu, delayed = sched1[0] - sched0[0], sched1[1] - sched0[1]
        waited = max(0, loop_ns - on_cpu - delayed)
    else:
        waited = max(0, loop_ns - (time.process_time_ns() - cpu0))
    cpu_fraction = 1.0 - waited / raw_ns if raw_ns > 0 else 1.0
    cpu_fraction = min(1.0, max(0.0, cpu_fraction))

    if not times:
        raise SampleError("cannot_sample", "cannot sample: the iterable is empty")
    k = len(times)
    mean = sum(times) / k
    var = sum((t - mean) ** 2 for t in times) / k
    srt = sorted(times)
    a_bytes, a_dumps, a_loads = args.means()
    r_bytes, r_dumps, r_loads = results.means()
    f_err, f_with = function_pickle_check(func)
    if f_with == "none" or args.failed or results.failed:
        with_ = "none"  # no pickler available here can send it; the errors say why
    elif "cloudpickle" in (f_with, _name(args.using), _name(results.using)):
        with_ = "cloudpickle"
    else:
        with_ = "pickle"
    notes = []
    if not indexable and not sized_iter:
        notes.append(f"iterator: sampled its first {k} items only; its length is unknown")
    return {
        "n_items": n,
        "mean_s": mean,
        "cv": math.sqrt(var) / mean if mean > 0 else 0.0,
        "p50_s": _percentile(srt, 0.5),
        "p95_s": _percentile(srt, 0.95),
        "max_s": srt[-1],
        "arg_bytes": a_bytes,
        "result_bytes": r_bytes,
        "arg_dumps_s": a_dumps,
        "arg_loads_s": a_loads,
        "result_dumps_s": r_dumps,
        "result_loads_s": r_loads,
        "cpu_fraction": cpu_fraction,
        "order_correlation": spearman(positions, times) if indexable else 0.0,
        "sample_size": k,
        "sampled_prefix": not indexable and not sized_iter,
        "source": "measured",
        "function_pickle_error": f_err,
        "args_pickle_error": args.error,
        "result_pickle_error": results.error,
        "pickled_with": with_,
        "notes": notes,
        "consumed": consumed if (consumed is not None and not sized_iter) else None,
        "sampling_s": time.perf_counter() - start,
    }


def _name(mod: Any) -> str:
    return getattr(mod, "__name__", "")


def _fname(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _short(x: Any) -> str:
    try:
        s = repr(x)
    except Exception:
        s = f"<{type(x).__name__}>"
    return s if len(s) <= 60 else s[:57] + "..."


def _timeout_error(func: Any, i: int, limit: float | None) -> SampleError:
    return SampleError(
        "timeout",
        f"{_fname(func)} ran longer than the per-call limit of {limit:g} s on item {i}",
    )


def _memory_error(func: Any, i: int) -> SampleError:
    return SampleError(
        "memory", f"{_fname(func)} ran out of memory on item {i} (the sampler's memory limit)"
    )


def _schedstat() -> tuple[int, int] | None:
    """(ns on CPU, ns waiting on the run queue) of this thread, Linux only."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            a, b, *_ = fh.read().split()
        return int(a), int(b)
    except (OSError, ValueError):
        return None


def _timed(
    func: Any, call_args: tuple[Any, ...], x: Any, i: int, alarm: _Alarm, limit: float | None
) -> tuple[Any, int]:
    """One timed call: (result, nanoseconds), with every failure made a SampleError."""
    alarm.arm()
    t0 = time.perf_counter_ns()
    try:
        r = func(*call_args)
        t1 = time.perf_counter_ns()
    except _CallTimeout:
        raise _timeout_error(func, i, limit) from None
    except SystemExit as e:
        raise SampleError(
            "exit", f"{_fname(func)} called sys.exit({e.code!r}) on item {i}"
        ) from None
    except MemoryError:
        raise _memory_error(func, i) from None
    except (_CpuLimit, KeyboardInterrupt):
        raise
    except BaseException as e:
        raise SampleError(
            "exception",
            f"{_fname(func)} raised {_describe(e)} on item {i} ({_short(x)})",
            traceback.format_exc(),
        ) from None
    finally:
        alarm.disarm()
    return r, t1 - t0


# ------------------------------------------------------------------- child process


def _phase(text: str) -> None:
    try:
        sys.stderr.write(PHASE_MARK + text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def module_name_for(path: str) -> tuple[str, str]:
    """(dotted module name, sys.path root) for a file, walking up through packages."""
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    parts = [os.path.splitext(base)[0]]
    if parts[0] == "__init__":
        parts = []
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, pkg = os.path.split(directory)
        parts.insert(0, pkg)
    return ".".join(parts), directory


def read_pragma(path: str, line: int | None) -> str | None:
    """The ``# amorsize: sample=<expr>`` expression on ``line`` or the line above."""
    if not line:
        return None
    try:
        import tokenize

        with tokenize.open(path) as fh:
            lines = fh.read().splitlines()
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for ln in (line, line - 1):
        if 1 <= ln <= len(lines):
            m = PRAGMA.search(lines[ln - 1])
            if m:
                return m.group("expr")
    return None


def _apply_limits(cpu_s: float | None, memory_mb: float | None) -> None:
    try:
        import resource
    except ImportError:  # Windows: the parent's wall-clock timeout still applies
        return
    if cpu_s:
        soft = max(1, math.ceil(cpu_s))
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            new_hard = soft + 2 if hard == resource.RLIM_INFINITY else min(hard, soft + 2)
            resource.setrlimit(resource.RLIMIT_CPU, (min(soft, new_hard), new_hard))
            if hasattr(signal, "SIGXCPU"):
                signal.signal(signal.SIGXCPU, _raise_cpu_limit)
        except (ValueError, OSError):
            pass
    if memory_mb:
        limit = int(memory_mb * 2**20)
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ValueError, OSError):
            pass


def _raise_cpu_limit(signum: int, frame: Any) -> None:
    raise _CpuLimit()


def _eval(expr: str, namespace: dict[str, Any], what: str, where: str) -> Any:
    try:
        return eval(compile(expr, f"<{what}>", "eval"), namespace)
    except NameError as e:
        raise SampleError(
            "cannot_sample",
            f"cannot sample: {what} `{expr}` is not defined at module scope of {where} "
            f"({e}); it may be local to a function. Add `# amorsize: sample=<expr>` on "
            "the call line or the line above to give sample items.",
        ) from None
    except SyntaxError as e:
        raise SampleError(
            "cannot_sample", f"cannot sample: {what} `{expr}` is not an expression ({e.msg})"
        ) from None


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Run one sampling request (in the child) and return the JSON-safe response."""
    path = request["module_path"]
    func_text = request["function"]
    iter_text = request.get("iterable")
    line = request.get("line")
    where = f"{path}:{line}" if line else path

    _phase("import")
    name, root = module_name_for(path)
    if root not in sys.path:
        sys.path.insert(0, root)
    # The project's search path, in order, right after the module's root.
    at = sys.path.index(root) + 1
    for extra in request.get("sys_path") or []:
        if extra not in sys.path:
            sys.path.insert(at, extra)
            at += 1
    alarm_limit = request.get("import_timeout_s") or None
    with _Alarm(alarm_limit) as alarm:
        alarm.arm()
        try:
            module = importlib.import_module(name)
        except _CallTimeout:
            raise SampleError(
                "timeout", f"importing {name} from {path} took longer than {alarm_limit:g} s"
            ) from None
        except SystemExit as e:
            raise SampleError(
                "exit", f"importing {name} from {path} called sys.exit({e.code!r})"
            ) from None
        except BaseException as e:
            if isinstance(e, _CpuLimit):
                raise
            raise SampleError(
                "import_error",
                f"importing {name} from {path} failed: {_describe(e)}",
                traceback.format_exc(),
            ) from None
        finally:
            alarm.disarm()
    namespace = vars(module)

    _phase("resolve")
    func = _eval(func_text, namespace, "function", where)
    if not callable(func):
        raise SampleError(
            "cannot_sample",
            f"cannot sample: `{func_text}` is a {type(func).__name__}, not callable",
        )
    pragma = read_pragma(path, line)
    if pragma is not None:
        data = _eval(pragma, namespace, "sample pragma", where)
        resolved_from = "pragma"
    elif iter_text:
        data = _eval(iter_text, namespace, "iterable", where)
        resolved_from = "module"
    else:
        raise SampleError(
            "cannot_sample",
            f"cannot sample: the iterable at {where} is not known; add "
            "`# amorsize: sample=<expr>` on the call line or the line above",
        )
    try:
        iter(data)
    except TypeError:
        raise SampleError(
            "cannot_sample",
            f"cannot sample: `{pragma or iter_text}` is a {type(data).__name__}, not iterable",
        ) from None

    _phase(f"measure {func_text}")
    prof = measure(
        func,
        data,
        budget_s=float(request.get("budget_s", 1.0)),
        max_items=int(request.get("max_items", 256)),
        per_call_timeout_s=request.get("per_call_timeout_s"),
        star=bool(request.get("star", False)),
    )
    prof.pop("consumed", None)
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        prof["worker_memory_bytes"] = int(rss if sys.platform == "darwin" else rss * 1024)
    except (ImportError, OSError):
        pass
    sampling_s = prof.pop("sampling_s")
    return {
        "ok": True,
        "profile": prof,
        "resolved_from": resolved_from,
        "sampling_s": sampling_s,
    }


def main() -> int:
    """Child entry point: stdin request -> stdout response; user prints go to stderr."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]  # never shadow user modules with this directory's files
    out_fd = os.dup(1)
    os.dup2(2, 1)
    channel = open(out_fd, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 (kept open until os._exit)
    try:
        request = json.loads(sys.stdin.read())
        sys.stdin = io.StringIO("")
    except ValueError as e:
        response: dict[str, Any] = {
            "ok": False,
            "error": "protocol",
            "message": f"bad request: {e}",
        }
    else:
        _apply_limits(request.get("cpu_s"), request.get("memory_mb"))
        try:
            response = handle(request)
        except SampleError as e:
            response = {"ok": False, "error": e.kind, "message": e.message, "traceback": e.tb}
        except _CpuLimit:
            response = {
                "ok": False,
                "error": "cpu_limit",
                "message": f"sampling exceeded the CPU-time limit of {request.get('cpu_s')} s",
            }
        except MemoryError:
            response = {
                "ok": False,
                "error": "memory",
                "message": f"sampling exceeded the memory limit of {request.get('memory_mb')} MB",
            }
        except BaseException as e:  # a bug of ours or a very strange object: still answer
            response = {
                "ok": False,
                "error": "internal",
                "message": f"sampler failed: {_describe(e)}",
                "traceback": traceback.format_exc(),
            }
    response["protocol"] = PROTOCOL_VERSION
    try:
        payload = json.dumps(response, default=repr)
    except (TypeError, ValueError) as e:
        payload = json.dumps({"ok": False, "error": "internal", "message": f"bad response: {e}"})
    channel.write(payload + "\n")
    channel.flush()
    sys.stdout.flush()
    # Skip interpreter teardown: user atexit handlers or threads must not block or
    # print after the answer is out.
    os._exit(0)


if __name__ == "__main__":
    main()
