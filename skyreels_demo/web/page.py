"""The Gradio app: one studio, its handlers and its page; the page is drawn a tab at a time
(tabs/, page_parts.py), then wired (page_wiring.py); handlers only render `Studio` events.

No HTTP here. A visitor's own key lives only in this process's memory for the length of a run:
never in the page's config, Gradio's session state (KeyBox), the browser (run history is off),
the run store or a log line.
Who a visitor is for caps is decided here from what the server sees (a signed-in account, else
the client's address: visitors.py), never from a value the page sends; the page's private id
only groups a browser's History.
"""

from __future__ import annotations

import logging
import sys
import os
import secrets
from pathlib import Path
from typing import Any

import gradio as gr

from skyreels_demo import images
from skyreels_demo.config import Settings, refused_public_url
from skyreels_demo.models import SKYREELS_V1, ModelSpec
from skyreels_demo.studio.account import BalanceWatch
from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.studio.keys import install_key_mask
from skyreels_demo.studio.watching import few_memory_arenas
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import LOCAL, Requester, identify
from skyreels_demo.web import page_wiring as wiring
from skyreels_demo.web import gradio_compat
from skyreels_demo.web.connections import ConnectionLimits
from skyreels_demo.web.page_parts import Page, api_inputs, header, shared_view
from skyreels_demo.web.server import ANNOUNCE, Server, build_server_app, ready_note
from skyreels_demo.web.share_card import card_routes
from skyreels_demo.web.status_board import PRUNED_PICTURE
from skyreels_demo.web.tabs.create import create_tab
from skyreels_demo.web.tabs.film import film_tab
from skyreels_demo.web.tabs.history import history_tab
from skyreels_demo.web.theme import studio_theme
from skyreels_demo.web.ui_assist import AssistHandlers
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.web.ui_films import FilmHandlers
from skyreels_demo.web.ui_history import HistoryHandlers
from skyreels_demo.web.ui_runs import RunHandlers
from skyreels_demo.web.ui_takes import TakeHandlers, share_routes

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("ui.css")


class StudioApp:
    """One app process: the studio of one video model, its page's handlers, and the Blocks."""

    def __init__(
        self,
        settings: Settings | None = None,
        studio: Studio | None = None,
        webhooks: WebhookHub | None = None,
        model: ModelSpec = SKYREELS_V1,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.model = studio.model if studio is not None else model
        self.preview = OfflinePreview(self.settings, self.model)
        self.studio = studio or Studio(self.settings, self.model, start_preview=self.preview, webhooks=webhooks)
        served = list(self.settings.served_dirs)
        for folder in served:
            folder.mkdir(parents=True, exist_ok=True)
        # Gradio serves videos, images, films, continue frames and take zips from where they are
        # kept: one copy each, never a copy per render. Only these folders (names unguessable)
        # are served, not the run store; and the one picture History shows for a run whose files
        # were pruned.
        gr.set_static_paths([*served, PRUNED_PICTURE])
        context = PageContext(self.settings, self.studio, self.requester)
        self.runs = RunHandlers(context)
        self.assist = AssistHandlers(context)
        self.history = HistoryHandlers(context)
        self.films = FilmHandlers(context)
        self.takes = TakeHandlers(context)
        self.share_routes = share_routes(context)  # /takes/<token>, served beside the page
        self.card_routes = card_routes(context)  # the page's link cards, a take's poster (share_card.py)

    def requester(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Requester:
        """Who is asking, as the server decides it (visitors.py); never what a client sends."""
        if not self.settings.shared:
            return Requester(LOCAL)
        client = getattr(request, "client", None)
        return identify(
            username=getattr(profile, "username", None) if profile is not None else None,
            peer=getattr(client, "host", None),
            headers=dict(request.headers) if request is not None and request.headers is not None else {},
            proxy_hops=self.settings.proxy_hops,
        )

    def build(self) -> gr.Blocks:
        return build_page(self)


def build_page(app: StudioApp) -> gr.Blocks:
    """The page: layout first, top to bottom as it is drawn, a function per tab; then the wiring."""
    settings, model = app.settings, app.model
    with gr.Blocks(
        title="SkyReels V1 Studio",
        analytics_enabled=False,
        # Uploads and other files Gradio keeps for a page go after an hour, checked every 10 min.
        delete_cache=(600, 3600),
    ) as demo:
        visitor = gr.BrowserState(None, storage_key="skyreels-visitor", secret=browser_secret(settings))
        header(settings, model, app.studio.prices.owner(model))  # the price asked of WaveSpeed at start-up
        shared = shared_view()
        with gr.Tabs() as tabs:
            create = create_tab(settings, model, app.assist)
            history = history_tab()
            film = film_tab(model, app.films)
        page = Page(visitor, tabs, shared, create, history, film, api_inputs(model))
        wiring.wire_picture_and_seed(app, page)
        run_event = wiring.wire_runs(app, page)
        wiring.wire_variations(app, page)
        wiring.wire_assist(app, page)
        wiring.wire_history(app, page, run_event)
        wiring.wire_continue(app, page)
        wiring.wire_film(app, page)
        wiring.wire_film_takes(app, page)
        wiring.wire_takes(app, page)
        wiring.wire_page_load(app, page, demo)
    # api_open=False: every call goes through the queue and its limits, never around them (/run).
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrent_tasks, api_open=False)
    return demo


def browser_secret(settings: Settings) -> str:
    """The key that encrypts each browser's History id: made once, kept in the data directory,
    so History survives a restart (Gradio would pick a new random one every start)."""
    path = settings.browser_secret_path
    try:
        return path.read_text(encoding="utf-8").strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()  # another process made it first
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(value)
    return value


def mount_options(settings: Settings, run_s: float = 60.0) -> dict[str, Any]:
    """How Gradio is mounted: no run history in the browser, no SSR, our theme, CSS and scripts
    (`run_s`: what a run usually takes, for a place in Gradio's own queue: ui_polish.py)."""
    return dict(
        run_history=False,
        ssr_mode=False,
        footer_links=["api"],
        theme=studio_theme(),
        css=CSS_PATH.read_text(encoding="utf-8"),
        head=gradio_compat.ACCESSIBLE_MARKUP_HEAD
        + gradio_compat.queue_place_head(run_s, settings.max_concurrent_tasks, settings.queue_size, settings.submits_per_minute),
        # Our handlers raise gr.Error with a sentence; anything else must not show its raw text.
        show_error=False,
        # Refused at the door: no upload larger than the app would prepare.
        max_file_size=images.MAX_BYTES,
        # Videos and images are served in place from these (gr.Video also asks for permission).
        allowed_paths=[*(str(folder) for folder in settings.served_dirs), str(PRUNED_PICTURE)],
    )


def events_at_once(blocks: gr.Blocks, default_limit: int) -> int:
    """Gradio's cap on events in progress at once (its queue's max_thread_count, named for
    threads though a run waiting in our line holds none): every concurrency group's own limit,
    so that no event waits in Gradio's queue while its own group has room."""
    groups: dict[str, int] = {}
    for fn in blocks.fns.values():
        if not fn.queue:
            continue
        limit = default_limit if fn.concurrency_limit == "default" else fn.concurrency_limit
        limit = QUICK_EVENT_THREADS if limit is None else limit
        groups[fn.concurrency_id] = min(groups.get(fn.concurrency_id, limit), limit)
    return sum(groups.values())


QUICK_EVENT_THREADS = 4  # uploads, previews, History, files: steps of milliseconds


def worker_threads(settings: Settings) -> int:
    """The worker threads the server and Gradio share (server.py): uploads, files and Gradio's
    sync handlers. Runs and films take theirs elsewhere (line.py: a few for a crowd arriving,
    one per run past its turn), and one waiting in line holds none. What may hold one of these
    for long is capped at the task cap (History's "Finish with my key") or at 2 (a key check, a
    prompt suggestion, a frame to continue from): room for the finishes, as many again for those
    others, and a few quick events, so that a crowd's burst of uploads cannot grow the pool to
    anyio's default 40. At worst, quick events wait their turn behind a key
    check or a suggestion (seconds); none of them waits on another."""
    return 2 * settings.max_concurrent_tasks + QUICK_EVENT_THREADS


def main(settings: Settings | None = None) -> None:
    """Serve the app: with `settings` as read from the environment (app.py reads them first)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    said = logging.StreamHandler(sys.stdout)  # "Running on local URL", as it is, on stdout
    said.setFormatter(logging.Formatter("%(message)s"))
    ANNOUNCE.addHandler(said)
    ANNOUNCE.propagate = False
    few_memory_arenas()  # before any worker thread starts: a waiting crowd stays small (line.py)
    install_key_mask()
    settings = settings or Settings.from_env()
    refused = refused_public_url()
    if refused:
        log.warning(refused)  # runs poll instead: settings.public_url is None
    hub = WebhookHub(public_url=settings.public_url)
    app = StudioApp(settings, webhooks=hub, model=SKYREELS_V1)
    closed = app.studio.store.close_abandoned()
    if closed:
        log.info("closed %d runs that a previous process left before their submit", closed)
    app.studio.keep_within_budget()  # the first call prunes at once
    app.studio.start_follower()  # finish runs left over from before a restart
    # The owner hears (in the log) when credit runs low, counted in videos at WaveSpeed's price.
    BalanceWatch(app.settings, app.model, price=lambda: app.studio.prices.owner(app.model)).start()
    blocks = app.build()
    # Gradio's own 40 means "the serving loop's shared limiter" (Blocks.create_limiter), so its
    # steps and the server's (uploads, files) share the one pool build_server_app sizes.
    gradio_compat.share_threads(blocks, events_at_once(blocks, settings.max_concurrent_tasks))
    gradio_compat.pace_queue(blocks)  # idle, it looks for work 50 times a second, not 1,000
    served, gate = build_server_app(
        blocks, settings, hub, mount_options(settings, app.studio.slot_s()), routes=[app.share_routes, app.card_routes], threads=worker_threads(settings)
    )
    server = Server(
        served, gate, blocks, on_tick=app.studio.keep_within_budget, connections=ConnectionLimits.from_settings(settings),
        note=ready_note(settings, SKYREELS_V1.title, SKYREELS_V1.price_usd),
    ).start()
    # WaveSpeed's webhooks arrive at the same server; the offline preview's over loopback.
    hub.local_url = server.url.rstrip("/")
    server.wait()
