"""Checksum data blocks with a thread pool.

Bad: `rolling_checksum` is a pure-Python loop with no I/O, so the GIL lets one
thread run at a time and the thread pool adds nothing (AMZ006).
"""

from concurrent.futures import ThreadPoolExecutor


def rolling_checksum(block):
    total = 0
    for byte in block:
        total = (total * 31 + byte) % 1_000_003
    return total


def checksum_all(blocks):
    with ThreadPoolExecutor(max_workers=8) as executor:
        return list(executor.map(rolling_checksum, blocks))


if __name__ == "__main__":
    data = [bytes(range(256)) * 64 for _ in range(32)]
    print(checksum_all(data)[:4])
