import pytest
from rule_helpers import run_rules

CODE = "AMZ004"


def flagged(source):
    return [f for f in run_rules(source, [CODE]) if f.code == CODE]


HEADER = "from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor\n"


@pytest.mark.parametrize(
    "body",
    [
        "def main(batches):\n"
        "    for batch in batches:\n"
        "        with ProcessPoolExecutor() as ex:\n"
        "            ex.map(abs, batch, chunksize=9)\n",
        "def main(batches):\n"
        "    while batches:\n"
        "        with ThreadPoolExecutor() as ex:\n"
        "            ex.map(abs, batches.pop())\n",
        "def main(batches):\n"
        "    return [list(ProcessPoolExecutor().map(abs, b, chunksize=9)) for b in batches]\n",
    ],
)
def test_pool_created_in_loop_is_flagged(body):
    found = flagged(HEADER + body)
    assert len(found) == 1
    assert "inside a loop" in found[0].message
    assert "create it once before the loop" in found[0].message


def test_pool_created_before_the_loop_is_not_flagged():
    src = """
    from multiprocessing import Pool
    def main(batches):
        with Pool(2) as pool:
            for batch in batches:
                pool.map(abs, batch)
    """
    assert flagged(src) == []
