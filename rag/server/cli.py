"""``rag serve``: check the bind rule, build the app, listen, and say where.

Without API keys only loopback addresses are allowed (``--insecure`` overrides). The socket is
bound before the server starts, so ``--port 0`` works and the printed address is the real one.
With ``--workers N`` a supervisor forks N worker processes, each with its own listening socket on
the same port (``SO_REUSEPORT``: the kernel spreads connections over them), restarts a worker that
dies, and stops them all on SIGTERM or Ctrl-C. Workers keep no state of their own that matters:
the index, sessions, jobs, cache, limits and metrics are in the store.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

from ..config import Settings, load_settings
from ..errors import RagError
from .security import bind_refusal, parse_keys

log = logging.getLogger("rag.server")
RESTARTS_PER_MINUTE = 10  # a worker that keeps dying at start (a bad setting, the database down) ends the server


def _bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it small responses wait ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _index_label(settings: Settings) -> str:
    from ..pg import display_url

    return display_url(settings.index) if isinstance(settings.index, str) else str(settings.index)


def _uvicorn_config(app: Any, args: argparse.Namespace) -> Any:
    import uvicorn

    # Logs (access log included) go to stderr: stdout carries only the address line (JSON with --json).
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return uvicorn.Config(app, log_level=args.log_level, log_config=log_config, timeout_keep_alive=5,
                          timeout_graceful_shutdown=10, server_header=False, proxy_headers=False)


def _announce(args: argparse.Namespace, settings: Settings, sock: socket.socket, keys: list, workers: int) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    if args.json:
        print(json.dumps({"url": url, "docs": url + "/docs", "index": _index_label(settings), "workers": workers}), flush=True)
    else:
        auth = "API keys required" if keys else "no API keys (localhost only)" if not args.insecure else "NO AUTH"
        print(f"rag serve: {url}  (chat page {url}/, API docs {url}/docs; index {_index_label(settings)}; {auth}"
              + (f"; {workers} workers" if workers > 1 else "") + ")", flush=True)


def run(args: argparse.Namespace) -> int:
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
    workers = getattr(args, "workers", 1)
    if workers > 1:
        return _supervise(args, settings, keys, workers)
    import uvicorn

    from .app import create_app

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
    _announce(args, settings, sock, keys, 1)
    server = uvicorn.Server(_uvicorn_config(app, args))
    server.run(sockets=[sock])
    return 0 if server.started else 1


# ------------------------------------------------------------------ several workers
def _worker_main(args: argparse.Namespace, settings: Settings, port: int, workers: int) -> None:
    """One worker process: its own socket on the shared port, its own app, uvicorn until SIGTERM."""
    import uvicorn

    from .app import create_app

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor decides
    try:
        sock = _bind(args.host, port, reuse_port=True)
        app = create_app(settings, bound_host=args.host, workers=workers)
    except (RagError, OSError) as err:
        print(f"rag: error: worker {os.getpid()}: {err}", file=sys.stderr, flush=True)
        os._exit(3)
    server = uvicorn.Server(_uvicorn_config(app, args))
    server.run(sockets=[sock])
    os._exit(0 if server.started else 1)


def _supervise(args: argparse.Namespace, settings: Settings, keys: list, workers: int) -> int:
    from ..stores import open_index

    # Before any worker starts: the index must open (it exists, is current, the database answers).
    try:
        open_index(settings.index).close()  # type: ignore[attr-defined]
    except RagError as err:
        print(f"rag: error: {err}", file=sys.stderr)
        return err.exit_code
    try:
        # Bound, never listening: it holds the port (and --port 0's choice) while workers come and go.
        holder = _bind(args.host, args.port, reuse_port=True, listen=False)
    except OSError as err:
        print(f"rag: error: {err}", file=sys.stderr)
        return 1
    port = holder.getsockname()[1]
    context = multiprocessing.get_context("fork")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> Any:
        process = context.Process(target=_worker_main, args=(args, settings, port, workers), daemon=False)
        process.start()
        return process

    children = [spawn() for _ in range(workers)]
    _announce(args, settings, holder, keys, workers)
    restarts: list[float] = []
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if child.exitcode is None or stopping:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > RESTARTS_PER_MINUTE:
                    print(f"rag: error: workers keep exiting ({len(restarts)} in a minute, last with code "
                          f"{child.exitcode}); stopping", file=sys.stderr, flush=True)
                    stopping, status = True, 1
                    break
                print(f"rag serve: worker {child.pid} exited with code {child.exitcode}; starting another",
                      file=sys.stderr, flush=True)
                children[i] = spawn()
    finally:
        for child in children:
            if child.exitcode is None:
                child.terminate()  # SIGTERM: uvicorn finishes in-flight requests, jobs release their leases
        deadline = time.monotonic() + 15
        for child in children:
            child.join(max(0.1, deadline - time.monotonic()))
            if child.exitcode is None:
                child.kill()
                child.join(5)
        holder.close()
    return status
