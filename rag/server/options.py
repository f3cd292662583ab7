"""Command-line options of ``rag serve`` (argparse only: imported when the parser is built)."""

import argparse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {text}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, not {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow listening beyond localhost without API keys (RAG_API_KEYS); anyone who can reach it can use it")
    parser.add_argument("--workers", type=_workers, default=1,
                        help="worker processes behind the one port (default 1); any request may land on any of them")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info)")
