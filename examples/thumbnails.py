"""Make thumbnails for a folder of images with a process pool.

Bad: the executor maps thousands of cheap items one IPC round trip at a time
(AMZ001), and the resize step is a lambda, which a process pool cannot pickle
(AMZ002).
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def load(path):
    return path.read_bytes()


def shrink(data, factor=4):
    return data[::factor]


def main(folder):
    paths = sorted(Path(folder).glob("*.png"))
    with ProcessPoolExecutor(max_workers=4) as executor:
        images = list(executor.map(load, paths))
        thumbs = list(executor.map(lambda data: shrink(data, 8), images, chunksize=16))
    for path, thumb in zip(paths, thumbs):
        path.with_suffix(".thumb").write_bytes(thumb)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
