"""Entry point for ``amorsize-lsp`` (and ``python -m amorsize_lsp``): stdio by default."""

from __future__ import annotations

import argparse
import logging
import sys

from amorsize_lsp import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amorsize-lsp",
        description="The amorsize language server: parallelism advice at each pool-map call.",
    )
    parser.add_argument("--version", action="version", version=f"amorsize-lsp {__version__}")
    parser.add_argument(
        "--stdio", action="store_true", help="talk LSP over standard input/output (default)"
    )
    parser.add_argument("--tcp", action="store_true", help="listen on TCP (for debugging)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["error", "warning", "info", "debug"],
        help="log level of the server's standard error (the editor's log)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="amorsize-lsp %(levelname)s %(name)s: %(message)s",
    )
    # The analysis worker starts first: it loads the analysis while this process loads
    # pygls and lsprotocol (most of a cold start), so the first file waits for neither.
    from amorsize_lsp.lsp.spawn import spawn

    worker = spawn()
    from amorsize_lsp.lsp.server import create_server

    server = create_server(worker)
    if args.tcp:
        if not 0 < args.port < 65536:
            print(f"amorsize-lsp: --port {args.port} is not a TCP port (1-65535)", file=sys.stderr)
            return 2
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
