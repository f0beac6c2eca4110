"""A link's card: what a chat, a mail or a social site shows for a link to the app or to a take.

Gradio's page carries Gradio's own Open Graph tags ("Gradio", "Click to try out the app!", a
literal "{url}"). The app's server answers the page's address with Gradio's page whose head
carries the app's tags instead (gradio_compat.with_link_card): for a shared take's link
(`/?take=<token>`) its prompt as the title, the app's name and a line as the description, its
first frame as the picture (`/takes/<token>/poster.jpg`, served here, under the same rules as
its video) and the link's own address; for the app itself, or a link that is not shared (any
more), the app's name and what it does, and never a word of a take.
"""

from __future__ import annotations

import html
import io
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, quote

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from skyreels_demo.web import gradio_compat
from skyreels_demo.studio import takes
from skyreels_demo.store.records import Mode, Run
from skyreels_demo.web.ui_context import PageContext

log = logging.getLogger(__name__)

APP_NAME = "SkyReels V1 Studio"
TITLE_CHARS = 90  # link cards show about this much of a title
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
POSTERS_KEPT = 32  # first frames kept in memory (about 60 kB each), the most recent first


def app_address(public_url: str | None, headers: dict[str, str], scheme: str) -> str:
    """The app's own address for a link: the public one (a Space's), else the one asked for."""
    if public_url:
        return public_url.rstrip("/")
    host = headers.get("host", "")
    if not _HOST.fullmatch(host or ""):
        host = "127.0.0.1:7860"
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{host}"


def cut(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def app_tags(base: str, model: Any) -> str:
    """The app's own card."""
    line = (
        f"Turn a still picture and a prompt into a {model.duration_s:.0f}-second film-style clip "
        f"with {model.title}, or try it offline first."
    )
    return _tags(
        {"og:type": "website", "og:site_name": APP_NAME, "og:title": APP_NAME, "og:description": line,
         "og:url": f"{base}/"},
        {"twitter:card": "summary", "twitter:title": APP_NAME, "twitter:description": line, "description": line},
    )


def take_tags(base: str, token: str, run: Run, model: Any, size: tuple[int, int] | None) -> str:
    """A shared take's card: its prompt, the app and a line, its first frame, its own address."""
    prompt = cut(takes.typed_prompt(run, model), TITLE_CHARS) or "A shared take"
    seconds = f"{model.duration_s:.0f}-second"
    if run.mode == Mode.PREVIEW:
        line = (f"{APP_NAME} · an offline preview of this prompt (a camera move over the picture, "
                f"seed {run.seed}), not {model.title} output. Open it to make one like it.")
    else:
        line = f"{APP_NAME} · a {seconds} {model.title} clip of this prompt (seed {run.seed}). Open it to make one like it."
    link = f"{base}/?take={quote(token)}"
    poster = f"{base}/takes/{quote(token)}/poster.jpg"
    video = f"{base}/takes/{quote(token)}/video.mp4"
    og = {
        "og:type": "video.other", "og:site_name": APP_NAME, "og:title": prompt, "og:description": line,
        "og:url": link, "og:image": poster, "og:image:type": "image/jpeg",
        "og:image:alt": f"The first frame of the take: {prompt}",
        "og:video": video, "og:video:type": "video/mp4",
    }
    if size is not None:
        og.update({"og:image:width": str(size[0]), "og:image:height": str(size[1]),
                   "og:video:width": str(size[0]), "og:video:height": str(size[1])})
    named = {"twitter:card": "summary_large_image", "twitter:title": prompt, "twitter:description": line,
             "twitter:image": poster, "description": line}
    return _tags(og, named)


def _tags(properties: dict[str, str], names: dict[str, str]) -> str:
    def attr(value: str) -> str:
        return html.escape(value, quote=True)

    rows = [f'<meta property="{attr(k)}" content="{attr(v)}" />' for k, v in properties.items()]
    rows += [f'<meta name="{attr(k)}" content="{attr(v)}" />' for k, v in names.items()]
    rows.append(f"<title>{html.escape(properties['og:title'])}</title>")
    return "\n".join(rows) + "\n"


class Posters:
    """A shared take's first frame as a JPEG, made once per video and kept a while in memory."""

    def __init__(self, kept: int = POSTERS_KEPT) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int, int], tuple[bytes, tuple[int, int]]] = OrderedDict()
        self._most = kept

    def of(self, video: str) -> tuple[bytes, tuple[int, int]]:
        """(JPEG bytes, (width, height)) of the video's first frame; StudioError if it has none."""
        from skyreels_demo.studio.frames import frame_of  # PyAV, only when a card or a poster is asked for

        stat = Path(video).stat()
        key = (video, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        picture = frame_of(video, 0)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85, optimize=True)
        made = (buffer.getvalue(), picture.size)
        with self._lock:
            self._kept[key] = made
            while len(self._kept) > self._most:
                self._kept.popitem(last=False)
        return made


def card_routes(context: PageContext) -> Callable[[FastAPI], None]:
    """The page's link cards (a middleware on the page's address) and `/takes/<token>/poster.jpg`."""
    store, model, settings = context.studio.store, context.studio.model, context.settings
    posters = Posters()

    def shared(token: Any) -> Run | None:
        return takes.shared_take(store, token, sharing=settings.sharing)

    def card(query: str, headers: dict[str, str], scheme: str) -> str:
        base = app_address(settings.public_url, headers, scheme)
        token = (parse_qs(query).get("take") or [None])[0]
        run = shared(token) if token is not None else None
        if run is None:
            return app_tags(base, model)
        try:
            size = posters.of(run.video_path)[1]
        except Exception:  # a card never fails the page: the picture's size is only a hint
            log.info("no first frame for the card of a shared take", exc_info=True)
            size = None
        return take_tags(base, token, run, model, size)

    async def poster(token: str):
        run = shared(token)
        if run is None:
            return JSONResponse({"error": takes.NOT_SHARED if settings.sharing else takes.SHARING_OFF}, status_code=404)
        try:
            data, _size = await anyio.to_thread.run_sync(posters.of, run.video_path)
        except Exception:
            log.info("no first frame for a shared take's poster", exc_info=True)
            return JSONResponse({"error": takes.NOT_SHARED}, status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=300"})

    def add(app: FastAPI) -> None:
        app.add_api_route("/takes/{token}/poster.jpg", poster, methods=["GET"])
        app.add_middleware(LinkCards, card=card)

    return add


class LinkCards:
    """ASGI: a GET of the page's address is answered with the page carrying the app's card (and
    the page's early fixes: gradio_compat.served_page)."""

    def __init__(self, app: Any, card: Callable[[str, dict[str, str], str], str]) -> None:
        self.app = app
        self.card = card

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") not in ("", "/"):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def hold(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._answer(scope, start, b"".join(body), send)
            else:
                await send(message)

        await self.app(scope, receive, hold)

    async def _answer(self, scope: dict, start: dict | None, page: bytes, send: Callable[[dict], Awaitable[None]]) -> None:
        assert start is not None
        headers = [(k.lower(), v) for k, v in start.get("headers", [])]
        kind = dict(headers).get(b"content-type", b"")
        if start.get("status") == 200 and kind.startswith(b"text/html") and b"content-encoding" not in dict(headers):
            try:
                asked = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
                tags = await anyio.to_thread.run_sync(
                    self.card, scope.get("query_string", b"").decode("latin-1"), asked, scope.get("scheme", "http")
                )
                page = gradio_compat.served_page(page.decode("utf-8"), tags).encode("utf-8")
                headers = [(k, v) for k, v in headers if k != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
            except Exception:  # the page without its card, never no page
                log.exception("could not put the link card in the page")
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": page})
