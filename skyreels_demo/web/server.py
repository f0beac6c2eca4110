"""The app's own web server: one FastAPI app with the door in front, WaveSpeed's webhook route
beside the page, Gradio mounted at the root, and uvicorn's settings, all in one place.

Who a visitor is is decided by `visitors.py` alone: uvicorn is told to trust no forwarded
header (it would otherwise rewrite the client address from X-Forwarded-For for loopback peers,
before our code sees it), so SKYREELS_PROXY_HOPS is the only setting that trusts a proxy.
Connections are bounded before any request exists, per address and by a head timeout
(`connections.py`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any, AsyncIterator, Callable, Sequence

import anyio.to_thread
import gradio as gr
import uvicorn
from fastapi import FastAPI

from skyreels_demo.web import agents
from skyreels_demo.web import door
from skyreels_demo.web import gradio_compat
from skyreels_demo.web.connections import ConnectionLimits, guarded_protocol, raise_open_files_limit
from skyreels_demo.web.event_inputs import EventInputs, events_of
from skyreels_demo.config import Settings
from skyreels_demo.studio.visitors import LOCAL, Requester, identify
from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.web.upload_budget import upload_folder
from skyreels_demo.web.webhook_route import add_route

log = logging.getLogger(__name__)
# The one line a person starting the app reads, as it is (no level, no logger name): main() gives
# it a handler of its own on stdout; a program that embeds the server decides for itself.
ANNOUNCE = logging.getLogger("skyreels_demo.announce")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
# Requests served at once before uvicorn answers 503; every open connection counts, so one
# address is held far below it (connections.py), and the open-files limit is raised above it.
LIMIT_CONCURRENCY = 1000
# How often uploads no run holds are swept, and the data directory pruned, in the background.
SWEEP_EVERY_S = 60.0


def build_server_app(
    blocks: gr.Blocks,
    settings: Settings,
    hub: WebhookHub | None,
    mount: dict[str, Any],
    routes: Sequence[Callable[[FastAPI], None]] = (),
    threads: int | None = None,
) -> tuple[Any, door.Door]:
    """The ASGI app to serve: the door, in front of FastAPI with the webhook route, any other
    `routes` (each adds its own, e.g. shared takes: ui_takes.py) and Gradio. `threads` bounds
    the worker threads the server and Gradio share (None: anyio's default 40)."""
    limits = door.session_limits()
    # A laptop keeps an upload an hour, as before.
    delete_cache = limits["blocks"]["delete_cache"] if settings.shared else (600, 3600)
    gradio_compat.set_session_limits(
        blocks, sessions=limits["launch"]["state_session_capacity"], delete_cache=delete_cache
    )
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=thread_bound(threads))
    if hub is not None:
        add_route(api, hub)  # before the mount: Gradio at "/" would take every path
    for add in routes:
        add(api)
    gr.mount_gradio_app(api, blocks, path="", **mount)
    gradio_compat.guard_file_inputs(blocks)
    gate = door.Door(
        api,
        door.DoorLimits.from_settings(settings),
        visitor=door.visitor_by_address(settings.proxy_hops),
        inputs=EventInputs(events_of(blocks), roots=[upload_folder(), *settings.served_dirs]),
    )
    # The MCP server, when GRADIO_MCP_SERVER=True, as agents need it; each MCP caller is who
    # its own connection says, as a page's visitor is.
    agents.adopt(blocks, caller=lambda request: _caller(request, settings), uploads=gate)
    return gate, gate


def _caller(request: Any, settings: Settings) -> Requester:
    if not settings.shared:
        return Requester(LOCAL)
    client = getattr(request, "client", None)
    return identify(
        username=None, peer=getattr(client, "host", None), headers=dict(request.headers), proxy_hops=settings.proxy_hops
    )


def thread_bound(threads: int | None) -> Callable[[Any], Any]:
    """A lifespan that sizes the event loop's default thread limiter, which starlette (uploads,
    files) and Gradio (its steps, when blocks.max_threads is its own 40) share. It must be set
    on the serving loop itself: the limiter belongs to the loop. Without it a crowd arriving at
    once (60 uploads) grows the pool to anyio's 40 threads, each with its stack and arena."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if threads is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, threads)
            log.debug("worker threads shared by the server and Gradio: at most %d", threads)
        yield

    return lifespan


def ready_note(settings: Settings, model_title: str, price_usd: float) -> str:
    """What the runs will be, for the line that says where the app is: never the key itself."""
    if settings.has_key:
        return f" · WaveSpeed key set: each video is a {model_title} run, about ${price_usd:.2f}"
    return (
        " · offline preview: no WAVESPEED_API_KEY, so each video is a camera move over your picture, "
        "made on this machine, not SkyReels output"
    )


def address(env: dict[str, str] | None = None) -> tuple[str, int]:
    """Where to listen: Gradio's own variables, as `launch()` reads them."""
    env = os.environ if env is None else env
    host = env.get("GRADIO_SERVER_NAME", "").strip() or DEFAULT_HOST
    port = int(env.get("GRADIO_SERVER_PORT", "").strip() or DEFAULT_PORT)
    return host, port


class Server:
    """uvicorn serving the app in a thread, with the background sweeps; `wait()` blocks."""

    def __init__(
        self,
        app: Any,
        gate: door.Door,
        blocks: gr.Blocks,
        *,
        on_tick=lambda: None,
        connections: ConnectionLimits = ConnectionLimits(),
        note: str = "",
    ) -> None:
        host, port = address()
        self.note = note  # said after the address when it starts (ready_note)
        self.host, self.port = host, port
        self.blocks = blocks
        self.gate = gate
        self.on_tick = on_tick
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            # visitors.py decides who a client is; uvicorn must not rewrite it from headers.
            proxy_headers=False,
            forwarded_allow_ips="",
            # A slow client cannot hold a connection open for ever.
            timeout_keep_alive=10,
            limit_concurrency=LIMIT_CONCURRENCY,
            # At most a few connections per address, each with seconds to send its head.
            http=guarded_protocol(connections),
        )
        raise_open_files_limit(LIMIT_CONCURRENCY + 200)  # 200: the app's own files, and margin
        self.server = uvicorn.Server(config)
        self._halt = threading.Event()

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/"

    def start(self) -> "Server":
        thread = threading.Thread(target=self.server.run, name="skyreels-server", daemon=True)
        thread.start()
        while not self.server.started:
            if not thread.is_alive():
                raise SystemExit(f"The app could not listen on {self.host}:{self.port}: is another app using the port?")
            self._halt.wait(0.05)
        self._thread = thread
        # What launch() would have told Gradio: its own address, for MCP and the API page.
        gradio_compat.mark_running(self.blocks, self.url)
        threading.Thread(target=self._sweeps, name="skyreels-sweeps", daemon=True).start()
        log.debug("SkyReels V1 Studio is running on %s", self.url)
        # The one line a person starting the app reads: where to open it, and what it will make.
        ANNOUNCE.info("* Running on local URL:  %s (open it in a browser)%s", self.url, self.note)
        return self

    def _sweeps(self) -> None:
        while not self._halt.wait(SWEEP_EVERY_S):
            try:
                removed = self.gate.sweep()
                if removed:
                    log.info("removed %d uploads no run holds", removed)
                self.on_tick()
            except Exception:  # the sweeps must outlive any one bad pass
                log.exception("a background sweep failed")

    def wait(self) -> None:
        try:
            self._thread.join()
        except KeyboardInterrupt:
            self.server.should_exit = True
        self._halt.set()
