"""Entry point for `amorsize-daemon`; the daemon arrives with its own issue."""

import sys


def main() -> int:
    print("amorsize-daemon: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
