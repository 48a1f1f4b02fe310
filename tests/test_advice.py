"""Read-only advice (``amorsize_lsp.advice``): no store, no SQLite, a precise reason."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from amorsize_lsp.advice import StoreAdvice

    advice = StoreAdvice(Path(sys.argv[1]), [Path(sys.argv[2])])
    assert advice.recommend({"path": "a.py", "function": "f"}) is None
    print("sqlite_utils" in sys.modules)
    print(advice.problem)
    """
)


def test_without_a_store_there_is_no_advice_and_sqlite_is_not_loaded(tmp_path: Path) -> None:
    """An editor's first file must not wait for sqlite-utils to load for nothing."""
    db = tmp_path / "missing.db"
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    loaded, problem = run.stdout.splitlines()
    assert loaded == "False"
    assert problem == f"no amorsize store at {db}: start the daemon to create one"
    assert not db.exists()  # a reader never creates the store
