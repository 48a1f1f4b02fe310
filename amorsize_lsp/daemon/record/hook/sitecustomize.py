"""amorsize record: time each pool map of this program and append what was seen to a file.

``amorsize-daemon record -- CMD`` puts this directory first on ``PYTHONPATH``, so
Python imports this file at start-up. It must leave the program unchanged: it
restores ``PYTHONPATH`` and removes its own variables from the environment, takes
itself off ``sys.path``, runs any ``sitecustomize`` it shadowed, and patches the
pool modules only when the program imports them. It uses the standard library
only, because the program's interpreter may not have amorsize installed.

Per call it writes one JSON line: the calling file and line, the item count, the
chunksize and workers used, the wall time of the whole call, the CPU time the
workers spent during it (from /proc), and the pickled size of a few arguments and
results. Any failure of the recorder itself is swallowed; the program's own
exceptions pass through untouched.
"""

import contextlib
import os
import sys

_OUT_ENV = "AMORSIZE_RECORD_FILE"
_PATH_ENV = "AMORSIZE_RECORD_PYTHONPATH"
_HERE = os.path.dirname(os.path.abspath(__file__))
#: Arguments and results pickled per call to learn their sizes.
_SIZE_SAMPLES = 3
#: Skip further size samples once one pickling took longer than this (seconds).
_CHEAP_S = 0.001


def _restore_environment():
    """Undo what ``record`` added, so the program (and its children) see their own env.

    ``AMORSIZE_RECORD_PYTHONPATH`` holds the program's ``PYTHONPATH`` when it had
    one; its absence means it had none.
    """
    out = os.environ.pop(_OUT_ENV, None)
    if out is not None:
        old = os.environ.pop(_PATH_ENV, None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    return out


def _chain_shadowed_sitecustomize():
    """Run the sitecustomize that this file hides (a distribution's or a venv's)."""
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.origin is None:
        return
    if os.path.dirname(os.path.abspath(spec.origin)) == _HERE:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        # Python reports a failing sitecustomize and carries on; do the same.
        import traceback

        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n")
        sys.stderr.write("".join(traceback.format_exception_only(*sys.exc_info()[:2])))


class _Recorder:
    """Appends one JSON line per finished pool call to the record file."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        try:
            self.clk_tck = os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError, AttributeError):
            self.clk_tck = 100

    def write(self, entry):
        import json

        try:
            line = (json.dumps(entry, default=repr) + "\n").encode("utf-8")
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self.fd, line)
        except Exception:
            pass

    def cpu_s(self, pid):
        """CPU seconds process ``pid`` has used (None when it cannot be read)."""
        try:
            with open(f"/proc/{pid}/schedstat", "rb") as fh:
                return int(fh.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.clk_tck
        except (OSError, ValueError, IndexError):
            return None


_recorder = None


def _caller(depth):
    """File and line of the program's call, ``depth`` frames above this one."""
    frame = sys._getframe(depth)
    return frame.f_code.co_filename, frame.f_lineno


def _sizes(objs):
    """(mean pickled bytes, mean dumps seconds, count) over a few objects, cheaply."""
    import pickle
    import time

    total_b, total_s, k = 0, 0.0, 0
    for obj in objs:
        t0 = time.perf_counter()
        try:
            data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        dt = time.perf_counter() - t0
        total_b += len(data)
        total_s += dt
        k += 1
        if dt > _CHEAP_S:
            break
    if not k:
        return None
    return total_b / k, total_s / k, k


def _spread(seq, n):
    if n <= 0:
        return []
    idx = sorted({0, n // 2, n - 1})[:_SIZE_SAMPLES]
    try:
        return [seq[i] for i in idx]
    except Exception:
        return []


class _Call:
    """One pool call in flight: what it started with, finished when its results are in."""

    __slots__ = (
        "args",
        "chunksize",
        "chunksize_given",
        "cpu0",
        "executor",
        "file",
        "func",
        "line",
        "method",
        "n_items",
        "pool",
        "results",
        "start_method",
        "t0",
        "workers",
    )

    def __init__(self, pool, executor, method, func, file, line):
        import time

        self.pool = pool
        self.executor = executor
        self.method = method
        self.func = func
        self.file = file
        self.line = line
        self.n_items = None
        self.chunksize = None
        self.chunksize_given = False
        self.workers = None
        self.start_method = None
        self.args = None
        self.results = []
        self.cpu0 = {}
        self.t0 = time.perf_counter()

    def pids(self):
        pool = self.pool
        try:
            if self.executor == "concurrent.futures.ProcessPoolExecutor":
                return list((pool._processes or {}).keys())
            if self.executor == "multiprocessing.pool.Pool":
                return [p.pid for p in pool._pool if p.pid]
        except Exception:
            pass
        return []

    def begin(self):
        for pid in self.pids():
            cpu = _recorder.cpu_s(pid)
            if cpu is not None:
                self.cpu0[pid] = cpu

    def finish(self):
        import time

        wall = time.perf_counter() - self.t0
        try:
            cpu = None
            pids = self.pids()
            if pids:
                total = 0.0
                for pid in pids:
                    now = _recorder.cpu_s(pid)
                    if now is None:
                        total = None
                        break
                    total += now - self.cpu0.get(pid, 0.0)
                cpu = total
            args = _sizes(self.args) if self.args else None
            results = _sizes(self.results) if self.results else None
            func = self.func
            _recorder.write(
                {
                    "v": 1,
                    "pid": os.getpid(),
                    "file": self.file,
                    "line": self.line,
                    "method": self.method,
                    "executor": self.executor,
                    "function": getattr(func, "__qualname__", None) or repr(func),
                    "module": getattr(func, "__module__", None),
                    "n_items": self.n_items,
                    "chunksize": self.chunksize,
                    "chunksize_given": self.chunksize_given,
                    "workers": self.workers,
                    "start_method": self.start_method,
                    "wall_s": wall,
                    "worker_cpu_s": cpu,
                    "arg_bytes": args[0] if args else None,
                    "arg_dumps_s": args[1] if args else None,
                    "result_bytes": results[0] if results else None,
                    "result_dumps_s": results[1] if results else None,
                    "t": time.time(),
                }
            )
        except Exception:
            pass


def _pool_call(pool, method, func, iterable, chunksize):
    """A _Call for a multiprocessing Pool (or ThreadPool) method, or None."""
    try:
        from multiprocessing.pool import ThreadPool

        executor = (
            "multiprocessing.pool.ThreadPool"
            if isinstance(pool, ThreadPool)
            else "multiprocessing.pool.Pool"
        )
        file, line = _caller(3)  # _caller <- _pool_call <- the wrapper <- the call
        call = _Call(pool, executor, method, func, file, line)
        call.workers = len(pool._pool)
        with contextlib.suppress(Exception):
            call.start_method = pool._ctx.get_start_method()
        call.chunksize = chunksize
        call.chunksize_given = chunksize is not None
        if hasattr(iterable, "__len__"):
            try:
                n = len(iterable)
                call.n_items = n
                if method in ("map", "starmap") and chunksize is None:
                    c, extra = divmod(n, max(1, call.workers) * 4)
                    call.chunksize = c + 1 if extra else c
                call.args = _spread(iterable, n)
            except Exception:
                pass
        if call.chunksize is None:
            call.chunksize = 1
        call.begin()
        return call
    except Exception:
        return None


def _patch_pool(module):
    Pool = module.Pool
    IMapIterator = module.IMapIterator
    IMapUnorderedIterator = module.IMapUnorderedIterator
    orig_map, orig_starmap = Pool.map, Pool.starmap
    orig_imap, orig_imap_unordered = Pool.imap, Pool.imap_unordered

    def _finish_eager(call, result):
        if call is None:
            return
        try:
            if call.n_items is None:
                call.n_items = len(result)
            call.results = _spread(result, len(result))
        except Exception:
            pass
        call.finish()

    def map(self, func, iterable, chunksize=None):
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)  # what Pool.map does first anyway
        call = _pool_call(self, "map", func, iterable, chunksize)
        result = orig_map(self, func, iterable, chunksize)
        _finish_eager(call, result)
        return result

    def starmap(self, func, iterable, chunksize=None):
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        call = _pool_call(self, "starmap", func, iterable, chunksize)
        result = orig_starmap(self, func, iterable, chunksize)
        _finish_eager(call, result)
        return result

    def _make_iter_class(base):
        class Recorded(base):
            # Same layout as the pool's own iterator: only ``next`` learns when it ends.
            _amorsize_call = None

            def next(self, timeout=None):
                try:
                    value = base.next(self, timeout)
                except StopIteration:
                    call = self._amorsize_call
                    if call is not None:
                        self._amorsize_call = None
                        if call.n_items is None:
                            call.n_items = self._length
                        call.finish()
                    raise
                call = self._amorsize_call
                if call is not None and len(call.results) < _SIZE_SAMPLES:
                    call.results.append(value)
                return value

            __next__ = next

        Recorded.__name__ = base.__name__
        Recorded.__qualname__ = base.__qualname__
        Recorded.__module__ = base.__module__
        return Recorded

    recorded_iters = {
        IMapIterator: _make_iter_class(IMapIterator),
        IMapUnorderedIterator: _make_iter_class(IMapUnorderedIterator),
    }

    def _chunked(gen, call):
        # imap with chunksize > 1 returns a generator over chunks' items.
        n = 0
        for item in gen:
            n += 1
            if len(call.results) < _SIZE_SAMPLES:
                call.results.append(item)
            yield item
        if call.n_items is None:
            call.n_items = n
        call.finish()

    def _wrap_iter(result, call):
        if call is None:
            return result
        cls = recorded_iters.get(type(result))
        if cls is not None:
            try:
                result.__class__ = cls
                result._amorsize_call = call
            except Exception:
                pass
            return result
        if type(result).__name__ == "generator":
            return _chunked(result, call)
        return result

    def imap(self, func, iterable, chunksize=1):
        call = _pool_call(self, "imap", func, iterable, chunksize)
        return _wrap_iter(orig_imap(self, func, iterable, chunksize), call)

    def imap_unordered(self, func, iterable, chunksize=1):
        call = _pool_call(self, "imap_unordered", func, iterable, chunksize)
        return _wrap_iter(orig_imap_unordered(self, func, iterable, chunksize), call)

    for name, fn in (
        ("map", map),
        ("starmap", starmap),
        ("imap", imap),
        ("imap_unordered", imap_unordered),
    ):
        orig = getattr(Pool, name)
        fn.__name__, fn.__qualname__, fn.__doc__ = orig.__name__, orig.__qualname__, orig.__doc__
        fn.__wrapped__ = orig
        setattr(Pool, name, fn)


def _patch_executor(module):
    PPE = module.ProcessPoolExecutor
    orig_map = PPE.map

    def _counting(iterable, box):
        for item in iterable:
            box[0] += 1
            yield item

    def _results(gen, call):
        for item in gen:
            if len(call.results) < _SIZE_SAMPLES:
                call.results.append(item)
            yield item
        call.finish()

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        call = None
        box = None
        try:
            file, line = _caller(2)  # _caller <- the wrapper <- the call
            call = _Call(self, "concurrent.futures.ProcessPoolExecutor", "map", fn, file, line)
            call.workers = self._max_workers
            call.chunksize = chunksize
            call.chunksize_given = chunksize != 1
            with contextlib.suppress(Exception):
                call.start_method = self._mp_context.get_start_method()
            if iterables and all(hasattr(it, "__len__") for it in iterables):
                call.n_items = min(len(it) for it in iterables)
                if len(iterables) == 1:
                    call.args = _spread(iterables[0], call.n_items)
            elif iterables:
                box = [0]
                iterables = (_counting(iterables[0], box), *iterables[1:])
            call.begin()
        except Exception:
            call = None
        gen = orig_map(self, fn, *iterables, timeout=timeout, chunksize=chunksize)
        if call is None:
            return gen
        if box is not None:
            call.n_items = box[0]  # Executor.map submitted every item already
        return _results(gen, call)

    map.__name__, map.__qualname__, map.__doc__ = (
        orig_map.__name__,
        orig_map.__qualname__,
        orig_map.__doc__,
    )
    map.__wrapped__ = orig_map
    PPE.map = map


_PATCHES = {
    "multiprocessing.pool": _patch_pool,
    "concurrent.futures.process": _patch_executor,
}


class _PatchOnImport:
    """A meta-path finder that patches a pool module right after it is first imported.

    Patching on import (rather than importing the pool modules here) keeps start-up
    and ``sys.modules`` as they are for programs that never use a pool.
    """

    def find_spec(self, name, path=None, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            with contextlib.suppress(Exception):
                patch(module)
            _PATCHES.pop(name, None)
            if not _PATCHES and self in sys.meta_path:
                sys.meta_path.remove(self)

        class _Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                exec_and_patch(module)

        spec.loader = _Loader()
        return spec


def _install():
    global _recorder
    out = _restore_environment()
    _chain_shadowed_sitecustomize()
    if not out:
        return
    _recorder = _Recorder(out)
    for name in list(_PATCHES):
        module = sys.modules.get(name)
        if module is not None:
            with contextlib.suppress(Exception):
                _PATCHES.pop(name)(module)
    if _PATCHES:
        sys.meta_path.insert(0, _PatchOnImport())


_install()
