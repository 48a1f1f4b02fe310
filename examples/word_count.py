"""Count words in text files, written as a quick script.

Bad: the pool is created at module level without a main guard (AMZ003), which
breaks under spawn (macOS, Windows) and forkserver (Linux from Python 3.14); it
asks for far more processes than the 8-core target has (AMZ005); and it is never
closed (AMZ007).
"""

import sys
from collections import Counter
from multiprocessing import Pool


def count_words(path):
    with open(path, encoding="utf-8") as f:
        return Counter(f.read().split())


pool = Pool(processes=32)
totals = Counter()
for counts in pool.imap_unordered(count_words, sys.argv[1:], chunksize=8):
    totals.update(counts)
print(totals.most_common(10))
