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


def test_pool_in_a_comprehension_says_the_pools_start_and_are_never_closed():
    src = HEADER + (
        "def main(batches):\n"
        "    return [list(ProcessPoolExecutor().map(abs, b, chunksize=9)) for b in batches]\n"
    )
    (finding,) = flagged(src)
    assert "for every element of a comprehension" in finding.message
    assert "none is ever closed" in finding.message
    assert "starting and stopping" not in finding.message


@pytest.mark.parametrize(
    "manager",
    [
        "pytest.raises(ValueError)",
        "self.assertRaises(ValueError)",
        "self.assertRaisesRegex(ValueError, 'processes')",
    ],
)
def test_construction_expected_to_fail_is_not_flagged(manager):
    src = (
        "import pytest\nfrom multiprocessing import Pool\n"
        "def test_bad_counts(self):\n"
        "    for n in (0, -1):\n"
        f"        with {manager}:\n"
        "            Pool(n)\n"
    )
    assert flagged(src) == []
    # The same construction outside the block is flagged.
    assert len(flagged(src.replace(f"with {manager}:", "if True:"))) == 1
