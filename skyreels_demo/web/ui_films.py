"""The Film tab's and the /make_film API's handlers: a storyboard of shots made in turn, each
from the last frame of the one before, on a timeline as they arrive, then cut into one film."""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from dataclasses import replace
from typing import Any, AsyncIterator

import gradio as gr

from skyreels_demo.web.agent_progress import StageReport, film_stage
from skyreels_demo.errors import Stopped, StudioError
from skyreels_demo.studio.films import MIN_SHOTS, FilmUpdate, carry_on, film_price, make_film
from skyreels_demo.status import FilmStatus
from skyreels_demo.studio.watching import watch
from skyreels_demo.web.page_input import UNEXPECTED, fit_choice, may_touch, picture, text, visitor_id
from skyreels_demo.studio.run_request import RunRequest, choose_seed
from skyreels_demo.web.status_board import event_words, status_line, status_lines
from skyreels_demo.web.ui_context import PageContext

log = logging.getLogger(__name__)


class FilmHandlers:
    """Handlers that make films."""

    def __init__(self, context: PageContext) -> None:
        self.settings = context.settings
        self.studio = context.studio
        self.model = context.studio.model
        self.requester = context.requester
        self.stops = context.stops

    def rows_shown(self, *prompts: str):
        """The storyboard grows as it is written: the first two shots' rows, then one more past
        the last shot written (up to six), so no shot hides in a closed box."""
        written = [index for index, prompt in enumerate(prompts) if text(prompt).strip()]
        shown = max(MIN_SHOTS, min(len(prompts), (written[-1] + 2) if written else 0))
        return tuple(gr.update(visible=index < shown) for index in range(MIN_SHOTS, len(prompts)))

    def price(self, *prompts: str) -> str:
        """What the storyboard would cost, before anything is spent."""
        shots = sum(1 for prompt in prompts if text(prompt).strip())
        if shots == 0:
            return "Write 2 to 6 shots; each is made from the last frame of the one before."
        return film_price(self.studio, shots) + ("" if shots >= 2 else " A film needs at least 2 shots.")

    async def make_film(
        self,
        image: str | None,
        shots: str,
        seed: float | None = -1,
        api_key: str | None = None,
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

        Returns:
            The finished film as one MP4 (its URL, once every shot is made and cut), and each shot's line (its seed, its prompt and how it went; plain lines over MCP, HTML for API clients).
        """
        lines = [line.strip() for line in text(shots).splitlines() if line.strip()]
        first = -1 if seed is None else seed
        async for film_video, timeline, _gallery, _film_id in self._make(
            image, [(p, first) for p in lines], api_key, "", request, profile, follow_seed=True, report=StageReport(progress)
        ):
            yield film_video, timeline

    async def make_film_in_page(
        self, image, fit, api_key, visitor, p1, p2, p3, p4, p5, p6, s1, s2, s3, s4, s5, s6,
        request: gr.Request, profile: gr.OAuthProfile | None = None,
    ):
        """The Film tab's "Make the film": the shots as written (up to six), each with its own seed."""
        # Gradio hands a handler its inputs by position, with the request found by its type:
        # the six shot boxes and six seeds are named one by one for that reason.
        prompts, seeds = (p1, p2, p3, p4, p5, p6), (s1, s2, s3, s4, s5, s6)
        shots = [(text(p), -1 if s is None else s) for p, s in zip(prompts, seeds) if text(p).strip()]
        async for outputs in self._make(image, shots, api_key, visitor_id(visitor), request, profile, fit=fit):
            yield outputs

    async def make_shot_again(self, film_id: str, shot: float | None, seed: float | None, api_key, visitor, request: gr.Request,
                        profile: gr.OAuthProfile | None = None):
        """Make one shot of a film again (a failed one, or one not liked), then the rest, and re-cut."""
        try:
            film = self.studio.store.film(text(film_id))
        except KeyError:
            raise gr.Error("Make a film first: then any of its shots can be made again.", print_exception=False) from None
        if not may_touch(self.settings.shared, film, visitor):
            raise gr.Error("Make a film first: then any of its shots can be made again.", print_exception=False)
        number = int(shot) if isinstance(shot, (int, float)) and float(shot).is_integer() else 0
        again_seed = None if seed is None or seed == -2 else seed
        request_ = self._request(None, "crop", api_key, visitor_id(visitor), request, profile, threading.Event())
        updates = self._render(lambda run: carry_on(self.studio, film, run, again=number - 1, seed=again_seed), request_, request)
        async for outputs in updates:
            yield outputs

    # -- pieces --

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

    async def _make(self, image, shots, api_key, visitor, request, profile, *, fit="crop", follow_seed=False, report=None):
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
        async for outputs in self._render(lambda run: make_film(self.studio, run, shots), film_request, request, report):
            yield outputs

    async def _render(
        self, updates_of, film_request: RunRequest, request, report: StageReport | None = None
    ) -> AsyncIterator[tuple[Any, str, list, str]]:
        """(the cut film once there is one, the timeline in words, the shots made, the film's id).

        A step at a time in a worker thread, but holding none while a shot waits in line.
        `report`: an API call's progress, each shot's stage in words (agent_progress.film_stage)."""
        session = self.stops.hold(request, film_request.stop)
        timeline: dict[int, FilmUpdate] = {}
        last: FilmUpdate | None = None
        try:
            yield None, status_line("Checking the storyboard…"), gr.update(value=[], visible=False), ""
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
                    timeline[update.shot] = update
                film_video = str(update.video_path) if update.shot is None and update.video_path else None
                shots = _gallery(timeline)
                # The shots' strip takes room only once there is a shot to show.
                yield film_video, _timeline_lines(update, timeline), gr.update(value=shots, visible=bool(shots)), update.film.id
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


_FILM_WORDS = {
    FilmStatus.MAKING: "being made, a shot at a time",
    FilmStatus.DONE: "cut",
    FilmStatus.FAILED: "a shot did not come out",
    FilmStatus.STOPPED: "stopped",
}


def _gallery(timeline: dict[int, FilmUpdate]) -> list[tuple[str, str]]:
    return [
        (str(update.video_path), f"Shot {number + 1}")
        for number, update in sorted(timeline.items())
        if update.video_path is not None
    ]


def _timeline_lines(latest: FilmUpdate, timeline: dict[int, FilmUpdate]) -> str:
    """The film's shots, a line each (HTML: a shot waiting in line shows its place, marked up)."""
    film = latest.film
    # The film in a person's words: its shots and where it is, never its record's id.
    lines = [f"<strong>Your film</strong> · {len(film.shots)} shots · {html.escape(_FILM_WORDS.get(film.status, str(film.status)))}"]
    for number, shot in enumerate(film.shots):
        update = timeline.get(number)
        if update is None:
            mark, words = "○", "waiting for the shot before"
        elif update.error is not None:
            mark, words = "✕", html.escape(update.error.sentence)
        elif update.video_path is not None:
            mark, words = "✓", "made"
        else:
            mark, words = "●", event_words(update.event, "starting…")
        prompt = shot["prompt"] if len(shot["prompt"]) <= 60 else shot["prompt"][:59] + "…"
        lines.append(f"{mark} <strong>Shot {number + 1}</strong> · seed {shot['seed']} · {html.escape(prompt)} — {words}")
    if latest.shot is None and latest.video_path is not None:
        lines.append("<strong>The film is cut:</strong> every shot in one video, below.")
    elif latest.error is not None and not isinstance(latest.error, Stopped):
        lines.append(f"Make shot {latest.shot + 1} again (same or new seed) below; the shots before it are kept.")
    return status_lines(lines)
