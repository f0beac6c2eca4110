"""The Film tab's and the /make_film API's handlers: a storyboard of shots made in turn, each
shot's takes side by side as they arrive, one picked a shot, the picks cut into one film; then
another take picked, the shots after it re-made from the new frame, or the film exported for an
editor. How a film is drawn is film_board.py; these only act and stream."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import gradio as gr

from skyreels_demo.errors import Stopped, StudioError
from skyreels_demo.store.records import Film
from skyreels_demo.studio.film_export import export_film, film_for_editor
from skyreels_demo.studio.film_takes import MIN_TAKES, check_takes
from skyreels_demo.studio.films import MIN_SHOTS, FilmUpdate, carry_on, film_price, make_film, pick
from skyreels_demo.studio.run_request import RunRequest, choose_seed
from skyreels_demo.studio.watching import watch
from skyreels_demo.web.agent_progress import StageReport, film_stage
from skyreels_demo.web.film_board import FilmView, checking, view_of
from skyreels_demo.web.page_input import UNEXPECTED, fit_choice, may_touch, picture, text, visitor_id
from skyreels_demo.web.ui_context import PageContext

log = logging.getLogger(__name__)

_CAPTION = re.compile(r"Shot (?P<shot>\d) · take (?P<take>\d)")  # film_board's captions
NO_FILM = "Make a film first: then its takes can be picked, and any shot made again."
_exporting = threading.Lock()


class FilmHandlers:
    """Handlers that make films."""

    def __init__(self, context: PageContext) -> None:
        self.settings = context.settings
        self.studio = context.studio
        self.model = context.studio.model
        self.requester = context.requester
        self.stops = context.stops

    def storyboard_drawn(self, takes: Any = MIN_TAKES, *prompts: str) -> tuple:
        """The storyboard as it is written, in one answer (one event, so one request a change):
        its price, which shots' rows show and which say how they start (FilmTab.drawn's order)."""
        return (self.price(takes, *prompts), *rows_shown(prompts), *starts_shown(prompts))

    def price(self, takes: Any = MIN_TAKES, *prompts: str) -> str:
        """What the storyboard would cost (its shots × takes), before anything is spent."""
        shots = sum(1 for prompt in prompts if text(prompt).strip())
        if shots == 0:
            return "Write 2 to 6 shots; each is made from the last frame of the one before."
        return film_price(self.studio, shots, _takes(takes)) + ("" if shots >= 2 else " A film needs at least 2 shots.")

    async def make_film(
        self,
        image: str | None,
        shots: str,
        seed: float | None = -1,
        api_key: str | None = None,
        takes: float | None = 1,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress: gr.Progress = gr.Progress(),
    ) -> AsyncIterator[tuple[Any, str]]:
        """Make a film longer than one clip: 2 to 6 shots, each continued from the last frame of the one before, cut into one video; takes about a minute a shot, and reports each shot's stage as it goes.

        Args:
            image: The still image the first shot starts from (JPEG, PNG, WebP, GIF, BMP or TIFF).
            shots: One shot's prompt per line, in order: 2 to 6 lines, each at most 2000 characters, saying what happens in that shot.
            seed: -1 for random seeds, or the first shot's seed, from 0 to 2147483647 (the others follow it: seed+1, seed+2, ...).
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).
            takes: How many takes of each shot, 1 to 4 (default 1), made at once with seeds following the shot's; the first to finish is the one the next shot continues from.

        Returns:
            The finished film as one MP4 (its URL, once every shot is made and cut), and each shot's line (its seed, its prompt and how it went; plain lines over MCP, HTML for API clients).
        """
        lines = [line.strip() for line in text(shots).splitlines() if line.strip()]
        first = -1 if seed is None else seed
        count = MIN_TAKES if takes is None else takes
        async for view in self._make(
            image, [(p, first) for p in lines], count, api_key, "", request, profile, follow_seed=True,
            report=StageReport(progress),
        ):
            yield view.video, view.status

    async def make_film_in_page(
        self, image, fit, api_key, visitor, takes,
        p1, p2, p3, p4, p5, p6, s1, s2, s3, s4, s5, s6, c2, c3, c4, c5, c6, i2, i3, i4, i5, i6,
        request: gr.Request, profile: gr.OAuthProfile | None = None,
    ):
        """The Film tab's "Make the film": the shots as written (up to six), each with its own
        seed and start (FilmTab.storyboard's order), `takes` takes each."""
        # Gradio hands a handler its inputs by position, with the request found by its type:
        # each shot's box, seed, start and picture are named one by one for that reason.
        shots = storyboard((p1, p2, p3, p4, p5, p6), (s1, s2, s3, s4, s5, s6), (c2, c3, c4, c5, c6), (i2, i3, i4, i5, i6))
        async for view in self._make(image, shots, takes, api_key, visitor_id(visitor), request, profile, fit=fit):
            yield view.for_page()

    async def make_shot_again(self, film_id: str, shot: float | None, seed: float | None, prompt: str | None, api_key,
                              visitor, request: gr.Request, profile: gr.OAuthProfile | None = None):
        """Make one shot of a film again (a failed one, or one not liked) with a new seed or prompt:
        its takes anew; the shots after it then follow an old frame, marked, until re-made."""
        film = self._own_film(film_id, visitor)
        number = _whole(shot)
        again_seed = None if seed is None or seed == -2 else seed
        again_prompt = text(prompt).strip() or None
        run = self._request(None, "crop", api_key, visitor_id(visitor), request, profile, threading.Event())
        updates = self._render(
            lambda r: carry_on(self.studio, film, r, again=number - 1, seed=again_seed, prompt=again_prompt), run, request
        )
        async for view in updates:
            yield view.for_page()

    async def remake(self, film_id: str, api_key, visitor, request: gr.Request, profile: gr.OAuthProfile | None = None):
        """"Re-make from here": the shots that follow an old frame made again from the new one."""
        film = self._own_film(film_id, visitor)
        run = self._request(None, "crop", api_key, visitor_id(visitor), request, profile, threading.Event())
        async for view in self._render(lambda r: carry_on(self.studio, film, r, remake=True), run, request):
            yield view.for_page()

    def pick_take(self, film_id: str, shot: float | None, take: float | None, visitor) -> tuple[Any, ...]:
        """"Pick this take": nothing is sent; the film is cut again, or the shots after it are
        marked as following an old frame."""
        film = self._own_film(film_id, visitor)
        try:
            film = pick(self.studio, film, _whole(shot) - 1, _whole(take))
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        return view_of(self.studio, film).for_page()

    def take_chosen(self, evt: gr.SelectData):
        """A take clicked in the strip: its shot and take fill "Pick this take"'s boxes."""
        value = evt.value if isinstance(evt.value, dict) else {}
        found = _CAPTION.match(text(value.get("caption")))
        if found is None:
            return gr.update(), gr.update()
        return int(found["shot"]), int(found["take"])

    def export(self, film_id: str, visitor) -> Any:
        """"Export for an editor": the zip of the cut, each pick, and its timeline three ways."""
        film = self._own_film(film_id, visitor)
        try:
            path = self._editor_zip(film)
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        return gr.update(value=str(path), visible=True)

    # -- pieces --

    def _own_film(self, film_id: Any, visitor: Any) -> Film:
        """The film the page names, if it is this browser's; else the same refusal either way."""
        try:
            film = self.studio.store.film(text(film_id))
        except KeyError:
            raise gr.Error(NO_FILM, print_exception=False) from None
        if not may_touch(self.settings.shared, film, visitor):
            raise gr.Error(NO_FILM, print_exception=False)
        return film

    def _editor_zip(self, film: Film) -> Path:
        """The film's zip for an editor, named by the film and its picks: made once per state of
        the film, kept in the take zips' folder (served from there, counted and swept with them)."""
        for_editor = film_for_editor(self.studio.store, film, self.model)
        state = hashlib.sha256("\n".join(str(shot.video) for shot in for_editor.shots).encode()).hexdigest()[:12]
        out = self.settings.takes_dir / film.id / f"{film.id}-{state}.zip"
        with _exporting:
            if out.is_file():
                return out
            return export_film(for_editor, out, within=self.settings.data_dir)

    def _request(self, image, fit, api_key, visitor, request, profile, stop) -> RunRequest:
        return RunRequest(
            "",
            picture(image),
            fit=fit_choice(fit),
            api_key=text(api_key) or None,
            requester=self.requester(request, profile),
            visitor=visitor,
            stop=stop,
        )

    async def _make(self, image, shots, takes, api_key, visitor, request, profile, *, fit="crop", follow_seed=False,
                    report=None) -> AsyncIterator[FilmView]:
        if follow_seed and shots:
            # The first seed is checked as /generate checks one (the same sentence), then the
            # others follow it, wrapping at the top as variations' seeds do.
            asked = shots[0][1]
            try:
                first = choose_seed(asked, self.model)
            except StudioError as exc:
                raise gr.Error(exc.sentence, print_exception=False) from None
            if not (asked is None or asked == "" or float(asked) == -1):
                seeds = self.model.following_seeds(first, len(shots))
                shots = [(prompt, seed) for (prompt, _), seed in zip(shots, seeds)]
        stop = threading.Event()
        film_request = self._request(image, fit, api_key, visitor, request, profile, stop)
        async for view in self._render(lambda run: make_film(self.studio, run, shots, takes), film_request, request, report):
            yield view

    async def _render(
        self, updates_of, film_request: RunRequest, request, report: StageReport | None = None
    ) -> AsyncIterator[FilmView]:
        """The film as it is made, redrawn at each update (film_board.view_of).

        A step at a time in a worker thread, but holding none while a shot waits in line.
        `report`: an API call's progress, each shot's stage in words (agent_progress.film_stage)."""
        session = self.stops.hold(request, film_request.stop)
        live: dict[tuple[int, int], FilmUpdate] = {}
        last: FilmUpdate | None = None
        try:
            yield checking()
            updates = watch(
                updates_of(film_request), self.studio.line, film_request.stop,
                event_of=lambda update: update.event, with_place=lambda update, place: replace(update, event=place),
            )
            async for update in updates:
                last = update
                if report is not None:
                    report(film_stage(update))
                    if update.shot is None and update.video_path is not None:
                        # Gradio sends progress every 10 ms: let "cut" (1.0) leave before the result.
                        await asyncio.sleep(0.05)
                if update.shot is not None:
                    live[(update.shot, update.take or 0)] = update
                yield view_of(self.studio, update.film, live, update)
            if last is not None and last.error is not None and not isinstance(last.error, Stopped):
                raise gr.Error(last.error.sentence, print_exception=False)
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            log.exception("unexpected failure in a film")
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self.stops.release(session, film_request.stop)


def rows_shown(prompts) -> tuple:
    """The storyboard grows as it is written: the first two shots' rows, then one more past the
    last shot written (up to six), so no shot hides in a closed box."""
    written = [index for index, prompt in enumerate(prompts) if text(prompt).strip()]
    shown = max(MIN_SHOTS, min(len(prompts), (written[-1] + 2) if written else 0))
    return tuple(gr.update(visible=index < shown) for index in range(MIN_SHOTS, len(prompts)))


def starts_shown(prompts) -> tuple:
    """Each shot after the first says how it starts once it is written."""
    return tuple(gr.update(visible=bool(text(prompt).strip())) for prompt in prompts[1:])


def storyboard(prompts, seeds, starts, pictures) -> list[dict]:
    """The shots as written: every shot with a prompt, its seed, how it starts (the first: on
    the film's picture) and its own picture; studio's check_shots says what is wrong with them."""
    starts, pictures = (None, *starts), (None, *pictures)
    return [
        {"prompt": text(p), "seed": -1 if s is None else s, "start": text(start) or "continuous", "image": picture(image)}
        for p, s, start, image in zip(prompts, seeds, starts, pictures)
        if text(p).strip()
    ]


def _takes(value: Any) -> int:
    try:
        return check_takes(value)
    except StudioError:
        return MIN_TAKES


def _whole(value: Any) -> int:
    """A number box's whole number (0 for anything else: the studio refuses it with the range)."""
    return int(value) if isinstance(value, (int, float)) and float(value).is_integer() else 0
