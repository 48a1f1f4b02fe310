"""Entry point for `amorsize-lsp`; the lsp arrives with its own issue."""

import sys


def main() -> int:
    print("amorsize-lsp: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
