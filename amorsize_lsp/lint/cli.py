"""`amorsize-lint` entry point (placeholder until the lint issue lands)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("amorsize-lint: not implemented yet", file=sys.stderr)
    return 2
