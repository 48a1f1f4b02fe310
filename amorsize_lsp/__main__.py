"""``python -m amorsize_lsp``: the language server, like ``amorsize-lsp``."""

import sys

from amorsize_lsp.lsp.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
