"""A clean example: how the rules want pool code to look.

Module-level worker function, a main guard, pools used as context managers,
an explicit chunksize for `imap`, and a thread pool only for I/O-bound work.
`amorsize-lint examples/good_pipeline.py` reports nothing.
"""

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool


def normalise(text):
    words = []
    for word in text.split():
        words.append(word.strip(".,;:!?").lower())
    return words


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", errors="replace")


def run(urls):
    with ThreadPoolExecutor(max_workers=16) as executor:
        pages = list(executor.map(fetch, urls))
    with Pool(processes=4) as pool:
        return list(pool.imap(normalise, pages, chunksize=8))


if __name__ == "__main__":
    print(run(["https://example.org/"]))
