from __future__ import annotations

from helpers import diagnostics, open_doc

SOURCE = """from concurrent.futures import ProcessPoolExecutor


def score(x):
    return x * x


if __name__ == "__main__":
    with ProcessPoolExecutor() as executor:
        results = list(executor.map(score, range(1000)))
"""


async def test_diagnostics_on_open(client):
    uri = open_doc(client, client.root / "a.py", SOURCE)
    diags = await diagnostics(client, uri, 1)
    assert [d.code for d in diags] == ["AMZ001"]
