"""The sampler against real misbehaving user code, each case in a real subprocess."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from amorsize_lsp.engine._sampler_child import (
    module_name_for,
    read_pragma,
    spearman,
    spread_order,
)
from amorsize_lsp.engine.sampler import CHILD_SCRIPT, SampleResult, sample_callsite

PY = sys.executable

USER_MODULE = """
import os, sys, time

def work(n):
    s = 0
    for i in range(n):
        s += i
    return s

data = [200 + 40 * i for i in range(400)]   # cost grows with position

def hang(x):
    time.sleep(1000)

def boom(x):
    if x > 300:
        raise ValueError(f"bad item {x}")
    return x

def abort(x):
    os.abort()

def segfault(x):
    import ctypes
    ctypes.string_at(0)

def leave(x):
    sys.exit(3)

def vanish(x):
    os._exit(7)

def noisy(x):
    print("user print", x)
    os.write(1, b"raw fd-1 bytes\\n")
    sys.stdout.flush()
    return x

square = lambda x: x * x

def big(x):
    return bytearray(x * 2**20)

def spin_forever(x):
    while True:
        pass
"""


@pytest.fixture
def mod(tmp_path: Path) -> Path:
    p = tmp_path / "usermod.py"
    p.write_text(USER_MODULE)
    return p


def sample(mod: Path, function: str, iterable: str | None = "data", **kw: object) -> SampleResult:
    kw.setdefault("budget_s", 0.3)
    kw.setdefault("per_call_timeout_s", 2.0)
    return sample_callsite(PY, str(mod), function, iterable, **kw)  # type: ignore[arg-type]


def test_measures_a_well_behaved_function(mod: Path) -> None:
    r = sample(mod, "work")
    assert r.ok, r.message
    p = r.profile
    assert p is not None
    assert p.n_items == 400
    assert not p.sampled_prefix
    assert p.sample_size >= 3
    assert p.mean_s > 0 and p.max_s >= p.p95_s >= p.p50_s > 0
    # Items are spread over the sequence, so the rising cost is seen.
    assert p.order_correlation > 0.5
    assert p.arg_bytes > 0 and p.result_bytes > 0
    assert p.function_pickle_error is None and p.pickled_with == "pickle"
    assert p.worker_memory_bytes > 1_000_000
    assert r.resolved_from == "module"
    assert 0 < r.sampling_s <= r.wall_s


def test_hang_hits_the_per_call_timeout(mod: Path) -> None:
    t0 = time.monotonic()
    r = sample(mod, "hang", per_call_timeout_s=0.5)
    assert not r.ok
    assert r.error == "timeout"
    assert "hang ran longer than the per-call limit of 0.5 s on item 0" in r.message
    assert time.monotonic() - t0 < 10


def test_hang_that_ignores_signals_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    p = tmp_path / "stubborn.py"
    p.write_text(
        textwrap.dedent(
            f"""
            import signal, subprocess, time
            def stuck(x):
                child = subprocess.Popen(["sleep", "300"])
                open({str(pidfile)!r}, "w").write(str(child.pid))
                signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGALRM, signal.SIGXCPU}})
                while True:
                    pass
            data = [1, 2, 3]
            """
        )
    )
    t0 = time.monotonic()
    r = sample_callsite(PY, str(p), "stuck", "data", budget_s=0.2, timeout_s=2.0)
    assert time.monotonic() - t0 < 8
    assert not r.ok and r.error == "timeout"
    assert "did not finish within 2 s" in r.message and "measure stuck" in r.message
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A zombie still answers kill(0) until reaped by init; check its state.
        try:
            state = Path(f"/proc/{grandchild}/stat").read_text().split()[2]
        except OSError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {grandchild} survived the sampler's process-group kill")


@pytest.mark.parametrize(("function", "signame"), [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_crash_is_reported_with_the_signal(mod: Path, function: str, signame: str) -> None:
    r = sample(mod, function)
    assert not r.ok
    assert r.error == "crash"
    assert f"was killed by {signame} during measure {function}" in r.message
    assert r.returncode is not None and r.returncode < 0


def test_exception_names_the_item(mod: Path) -> None:
    r = sample(mod, "boom")
    assert not r.ok
    assert r.error == "exception"
    assert "boom raised ValueError: bad item" in r.message
    assert "on item" in r.message
    assert "Traceback" in r.traceback and "boom" in r.traceback


def test_sys_exit_is_caught(mod: Path) -> None:
    r = sample(mod, "leave")
    assert not r.ok and r.error == "exit"
    assert "leave called sys.exit(3) on item 0" in r.message


def test_hard_exit_without_an_answer_is_a_crash(mod: Path) -> None:
    r = sample(mod, "vanish")
    assert not r.ok and r.error == "crash"
    assert "exited with code 7 without an answer during measure vanish" in r.message
    assert r.returncode == 7


def test_stdout_noise_cannot_corrupt_the_channel(tmp_path: Path) -> None:
    p = tmp_path / "chatty.py"
    p.write_text(USER_MODULE + "\nprint('import-time print')\nprint('{\"ok\": false}')\n")
    quiet = sample_callsite(PY, str(p), "work", "data", budget_s=0.2)
    assert quiet.ok, quiet.message
    assert "import-time print" in quiet.stderr_tail
    r = sample_callsite(PY, str(p), "noisy", "data", budget_s=0.2)
    assert r.ok, r.message
    assert r.profile is not None and r.profile.sample_size >= 3
    assert "raw fd-1 bytes" in r.stderr_tail and "user print" in r.stderr_tail


def test_lambda_pickling_error_is_precise_and_measured_with_cloudpickle(mod: Path) -> None:
    r = sample(mod, "square")
    assert r.ok, r.message
    p = r.profile
    assert p is not None
    assert p.function_pickle_error is not None
    assert "<lambda>" in p.function_pickle_error
    assert "PicklingError" in p.function_pickle_error or "AttributeError" in p.function_pickle_error
    assert p.pickled_with == "cloudpickle"
    assert p.mean_s > 0


def test_generator_is_consumed_only_as_far_as_the_sample(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    p = tmp_path / "gen.py"
    p.write_text(
        textwrap.dedent(
            f"""
            def work(x):
                return x * 2
            def items():
                for i in range(10**7):
                    with open({str(counter)!r}, "w") as fh:
                        fh.write(str(i + 1))
                    yield i
            """
        )
    )
    # A budget far above 20 cheap items: max_items is the limit even under load.
    r = sample_callsite(PY, str(p), "work", "items()", budget_s=2.0, max_items=20)
    assert r.ok, r.message
    prof = r.profile
    assert prof is not None
    assert prof.n_items is None and prof.sampled_prefix
    assert prof.sample_size == 20
    assert int(counter.read_text()) == 20
    assert any("first 20 items" in n for n in prof.notes)


def test_pragma_gives_items_for_a_local_iterable(tmp_path: Path) -> None:
    src = textwrap.dedent(
        """
        def work(x):
            return x + 1

        def main():
            items = list(range(50))
            # amorsize: sample=list(range(30))
            return list(map(work, items))
        """
    )
    p = tmp_path / "local.py"
    p.write_text(src)
    call_line = src.splitlines().index("    return list(map(work, items))") + 1
    no_pragma = sample_callsite(PY, str(p), "work", "items", line=None, budget_s=0.2)
    assert not no_pragma.ok and no_pragma.error == "cannot_sample"
    assert "`items` is not defined at module scope" in no_pragma.message
    assert "# amorsize: sample=<expr>" in no_pragma.message
    r = sample_callsite(PY, str(p), "work", "items", line=call_line, budget_s=0.2)
    assert r.ok, r.message
    assert r.resolved_from == "pragma"
    assert r.profile is not None and r.profile.n_items == 30


def test_main_guard_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran-main"
    p = tmp_path / "guarded.py"
    p.write_text(
        f"def f(x):\n    return x\ndata = [1, 2, 3]\n"
        f"if __name__ == '__main__':\n    open({str(marker)!r}, 'w').close()\n"
    )
    r = sample_callsite(PY, str(p), "f", "data", budget_s=0.2)
    assert r.ok, r.message
    assert not marker.exists()


def test_import_error_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "broken.py"
    p.write_text("import no_such_module_amorsize\n")
    r = sample_callsite(PY, str(p), "f", "data", budget_s=0.2)
    assert not r.ok and r.error == "import_error"
    assert "No module named 'no_such_module_amorsize'" in r.message
    assert "broken" in r.message


def test_memory_limit(mod: Path) -> None:
    r = sample(mod, "big", "[4096] * 3", memory_mb=400)
    assert not r.ok
    assert r.error == "memory"
    assert "big ran out of memory on item 0" in r.message


def test_cpu_limit(mod: Path) -> None:
    r = sample(mod, "spin_forever", "[1]", cpu_s=1, per_call_timeout_s=30, timeout_s=20)
    assert not r.ok
    assert r.error == "cpu_limit"


def test_missing_interpreter_is_an_error_not_an_exception(mod: Path) -> None:
    r = sample_callsite("/nonexistent/python3", str(mod), "work", "data")
    assert not r.ok and r.error == "interpreter"
    assert "/nonexistent/python3" in r.message


def test_package_modules_get_their_dotted_name(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text("from . import helper\ndef f(x):\n    return helper.g(x)\n")
    (pkg / "helper.py").write_text("def g(x):\n    return x\ndata = [1, 2]\n")
    assert module_name_for(str(pkg / "m.py")) == ("pkg.sub.m", str(tmp_path))
    r = sample_callsite(PY, str(pkg / "m.py"), "f", "helper.data", budget_s=0.2)
    assert r.ok, r.message


def test_module_entry_point_speaks_the_protocol(mod: Path) -> None:
    req = {"module_path": str(mod), "function": "work", "iterable": "data[:10]", "budget_s": 0.2}
    proc = subprocess.run(
        [PY, "-m", "amorsize_lsp.engine.sampler"],
        input=json.dumps(req),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    resp = json.loads(proc.stdout)
    assert resp["ok"] is True, resp
    assert resp["profile"]["n_items"] == 10


def test_child_script_needs_only_the_stdlib(mod: Path, tmp_path: Path) -> None:
    base = getattr(sys, "_base_executable", None)
    probe = (
        subprocess.run(
            [base, "-c", "import amorsize_lsp"], capture_output=True, check=False, cwd=tmp_path
        )
        if base
        else None
    )
    if not base or probe is None or probe.returncode == 0:
        pytest.skip("no interpreter without amorsize_lsp installed")
    r = sample_callsite(base, str(mod), "work", "data", budget_s=0.2)
    assert r.ok, r.message
    has_cloudpickle = (
        subprocess.run(
            [base, "-c", "import cloudpickle"], capture_output=True, check=False, cwd=tmp_path
        ).returncode
        == 0
    )
    lam = sample_callsite(base, str(mod), "square", "data", budget_s=0.2)
    assert lam.ok and lam.profile is not None, lam.message
    assert "<lambda>" in (lam.profile.function_pickle_error or "")
    assert lam.profile.pickled_with == ("cloudpickle" if has_cloudpickle else "none")
    # Outside the package directory: the child must not shadow user modules.
    assert os.path.dirname(CHILD_SCRIPT).endswith("engine")


def test_sampling_never_sets_the_start_method(mod: Path) -> None:
    before = multiprocessing.get_start_method(allow_none=True)
    assert sample(mod, "work").ok
    assert multiprocessing.get_start_method(allow_none=True) == before


def test_result_round_trips_through_json(mod: Path) -> None:
    r = sample(mod, "work")
    assert SampleResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_spread_order_covers_the_sequence_early() -> None:
    order = spread_order(1000, 16)
    assert len(order) == 16 == len(set(order))
    assert order[0] == 0 and order[1] == 500
    assert {0, 250, 500, 750} <= set(order[:4])
    assert spread_order(3, 10) == [0, 2, 1] or sorted(spread_order(3, 10)) == [0, 1, 2]
    assert spread_order(0, 5) == []


def test_read_pragma_on_the_call_line_or_above(tmp_path: Path) -> None:
    p = tmp_path / "p.py"
    p.write_text("x = 1\n# amorsize: sample=range(5)\ny = f(x)  # amorsize: sample = [1, 2]\n")
    assert read_pragma(str(p), 3) == "[1, 2]"
    assert read_pragma(str(p), 2) == "range(5)"
    assert read_pragma(str(p), 1) is None


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0


def test_project_search_path_resolves_workspace_imports(tmp_path: Path) -> None:
    # app/main.py imports a module that lives in the project's src/, not beside it.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "helpers.py").write_text("def g(x):\n    return x + 1\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "helpers.py").write_text("raise ImportError('shadowed')\n")
    (tmp_path / "app").mkdir()
    main = tmp_path / "app" / "main.py"
    main.write_text("import helpers\ndata = [1, 2, 3]\ndef f(x):\n    return helpers.g(x)\n")
    without = sample_callsite(PY, str(main), "f", "data", budget_s=0.2)
    assert not without.ok and without.error == "import_error"
    assert "helpers" in without.message
    with_path = sample_callsite(
        PY, str(main), "f", "data", budget_s=0.2, sys_path=[str(tmp_path / "src")]
    )
    assert with_path.ok, with_path.message
    # The given order is kept: the first entry wins over a later one.
    ordered = sample_callsite(
        PY,
        str(main),
        "f",
        "data",
        budget_s=0.2,
        sys_path=[str(tmp_path / "src"), str(tmp_path / "other")],
    )
    assert ordered.ok, ordered.message


def _child_error_kinds() -> set[str]:
    """Every error kind the child script can answer with, read from its source."""
    import ast

    tree = ast.parse(Path(CHILD_SCRIPT).read_text(encoding="utf-8"))
    kinds: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "SampleError"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            kinds.add(node.args[0].value)
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(k, ast.Constant)
                    and k.value == "error"
                    and isinstance(v, ast.Constant)
                ):
                    kinds.add(v.value)
    return kinds


def test_every_error_kind_the_child_sends_is_typed() -> None:
    from typing import get_args

    from amorsize_lsp.engine.sampler import ErrorKind, error_kind

    declared = set(get_args(ErrorKind))
    sent = _child_error_kinds()
    assert sent, "found no error kinds in the child script"
    assert sent <= declared, sent - declared
    for kind in declared:
        assert error_kind(kind) == kind
    assert error_kind("from_the_future") == "protocol"
    assert error_kind(None) == "protocol"


def test_bad_request_is_a_protocol_error_with_a_typed_kind() -> None:
    proc = subprocess.run(
        [PY, CHILD_SCRIPT], input="{not json", capture_output=True, text=True, timeout=60
    )
    from amorsize_lsp.engine.sampler import error_kind

    resp = json.loads(proc.stdout)
    assert resp["ok"] is False
    assert error_kind(resp["error"]) == resp["error"] == "protocol"
    assert "bad request" in resp["message"]
