"""Run a generator in a forked child and receive its items as they come.

``amorsize-lint`` walks, reads, decodes and prefilters a large tree this way: the
child does that work on one core while the parent loads libcst once (the workers
it then forks inherit it) and starts analysing, instead of doing both in turn.

Only with ``fork`` (Linux, and no other threads in this process): the child gets
the generator as it is, untouched, and nothing needs pickling but the items.
Everywhere else the generator simply runs here. Should the child die before it
finishes, the parent's own copy of the generator, which it never advanced, runs
here and skips what the child already delivered; discovery is deterministic, so
no file is lost or seen twice. An exception in the child is raised in the parent.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """Whether a child can start as a copy of this process (``fork`` on Linux, no threads)."""
    import threading

    return sys.platform == "linux" and threading.active_count() == 1


def in_child(
    items: Iterator[T], *, while_waiting: Callable[[], object] | None = None
) -> Generator[T, None, None]:
    """``items``, produced by a forked child while the caller works on them.

    Falls back to iterating ``items`` here when a child cannot be forked. The
    standard streams are flushed first, so the child never writes out a copy of
    what they buffer. ``while_waiting`` runs here once the child has started,
    before the first item can be there: set-up the caller needs anyway. Closing
    the generator early stops the child.
    """
    if not can_fork():
        yield from items
        return
    import multiprocessing

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(items, writer), daemon=True)
    child.start()
    writer.close()
    if while_waiting is not None:
        while_waiting()
    delivered = 0
    finished = False
    try:
        while True:
            try:
                kind, payload = reader.recv()
            except (EOFError, OSError):
                break  # the child died: finish below
            if kind == "item":
                delivered += 1
                yield payload
            elif kind == "done":
                finished = True
                break
            else:
                raise payload
    finally:
        reader.close()
        if not finished and child.is_alive():
            child.terminate()
        child.join()
    if not finished:
        for index, item in enumerate(items):
            if index >= delivered:
                yield item


def _produce(items: Iterator[Any], writer: Any) -> None:
    """The child: make the items and hand each to a sender thread, then ``done`` (or
    the exception). The thread does the writing, so a full pipe (the parent busy
    loading libcst, a large file's text in the message) never stops the walk."""
    import queue
    import signal
    import threading

    # Ctrl-C is the parent's to handle; it stops this child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(outbox, writer), daemon=True)
    sender.start()
    try:
        for item in items:
            outbox.put(("item", item))
        outbox.put(("done", None))
    except Exception as exc:  # raised in the parent, like an error in its own loop
        outbox.put(("raise", exc))
    finally:
        sender.join()
        writer.close()


def _send_all(outbox: Any, writer: Any) -> None:
    while True:
        kind, payload = outbox.get()
        try:
            writer.send((kind, payload))
        except OSError:
            return  # the parent is gone
        except Exception:  # not picklable: its type and message still tell what failed
            failure = RuntimeError(f"{type(payload).__name__}: {payload}")
            writer.send(("raise", failure))
            return
        if kind != "item":
            return
