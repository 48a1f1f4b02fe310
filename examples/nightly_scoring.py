"""Score each night's batches of customer records.

Bad: a new process pool is started for every batch (AMZ004), paying worker
start-up each time, and `imap` sends one record per round trip (AMZ001).
"""

from multiprocessing import Pool


def score(record):
    total = 0.0
    for key, value in record.items():
        total += len(key) * float(value)
    return total


def score_batches(batches):
    results = []
    for batch in batches:
        with Pool(4) as pool:
            results.append(list(pool.imap(score, batch)))
    return results


if __name__ == "__main__":
    demo = [[{"a": i, "bb": i * 2} for i in range(1_000)] for _ in range(3)]
    print([sum(r) for r in score_batches(demo)])
