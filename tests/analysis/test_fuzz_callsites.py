"""Random and mutated sources: only ``AnalysisError`` may escape the analysis."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amorsize_lsp.analysis.driver import analyze_source
from amorsize_lsp.analysis.model import AnalysisError

SEED = """\
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor as PPE
from functools import partial

N = 100

def work(x):
    return [i * x for i in range(N)]

class Runner:
    def __init__(self):
        self.pool = mp.Pool(2)
    def go(self, xs):
        return self.pool.imap(self.step, xs, 4)
    def step(self, x):
        return x

def main():
    with mp.get_context("spawn").Pool(processes=4) as pool:
        pool.map(work, range(N), chunksize=8)
        pool.starmap(partial(work), [(1,)] * 10)
    with PPE(max_workers=2) as ex:
        list(ex.map(lambda x: x, range(10)))

if __name__ == "__main__":
    main()
"""

TOKENS = [
    *"():=,.*[]'\"\\#0x\t\n",
    *("map", "Pool", "    ", "lambda", "with", "as", "import", ":=", "def", "if"),
]


def _check(source: str | bytes) -> None:
    try:
        result = analyze_source(source, "fuzz.py")
    except AnalysisError as exc:
        assert exc.message and exc.line >= 1
        return
    for site in result.callsites:
        assert site.span.line >= 1 and site.span.end_line >= site.span.line
        site.to_json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text(source: str) -> None:
    _check("import multiprocessing\n" + source)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _check(b"from multiprocessing import Pool\n" + data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED)), st.integers(0, 6), st.sampled_from(TOKENS)),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_seed(mutations: list[tuple[int, int, str]]) -> None:
    source = SEED
    for pos, cut, token in mutations:
        source = source[:pos] + token + source[pos + cut :]
    _check(source)
