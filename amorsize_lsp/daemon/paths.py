"""Where the daemon listens, who may talk to it, and how only one runs per user.

The socket lives in a directory only its owner can enter (``$XDG_RUNTIME_DIR`` is
made that way; the fallback under the temp directory is made ``0700`` here), the
socket file itself is ``0600``, and every peer's UID is checked with
``SO_PEERCRED`` anyway: a shared ``/tmp`` must not let another user read profiles
or start jobs. The lock file beside the socket makes "one daemon per user" hold
even when two clients start one at the same moment.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path

SOCKET_ENV = "AMORSIZE_SOCKET"
DB_ENV = "AMORSIZE_DB"
SOCKET_NAME = "daemon.sock"
#: AF_UNIX paths are limited to 108 bytes on Linux (104 on macOS), terminator included.
MAX_SOCKET_PATH = 104 if sys.platform == "darwin" else 107


def default_db_path() -> Path:
    """``$AMORSIZE_DB``, else ``amorsize.db`` in the platformdirs user data directory.

    Here rather than in ``store`` so that clients asking only where the store is
    (``amorsize-lint`` deciding whether there is advice) do not load SQLite.
    """
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("amorsize-lsp")) / "amorsize.db"


def project_profiles_path(root: Path) -> Path:
    """Where a project commits its shared profiles: ``root/.amorsize/profiles.jsonl``."""
    return Path(root) / ".amorsize" / "profiles.jsonl"


class PathError(Exception):
    """The socket path or its directory cannot be used; the message says why and what to do."""


def default_socket_path() -> Path:
    """``$AMORSIZE_SOCKET``, else ``$XDG_RUNTIME_DIR/amorsize/daemon.sock``, else temp dir."""
    env = os.environ.get(SOCKET_ENV)
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "amorsize" / SOCKET_NAME
    return Path(tempfile.gettempdir()) / f"amorsize-{os.getuid()}" / SOCKET_NAME


def lock_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".lock")


def log_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.name + ".log")


def check_socket_path(path: Path) -> None:
    """Refuse a path the kernel cannot bind, with the limit in the message."""
    size = len(os.fsencode(str(path)))
    if size > MAX_SOCKET_PATH:
        raise PathError(
            f"socket path {path} is {size} bytes, over the {MAX_SOCKET_PATH}-byte limit of "
            "Unix sockets; set AMORSIZE_SOCKET or --socket to a shorter path"
        )


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` as ``0700`` and check that it is ours and nobody else's.

    A directory that another user owns (someone pre-created ``/tmp/amorsize-0``)
    or that others can write is refused rather than used.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(directory)
    except OSError as e:
        raise PathError(f"cannot create the socket directory {directory}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise PathError(f"{directory} is not a directory; remove it or choose another --socket")
    if st.st_uid != os.getuid():
        raise PathError(
            f"the socket directory {directory} belongs to uid {st.st_uid}, not to you "
            f"(uid {os.getuid()}); remove it or choose another --socket"
        )
    if st.st_mode & 0o022:
        # Ours but group/world-writable: tighten rather than refuse.
        try:
            os.chmod(directory, stat.S_IMODE(st.st_mode) & ~0o077)
        except OSError as e:
            raise PathError(
                f"the socket directory {directory} is writable by others and cannot be "
                f"made private: {e.strerror}"
            ) from None


class DaemonLock:
    """An exclusive ``flock`` on ``<socket>.lock``, held for the daemon's lifetime.

    The kernel drops it when the process dies, even by ``kill -9``, so a stale lock
    never blocks the next daemon.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when we now hold the lock; False when another live daemon holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder_pid(self) -> int | None:
        """The pid written by the daemon holding the lock, if readable."""
        try:
            return int(self.path.read_text(encoding="ascii").strip() or 0) or None
        except (OSError, ValueError):
            return None


def remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a daemon that died. Call only while holding the lock."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise PathError(f"{path} exists and is not a socket; remove it or choose another --socket")
    os.unlink(path)


def peer_uid(sock: socket.socket) -> int | None:
    """The UID of the process on the other end of a Unix socket (None if unknown)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return None
        _, uid, _ = struct.unpack("3i", raw)
        return uid
    if hasattr(os, "getpeereid"):  # pragma: no cover - BSD/macOS Pythons that expose it
        try:
            return os.getpeereid(sock.fileno())[1]  # type: ignore[attr-defined]
        except OSError:
            return None
    if sys.platform == "darwin":  # pragma: no cover - LOCAL_PEERCRED: struct xucred
        try:
            raw = sock.getsockopt(0, 0x001, 76)  # SOL_LOCAL, LOCAL_PEERCRED
            return struct.unpack_from("II", raw)[1]  # cr_version, cr_uid
        except (OSError, struct.error):
            return None
    return None  # pragma: no cover
