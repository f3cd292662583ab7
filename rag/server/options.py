"""Command-line options of ``rag serve`` (argparse only: imported when the parser is built)."""

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow listening beyond localhost without API keys (RAG_API_KEYS); anyone who can reach it can use it")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info)")
