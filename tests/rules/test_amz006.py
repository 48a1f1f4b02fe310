import pytest
from rule_helpers import run_rules

CODE = "AMZ006"

CPU = """
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.pool import ThreadPool


def crunch(n):
    total = 0
    for i in range(n):
        for j in range(i):
            total += j
    return total


def main(ns):
    with ThreadPoolExecutor() as ex:
        return list(ex.map(crunch, ns))
"""


def flagged(source, gil=True):
    return [f for f in run_rules(source, [CODE], gil_enabled=gil) if f.code == CODE]


def test_cpu_bound_function_on_thread_pool_is_flagged():
    (finding,) = flagged(CPU)
    assert "`ex.map` maps `crunch`, which runs 2 pure-Python loops nested 2 deep" in finding.message
    assert "the GIL lets one item run at a time" in finding.message
    assert "ProcessPoolExecutor" in finding.message


def test_suppressed_on_free_threaded_builds():
    assert flagged(CPU, gil=False) == []


@pytest.mark.parametrize(
    "body",
    [
        # Blocking I/O: threads overlap the waiting.
        "    for _ in range(n):\n        time.sleep(0.1)\n    return n",
        "    with open(n) as f:\n        return [line for line in f]",
        # No loop at all.
        "    return n * 2",
    ],
)
def test_io_bound_or_loop_free_functions_are_not_flagged(body):
    src = f"""
import time
from concurrent.futures import ThreadPoolExecutor


def job(n):
{body}


def main(ns):
    with ThreadPoolExecutor() as ex:
        return list(ex.map(job, ns))
"""
    assert flagged(src) == []


def test_process_pool_and_builtins_are_not_flagged():
    src = CPU.replace("ThreadPoolExecutor() as ex", "ThreadPool() as ex").replace(
        "ex.map(crunch, ns)", "ex.map(len, ns)"
    )
    assert flagged(src) == []
    src = CPU.replace("ThreadPoolExecutor", "ProcessPoolExecutor")
    assert flagged(src) == []
