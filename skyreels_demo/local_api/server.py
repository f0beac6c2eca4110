"""How the backend is served: a port bound (port 0 becomes a real one), uvicorn built, and run in
a daemon thread until it answers.

Apart from backend.py, which holds the tasks and what they become: this is only the server's
plumbing, the same whether the backend is embedded in the app or a test, or runs on its own.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

STARTED_WITHIN_S = 15.0


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on `host`:`port` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def url_host(host: str) -> str:
    """How a client on this machine should name the bound host in a URL."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def build_server(app, *, log_level: str) -> uvicorn.Server:
    """uvicorn for `app`; at "warning" (embedded in the app or a test) it leaves the host
    program's logging alone and keeps no access log."""
    embedded = log_level == "warning"
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=not embedded,
        log_config=None if embedded else uvicorn.config.LOGGING_CONFIG,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def run_in_thread(server: uvicorn.Server, sock: socket.socket, name: str, base_url: str) -> threading.Thread:
    """Serve on `sock` in a daemon thread; return it once the server has started."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTED_WITHIN_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the local backend did not start on {base_url}")
        time.sleep(0.01)
    return thread
