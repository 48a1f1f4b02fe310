"""Read-only recommendations for clients that must not start a daemon or write a store.

``amorsize-lint`` and the language server's analysis worker read what the store
(``Store(readonly=True)``) and a project's committed ``.amorsize/profiles.jsonl``
already know, through the daemon's :class:`~amorsize_lsp.daemon.advisor.Advisor`.
Nothing here samples, writes the user's store, or spawns a process; when neither
source exists there is simply no advice.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from amorsize_lsp.analysis.model import CallSite

log = logging.getLogger("amorsize.advice")

#: How long to wait before looking again for a store that was missing or unreadable.
RETRY_S = 10.0


class StoreAdvice:
    """Advice from the read-only store and project profiles, opened lazily."""

    def __init__(self, db_path: str | Path | None = None, project_roots: Sequence[Path] = ()):
        self.db_path = Path(db_path) if db_path else None
        self.project_roots = [Path(p) for p in project_roots]
        self._advisor: Any = None
        self._failed_at: float | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self.problem: str | None = None

    @staticmethod
    def available(db_path: str | Path | None, project_roots: Sequence[Path]) -> bool:
        """Whether there is anything to read: the store file or a project profiles file."""
        from amorsize_lsp.daemon.paths import default_db_path, project_profiles_path

        db = Path(db_path) if db_path else default_db_path()
        return db.is_file() or any(project_profiles_path(r).is_file() for r in project_roots)

    def _open(self) -> Any:
        if self._advisor is not None:
            return self._advisor
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_S:
            return None
        if not self.available(self.db_path, self.project_roots):
            # Nothing to read: say so without loading SQLite (an editor's first file
            # would wait for it); looked for again after RETRY_S or a refresh.
            from amorsize_lsp.daemon.paths import default_db_path

            where = self.db_path or default_db_path()
            self.problem = f"no amorsize store at {where}: start the daemon to create one"
            self._failed_at = time.monotonic()
            return None
        from amorsize_lsp.daemon.advisor import Advisor
        from amorsize_lsp.daemon.paths import project_profiles_path
        from amorsize_lsp.daemon.store import Store, StoreError
        from amorsize_lsp.engine.system import SystemProfile

        try:
            try:
                store = Store(self.db_path, readonly=True)
            except StoreError as exc:
                if not any(project_profiles_path(r).is_file() for r in self.project_roots):
                    raise
                # Only project profiles: an empty private scratch store lets the advisor
                # read them; the user's store is never created or written.
                self.problem = str(exc)
                self._scratch = tempfile.TemporaryDirectory(prefix="amorsize-advice-")
                store = Store(Path(self._scratch.name) / "scratch.db")
            system = SystemProfile.detect(calibrate=False)
            stored = store.machine(system.fingerprint)
            if stored:
                system = SystemProfile.from_dict(stored)
            self._advisor = Advisor(store, system, project_roots=self.project_roots)
            return self._advisor
        except (StoreError, OSError) as exc:
            self.problem = str(exc)
            self._failed_at = time.monotonic()
            log.debug("no read-only advice: %s", exc)
            return None

    @property
    def opened(self) -> bool:
        """Whether the store (or project profiles) could be read."""
        return self._advisor is not None

    def refresh(self) -> None:
        """Forget cached answers: the store changed (a sample finished)."""
        self._failed_at = None  # the store may exist now: retry opening it at once
        if self._advisor is not None:
            self._advisor.profile_added()

    def recommend(self, callsite: dict[str, Any]) -> dict[str, Any] | None:
        """``Recommendation.to_dict()`` for a call site's JSON, or None."""
        advisor = self._open()
        if advisor is None:
            return None
        try:
            return advisor.recommend(callsite)
        except ValueError:
            return None

    def close(self) -> None:
        if self._advisor is not None:
            self._advisor.store.close()
            self._advisor = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def recommend_hook(advise: Callable[[dict[str, Any]], dict[str, Any] | None]):
    """The ``check_source(recommend=...)`` hook: a call site in, a Recommendation out."""
    from amorsize_lsp.engine.workload import Recommendation

    #: Several rules ask about the same call site: ask the source once per site.
    seen: dict[int, tuple[CallSite, Recommendation | None]] = {}

    def hook(site: CallSite) -> Recommendation | None:
        hit = seen.get(id(site))
        if hit is not None and hit[0] is site:
            return hit[1]
        data = advise(site.to_json())
        rec = Recommendation.from_dict(data) if data else None
        seen[id(site)] = (site, rec)
        return rec

    return hook
