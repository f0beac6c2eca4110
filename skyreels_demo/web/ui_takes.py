"""History's takes: found by prompt words, kept with a star, compared side by side, shared by a
link of their own, downloaded as a zip and made again; and the read-only view a share link opens.

Who may touch a take is the one rule every handler asks (`page_input.may_touch`: in shared
mode, only the browser whose History holds it). The shared view (`?take=<token>`) shows one take's video,
prompt and seed, and nothing else: no other run, no key, no server path (its video is served
under the token at `/takes/<token>/video.mp4`, the API's answer at `/takes/<token>`).
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse

from skyreels_demo.studio import takes
from skyreels_demo.errors import StudioError
from skyreels_demo.web.page_input import NOT_YOURS, own_run, text
from skyreels_demo.store.records import Run
from skyreels_demo.web.status_board import caption, picture_of, shown, status_line
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.web.compare_view import MAX_COMPARE, MIN_COMPARE, compare_html, compare_note
from skyreels_demo.web.ui_history import HistoryHandlers
from skyreels_demo.web.ui_notes import CHOOSE_A_ZIP, DOWNLOAD, SHARE, WITHDRAW, note, pick_a_take

log = logging.getLogger(__name__)

KEEP, KEPT = "☆ Keep this take", "★ Kept (click to unkeep)"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

class TakeHandlers:
    """Handlers of History's takes and of the shared view."""

    def __init__(self, context: PageContext) -> None:
        self.settings = context.settings
        self.studio = context.studio
        self.store = context.studio.store
        self.model = context.studio.model
        self.visits = HistoryHandlers(context)  # the runs History lists are the takes found here

    # -- finding and keeping --

    def history(self, visitor: str | None, words: str | None, kept_only: bool | None, ticked: Any = None,
                request: gr.Request = None):
        """History's gallery, its runs' ids and the Compare… choices, found by words and kept;
        `ticked`: the takes ticked to compare, kept ticked while they are still listed."""
        runs = [
            run for run in self.visits.visible_runs(visitor, words=text(words), kept=kept_only is True)
            if shown(run)
        ]
        items = [
            (picture_of(run), ("★ " if run.kept else "") + caption(run, self.model))
            for run in runs
        ]
        choices = [(self._choice_label(run), run.id) for run in runs if run.has_video]
        listed = {run_id for _, run_id in choices}
        still = [run_id for run_id in ticked if run_id in listed] if isinstance(ticked, list) else []
        return items, [run.id for run in runs], gr.update(choices=choices, value=still)

    def picked(self, run_id: str, visitor: str | None, request: gr.Request):
        """A take was opened in History: its star, its live link, no stale download or note (its
        buttons, disabled in the browser while the pick was on its way, are enabled there)."""
        ready = tuple(gr.update(interactive=True) for _ in range(TAKE_BUTTONS - 1))
        run = self._own(run_id, visitor)
        if run is None:
            return (gr.update(value=KEEP, interactive=True), *ready, _link(""), gr.update(value=None, visible=False), "")
        token = self.store.live_share(run.id) if self.settings.sharing else None
        link = takes.share_link(self._app_url(request), token) if token else ""
        keep = gr.update(value=KEPT if run.kept else KEEP, interactive=True)
        return (keep, *ready, _link(link), gr.update(value=None, visible=False), "")

    def keep(self, run_id: str, visitor: str | None, words: str | None, kept_only: bool | None, ticked: Any,
             request: gr.Request):
        """★ Keep: the take's files are never swept to make room; pressed again, unkept."""
        run, said = self._picked(run_id, visitor, KEEP)
        if run is None:
            return gr.update(), gr.update(), gr.update(), gr.update(), said
        run = self.store.keep(run.id, not run.kept)
        said = ("★ Kept: this take's video, picture and zip stay when the app makes room on its disk."
                if run.kept else "No longer kept: this take may be swept, oldest first, when the app needs room.")
        items, ids, compare = self.history(visitor, words, kept_only, ticked, request)
        if run.id in ids:
            # Still listed, so the takes to compare are the same: only the star in a label changed.
            # Their ticks are left as the page has them (a tick made while Keep was on its way
            # would be undone by the ticks Keep was sent).
            compare = gr.update(choices=compare["choices"])
        return gr.update(value=KEPT if run.kept else KEEP), items, ids, compare, said

    # -- sharing --

    def share(self, run_id: str, visitor: str | None, request: gr.Request):
        """(the link box, the note): a link of the take's own, or what to do first."""
        if not self.settings.sharing:
            return gr.update(), note("Sharing is turned off on this app (SKYREELS_SHARING=0).")
        run, said = self._picked(run_id, visitor, SHARE)
        if run is None:
            return gr.update(), said
        if not run.has_video:
            return gr.update(), note("Only a finished take with its video can be shared: pick one with a video.")
        link = takes.share_link(self._app_url(request), takes.share(self.store, run))
        return _link(link), "Anyone with this link can watch this take (its video, prompt and seed), nothing else of yours. Withdraw the link to end it."

    def withdraw(self, run_id: str, visitor: str | None, request: gr.Request):
        run, said = self._picked(run_id, visitor, WITHDRAW)
        if run is None:
            return gr.update(), said
        withdrawn = self.store.withdraw_shares(run.id)
        return _link(""), ("The link is withdrawn: it now shows that the take is not shared." if withdrawn
                           else note(f"This take has no link to withdraw: press “{SHARE}” to make one."))

    # -- export, and making it again --

    def download(self, run_id: str, visitor: str | None, request: gr.Request):
        """(the zip, the note): the take's zip, which the page then downloads (one click)."""
        run, said = self._picked(run_id, visitor, DOWNLOAD)
        if run is None:
            return gr.update(value=None, visible=False), said
        # Made once, named by the run, kept in the data directory (counted and swept there) and
        # served from where it is: clicking again hands out the same file.
        try:
            path = takes.take_zip(run, self.model, self.settings.takes_dir)
        except StudioError as exc:
            return gr.update(value=None, visible=False), note(exc.sentence)
        return gr.update(value=str(path), visible=True), "The take's zip is downloading: its video, picture and settings. Make it again from it below, any time."

    def make_again(self, upload: Any, request: gr.Request):
        """A downloaded take's zip fills Create with its prompt, seed, image, framing and prefix.

        (prompt, image, seed, fit, prefix, tabs, status, note): refused, Create is left alone and
        the note under the button says why."""
        path = upload if isinstance(upload, str) else getattr(upload, "name", None)
        if not isinstance(path, str) or not path:
            return (*_UNCHANGED_CREATE, note(CHOOSE_A_ZIP))
        try:
            take = takes.read_take(path, self.model)
        except StudioError as exc:
            return (*_UNCHANGED_CREATE, note(exc.sentence))
        said = status_line("Create holds the take again: press Generate to make it.")
        return (*self._fill_create(take.prompt, take.image.data, take.seed, take.fit, take.fps_prefix), said, "")

    # -- comparing --

    def compare(self, run_ids: Any, visitor: str | None, request: gr.Request) -> str:
        """#compare's content: the ticked takes side by side, or a sentence saying what to tick."""
        ids = [run_id for run_id in run_ids if isinstance(run_id, str)] if isinstance(run_ids, list) else []
        if not MIN_COMPARE <= len(ids) <= MAX_COMPARE:
            ticked = "no take is ticked" if not ids else ("one take is ticked" if len(ids) == 1 else f"{len(ids)} are ticked")
            return compare_note(f"Tick {MIN_COMPARE} to {MAX_COMPARE} takes under “Compare…”, then press Compare: {ticked}.")
        runs = [self._own(run_id, visitor) for run_id in dict.fromkeys(ids)]
        runs = [run for run in runs if run is not None and run.has_video]
        if len(runs) < MIN_COMPARE:
            return compare_note("Those takes have no videos to compare: tick finished ones.")
        return compare_html(runs, self.model)

    def compare_variations(self, grid: Any, visitor: str | None, request: gr.Request):
        """The variations just made, in the same side-by-side view (on History's tab); fewer than
        two made, the note beside the button says so and the page stays on Create."""
        runs = []
        for item in grid if isinstance(grid, list) else []:
            path = _gallery_path(item)
            run = self.store.by_task(Path(path).stem) if path else None
            if run is not None:
                run = self._own(run.id, visitor)
            if run is not None and run.has_video and run not in runs:
                runs.append(run)
        if len(runs) < MIN_COMPARE:
            return gr.update(), gr.update(), note("Make at least two variations first, then compare them.")
        return compare_html(runs[:MAX_COMPARE], self.model), gr.Tabs(selected="history"), ""

    # -- the shared view --

    def open_shared(self, request: gr.Request):
        """On load: `?take=<token>` shows that take (or says it is not shared); else nothing."""
        params = dict(getattr(request, "query_params", None) or {}) if request is not None else {}
        if "take" not in params:
            return gr.update(visible=False), "", "", gr.update(visible=False)
        token = params.get("take")
        run = takes.shared_take(self.store, token, sharing=self.settings.sharing)
        if run is None:
            message = takes.NOT_SHARED if self.settings.sharing else takes.SHARING_OFF
            return gr.update(visible=True), not_shared_html(message), "", gr.update(visible=False)
        return gr.update(visible=True), shared_html(run, token, self.model), token, gr.update(visible=True)

    def make_one_like_it(self, token: str, request: gr.Request):
        """Create filled with the shared take's prompt, seed and image, for the viewer's own run.

        (prompt, image, seed, fit, prefix, tabs, status, note): a link withdrawn since the page
        opened leaves Create alone, and the note under the button says so."""
        run = takes.shared_take(self.store, text(token), sharing=self.settings.sharing)
        if run is None or not run.image_path or not Path(run.image_path).is_file():
            return (*_UNCHANGED_CREATE, note(takes.NOT_SHARED))
        said = status_line("Create holds the shared take's prompt, picture and seed: press Generate to make one of your own.")
        filled = self._fill_create(
            takes.typed_prompt(run, self.model), Path(run.image_path).read_bytes(), run.seed, run.fit, bool(run.fps_prefix)
        )
        return (*filled, said, "")

    # -- helpers --

    def _picked(self, run_id: str, visitor: str | None, button: str) -> tuple[Run | None, str]:
        """The picked take, or None and the note saying what to do before pressing `button` again."""
        if not text(run_id):
            return None, note(pick_a_take(button))
        run = self._own(run_id, visitor)
        return (run, "") if run is not None else (None, note(NOT_YOURS))

    def _own(self, run_id: object, visitor: str | None) -> Run | None:
        return own_run(self.store, self.settings.shared, run_id, visitor)

    def _choice_label(self, run: Run) -> str:
        prompt = takes.typed_prompt(run, self.model)
        prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        return f"{'★ ' if run.kept else ''}seed {run.seed} · {prompt}"

    def _app_url(self, request: gr.Request | None) -> str:
        """The app's own address for a link: the public one (a Space's), else the one asked for."""
        if self.settings.public_url:
            return self.settings.public_url
        headers = {k.lower(): v for k, v in dict(getattr(request, "headers", None) or {}).items()}
        host = headers.get("host", "")
        if not _HOST.fullmatch(host or ""):
            host = "127.0.0.1:7860"
        scheme = urlsplit(str(getattr(request, "url", "") or "")).scheme
        return f"{scheme if scheme in ('http', 'https') else 'http'}://{host}"

    def _fill_create(self, prompt: str, jpeg: bytes, seed: int, fit: str, fps_prefix: bool):
        # The viewer's own copy, in the page's upload folder like any picture they drop in:
        # no path of the data directory reaches their page.
        folder = Path(gr.utils.get_upload_folder()) / hashlib.sha256(jpeg).hexdigest()[:40]
        folder.mkdir(parents=True, exist_ok=True)
        image = folder / "take.jpg"
        if not image.exists():
            with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as part:
                part.write(jpeg)
            Path(part.name).replace(image)
        return prompt, str(image), seed, fit, fps_prefix, gr.Tabs(selected="create")


# The picked take's buttons, in the order `picked` answers for them: Keep first.
TAKE_BUTTONS = 7
# Create's fields (prompt, image, seed, framing, prefix, tab, status) left as they are.
_UNCHANGED_CREATE = tuple(gr.update() for _ in range(7))


def _link(link: str):
    """The share link's box: shown only while there is a link to copy."""
    return gr.update(value=link, visible=bool(link))


def _gallery_path(item: Any) -> str | None:
    """A gallery item's video (or image) path, in any of the shapes Gradio hands them over."""
    if isinstance(item, (list, tuple)) and item:
        item = item[0]
    if isinstance(item, dict):
        media = item.get("video") or item.get("image") or item
        item = media.get("path") if isinstance(media, dict) else media
    return item if isinstance(item, str) else None


def shared_html(run: Run, token: str, model) -> str:
    """The read-only view of a shared take: its video, its prompt as text, its seed."""
    prompt = html.escape(takes.typed_prompt(run, model))
    return (
        '<div class="shared-take">'
        '<h2 style="margin:0 0 8px">A shared take</h2>'
        f'<video src="takes/{quote(token)}/video.mp4" controls autoplay muted loop playsinline'
        ' style="width:100%;max-width:720px;border-radius:8px;background:#000"></video>'
        f'<p class="shared-prompt" style="font-size:1.05em;margin:10px 0 4px">{prompt}</p>'
        f'<p class="shared-seed" style="margin:0">Seed {run.seed} · {html.escape(model.title)}</p>'
        '</div>'
    )


def not_shared_html(message: str) -> str:
    return f'<div class="shared-take not-shared" role="status"><h2 style="margin:0 0 8px">Not shared</h2><p>{html.escape(message)}</p></div>'


def share_routes(context: PageContext) -> Callable[[FastAPI], None]:
    """`GET /takes/<token>` (the shared take as JSON) and `/takes/<token>/video.mp4`, both 404
    for a token that is malformed, unknown, withdrawn, or while sharing is off."""
    store, model, settings = context.studio.store, context.studio.model, context.settings

    def found(token: str) -> Run | None:
        return takes.shared_take(store, token, sharing=settings.sharing)

    def not_shared() -> JSONResponse:
        return JSONResponse({"error": takes.NOT_SHARED if settings.sharing else takes.SHARING_OFF}, status_code=404)

    async def take(token: str):
        run = found(token)
        if run is None:
            return not_shared()
        return JSONResponse({
            "prompt": takes.typed_prompt(run, model),
            "seed": run.seed,
            "fit": run.fit,
            "fps_prefix": bool(run.fps_prefix),
            "model": run.model or model.name,
            "video": f"/takes/{token}/video.mp4",
        })

    async def video(token: str):
        run = found(token)
        if run is None:
            return not_shared()
        return FileResponse(run.video_path, media_type="video/mp4", filename="take.mp4", content_disposition_type="inline")

    def add(app: FastAPI) -> None:
        app.add_api_route("/takes/{token}", take, methods=["GET"])
        app.add_api_route("/takes/{token}/video.mp4", video, methods=["GET"])

    return add
