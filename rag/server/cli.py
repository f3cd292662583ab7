"""``rag serve``: check the bind rule, build the app, listen, and say where.

Without API keys only loopback addresses are allowed (``--insecure`` overrides). The socket is
bound before the server starts, so ``--port 0`` works and the printed address is the real one.
"""

from __future__ import annotations

import argparse
import copy
import json
import socket
import sys

from ..config import load_settings
from ..errors import RagError
from .security import bind_refusal, parse_keys


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it small responses wait ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    try:
        settings = load_settings(index=getattr(args, "index", None))
        keys = parse_keys(settings.api_keys)
    except RagError as err:
        print(f"rag: error: {err}", file=sys.stderr)
        return err.exit_code
    refusal = bind_refusal(args.host, keys=keys, insecure=args.insecure)
    if refusal:
        print(f"rag: error: {refusal}", file=sys.stderr)
        return 2
    try:
        sock = _bind(args.host, args.port)
    except OSError as err:
        print(f"rag: error: {err}", file=sys.stderr)
        return 1
    try:
        app = create_app(settings, bound_host=args.host)
    except RagError as err:
        sock.close()
        print(f"rag: error: {err}", file=sys.stderr)
        return err.exit_code
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    if args.json:
        print(json.dumps({"url": url, "docs": url + "/docs", "index": str(settings.index)}), flush=True)
    else:
        auth = "API keys required" if keys else "no API keys (localhost only)" if not args.insecure else "NO AUTH"
        print(f"rag serve: {url}  (chat page {url}/, API docs {url}/docs; index {settings.index}; {auth})", flush=True)
    # Logs (access log included) go to stderr: stdout carries only the address line (JSON with --json).
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(app, log_level=args.log_level, log_config=log_config, timeout_keep_alive=5,
                            timeout_graceful_shutdown=10, server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1
