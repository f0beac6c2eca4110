"""The page's and the API's runs: one video (/generate) or several seeds at once
(/generate_variations), rendered from `Studio` events, with a Stop for every run of a page."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any, AsyncIterator

import gradio as gr

from skyreels_demo.studio.progress import progress_of
from skyreels_demo.web.agent_progress import StageReport, variations_stage
from skyreels_demo.errors import BadInput, Stopped, StudioError
from skyreels_demo.studio.events import Done
from skyreels_demo.studio.watching import watch
from skyreels_demo.web.continue_frames import continued_from_frame, frame_name, save_frame
from skyreels_demo.web.page_input import NOT_YOURS, UNEXPECTED, fit_choice, may_touch, own_run, picture, text, visitor_id
from skyreels_demo.web.ui_notes import CONTINUE, NO_VIDEO_YET, note, pick_a_take
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.web.status_board import StatusBoard, status_line, summary, variation_grid, variation_lines
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.studio.variations import VariationUpdate, stream_variations
from skyreels_demo.studio.frames import continue_shot, run_of_video, starting_frame

log = logging.getLogger(__name__)

class RunHandlers:
    """Handlers that start runs."""

    def __init__(self, context: PageContext) -> None:
        self.studio = context.studio
        self.model = context.studio.model
        self.requester = context.requester
        self.stops = context.stops
        self.videos_dir = context.settings.videos_dir
        self.frames_dir = context.settings.frames_dir
        self.films_dir = context.settings.films_dir
        self.shared = context.settings.shared

    def request_from(
        self, prompt, image, seed, fps_prefix, fit, api_key, visitor: str, request, profile, stop: threading.Event
    ) -> RunRequest:
        """A run request from what a page or an API client sent (checked shapes, server-side identity)."""
        return RunRequest(
            text(prompt),
            picture(image),
            -1 if seed is None else seed,
            fit=fit_choice(fit),
            fps_prefix=fps_prefix is not False,
            api_key=text(api_key) or None,
            requester=self.requester(request, profile),
            visitor=visitor,
            stop=stop,
        )

    async def generate(
        self,
        prompt: str,
        image: str | None,
        seed: float | None = -1,
        fps_prefix: bool = True,
        fit: str = "crop",
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress: gr.Progress = gr.Progress(),
    ) -> AsyncIterator[tuple[str, Any, str]]:
        """Make a short SkyReels V1 video (about 4 seconds) from a still image and a prompt; takes about a minute.

        Args:
            prompt: What should happen in the video: who is in the picture, how they move, the camera and the light.
            image: The still image to animate (JPEG, PNG, WebP, GIF, BMP or TIFF), as an https address or a data URI.
            seed: -1 for a random seed, or the seed of an earlier video to make it again.
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend (default on).
            fit: "crop" to the model's frame as SkyReels does (default), or "pad" to keep the whole picture.
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            The stages of the run (plain lines over MCP, HTML for API clients), the finished MP4 video (its URL), and a summary with the seed and the task id.
        """
        async for outputs in self._run(
            prompt, image, seed, fps_prefix, fit, api_key, "", request, profile, StageReport(progress), raises=True
        ):
            yield outputs

    async def generate_in_page(
        self,
        prompt: str,
        image: str | None,
        seed: float | None,
        fps_prefix: bool,
        fit: str,
        api_key: str | None,
        visitor: str | None,
        request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ) -> AsyncIterator[tuple[str, Any, str]]:
        """The page's Generate: a run like /generate, filed under this browser's History."""
        # On the page an error is said once, in the status; an API client gets it as its error.
        async for outputs in self._run(
            prompt, image, seed, fps_prefix, fit, api_key, visitor_id(visitor), request, profile, raises=False
        ):
            yield outputs

    async def _run(
        self, prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, report=None, events=None,
        *, raises: bool = True,
    ):
        """One run rendered on the status board; `events(run_request)` by default `Studio.generate`.

        `report`: an API call's progress (agents.py). `raises`: an API client gets a failure as
        its error; on the page it is said once, in the status."""
        board = StatusBoard()
        # HTML for the page and gradio_client (the place in line as data-queue-place); MCP
        # hands agents the same board as plain lines (agents.py).
        shown = board.render
        yield shown(), None, ""
        stop = threading.Event()
        session = self.stops.hold(request, stop)
        events = events or self.studio.generate
        try:
            if isinstance(image, str) and image:
                continued = continued_from_frame(image, self.frames_dir)
            else:
                continued = None
            run = self.request_from(prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, stop)
            if continued and own_run(self.studio.store, self.shared, continued, visitor):
                run = run.but(continued_from=continued)
            # In a worker thread a step at a time, but holding none while the run waits in line.
            async for event in watch(events(run), self.studio.line, stop):
                board.apply(event)
                if report is not None:
                    report(progress_of(event))
                    if isinstance(event, Done):
                        # Gradio sends progress every 10 ms: let "Done" (1.0) leave before the result.
                        await asyncio.sleep(0.05)
                if isinstance(event, Done):
                    yield shown(), str(event.video_path), summary(event.run, event, self.model)
                else:
                    yield shown(), None, ""
        except StudioError as exc:
            log.info("run ended: %s", exc.sentence)
            board.fail(exc.sentence, stopped=isinstance(exc, Stopped))
            yield shown(), None, ""
            if raises and not isinstance(exc, Stopped):
                raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in a run")
            board.fail(UNEXPECTED)
            yield shown(), None, ""
            if raises:
                raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self.stops.release(session, stop)

    # -- continuing a shot --

    async def continue_shot(
        self,
        video: Any,
        prompt: str,
        seed: float | None = -1,
        fps_prefix: bool = True,
        fit: str = "crop",
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress: gr.Progress = gr.Progress(),
    ) -> AsyncIterator[tuple[str, Any, str]]:
        """Continue a shot: a new SkyReels V1 video whose first frame is the last frame of a video this app made (or any MP4); takes about a minute.

        Args:
            video: The video to continue: the address of a video or film this app returned to you, or of an MP4 uploaded to it; its last frame becomes the new shot's first.
            prompt: What happens next in the new shot: who moves, how, the camera and the light.
            seed: -1 for a random seed, or a seed to make the same continuation again.
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend (default on).
            fit: "crop" to the model's frame (default), or "pad" to keep the whole frame.
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            The stages of the run (plain lines over MCP, HTML for API clients), the new shot's MP4 video (its URL), and a summary with the seed and the task id.
        """
        path = video.get("video") if isinstance(video, dict) else video
        if isinstance(path, dict):
            path = path.get("path")
        if not isinstance(path, str) or not path:
            raise gr.Error("Add the video to continue first: an MP4 this app made, or any MP4.", print_exception=False)
        # A video or film of this app's is continued only by whoever made it (page_input.may_touch).
        source = run_of_video(self.studio, path) or self._film_of(path)
        if source is not None and not may_touch(self.shared, source, "", self.requester(request, profile).key):
            raise gr.Error(NOT_YOURS, print_exception=False)
        async for outputs in self._run(
            prompt, None, seed, fps_prefix, fit, api_key, "", request, profile, StageReport(progress),
            events=lambda run: continue_shot(self.studio, run, path),
        ):
            yield outputs

    def frame_to_continue(self, video: Any, frame: float | None, visitor: str | None, request: gr.Request):
        """The page's "Continue this shot": the video's frame (the last by default) becomes the image.

        (image, prompt, note): pressed too early or refused, the image and prompt are left as they
        are and the note beside the button says what to do first (never an error over an input)."""
        path = video.get("video", {}).get("path") if isinstance(video, dict) else video
        if not isinstance(path, str) or not path:
            return gr.update(), gr.update(), note(NO_VIDEO_YET)
        try:
            image, prompt = self._continue_from(path, frame, visitor)
        except StudioError as exc:
            return gr.update(), gr.update(), note(exc.sentence)
        return image, prompt, ""

    def continue_take(self, run_id: str, frame: float | None, visitor: str | None, request: gr.Request):
        """History's "Continue this shot": the picked take into Create's player, its frame the image.

        (video, image, prompt, tabs, note): with nothing picked, Create is left alone and the note
        beside History's buttons says what to do first."""
        run = own_run(self.studio.store, self.shared, run_id, visitor)
        if run is None:
            return gr.update(), gr.update(), gr.update(), gr.update(), note(pick_a_take(CONTINUE))
        if not run.has_video:
            return gr.update(), gr.update(), gr.update(), gr.update(), note(
                "This take has no video to continue: pick a finished one (its last frame starts the next shot)."
            )
        try:
            image, prompt = self._continue_from(run.video_path, frame, visitor)
        except StudioError as exc:
            return gr.update(), gr.update(), gr.update(), gr.update(), note(exc.sentence)
        return run.video_path, image, prompt, gr.Tabs(selected="create"), ""

    def _continue_from(self, path: str, frame: float | None, visitor: str | None):
        """The frame of the clip at `path` as Create's image, and the prompt box asking what comes next."""
        run = run_of_video(self.studio, path)
        if run is not None and not may_touch(self.shared, run, visitor):
            raise BadInput(NOT_YOURS)  # another visitor's take
        if run is None:
            run = self._run_by_task(Path(path).stem, visitor)  # this browser's take, from a copy
        source = run.video_path if run is not None and run.has_video else path
        index = None if not isinstance(frame, (int, float)) or frame < 0 else int(frame)
        try:
            picture = starting_frame(self.studio, run, source, index)  # a preview's frame without its label
            name = frame_name(run, Path(source), index)
        except OSError:
            raise BadInput("That video could not be read: make a video first, then continue it.") from None
        dest = save_frame(picture, self.frames_dir / name)
        seed_note = f" (seed {run.seed})" if run else ""
        placeholder = (
            f"What happens next? Continuing from {'the last frame' if index is None else f'frame {index}'} "
            f"of the take{seed_note}: describe the next shot, then press Generate."
        )
        # The prompt box itself says it: the prepared-frame notes beside the image are redrawn
        # when the new picture arrives.
        return str(dest), gr.update(value="", placeholder=placeholder)

    def _film_of(self, path: str):
        """The film whose cut this is, if it is one of this app's (films/<film id>.mp4)."""
        clip = Path(path)
        try:
            if clip.resolve().parent != self.films_dir.resolve():
                return None
            return self.studio.store.film(clip.stem)
        except (KeyError, OSError, ValueError):
            return None

    def _run_by_task(self, task_id: str, visitor: str | None):
        run = self.studio.store.by_task(task_id)
        return run if run is not None and may_touch(self.shared, run, visitor) else None

    async def generate_variations(
        self,
        prompt: str,
        image: str | None,
        count: float | None = 3,
        seed: float | None = -1,
        fps_prefix: bool = True,
        fit: str = "crop",
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
        progress: gr.Progress = gr.Progress(),
    ) -> AsyncIterator[tuple[list[tuple[str, str]], str]]:
        """Make 2 to 4 SkyReels V1 videos of one prompt and image with different seeds, side by side; takes a minute or two.

        Args:
            prompt: What should happen in the videos: who is in the picture, how they move, the camera and the light.
            image: The still image to animate (JPEG, PNG, WebP, GIF, BMP or TIFF), as an https address or a data URI.
            count: How many variations to make: an integer from 2 to 4 (default 3).
            seed: -1 for random seeds, or a first seed (the others follow it: seed+1, seed+2, ...).
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend (default on).
            fit: "crop" to the model's frame as SkyReels does (default), or "pad" to keep the whole picture.
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            The finished videos, each captioned with its seed, and one line per variation saying how it went (with its seed).
        """
        async for outputs in self._variations(
            prompt, image, count, seed, fps_prefix, fit, api_key, "", request, profile, StageReport(progress)
        ):
            yield outputs

    async def generate_variations_in_page(
        self, prompt, image, count, seed, fps_prefix, fit, api_key, visitor, request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ):
        """The page's "Make variations": like /generate_variations, filed under this browser's History."""
        yield gr.update(value=[], visible=True), status_line("Starting the variations…")  # never the last ones' words
        try:
            async for grid, lines in self._variations(
                prompt, image, count, seed, fps_prefix, fit, api_key, visitor_id(visitor), request, profile
            ):
                # The page shows the grid only once variations are asked for.
                yield gr.update(value=grid, visible=True), lines
        except gr.Error as exc:
            # Said once, in the variations' own status line, not also in a pop-up.
            yield gr.update(), status_line(f"✕ {exc.message}")

    async def _variations(self, prompt, image, count, seed, fps_prefix, fit, api_key, visitor, request, profile, report=None):
        stop = threading.Event()
        session = self.stops.hold(request, stop)
        latest: dict[int, VariationUpdate] = {}
        try:
            run = self.request_from(prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, stop)
            updates = stream_variations(self.studio, run, count if isinstance(count, (int, float, str)) else 0)
            async for update in updates:
                latest[update.number] = update
                if report is not None:
                    report(variations_stage(latest, max(len(latest), count if isinstance(count, int) else 0)))
                yield variation_grid(latest), variation_lines(latest)
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in variations")
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self.stops.release(session, stop)

    def keep_variation(self, evt: gr.SelectData):
        """Put the picked variation in the main player."""
        value = evt.value if isinstance(evt.value, dict) else {}
        video = value.get("video") if isinstance(value.get("video"), dict) else {}
        path = video.get("path") if isinstance(video.get("path"), str) else None
        if not path or Path(path).resolve().parent != self.videos_dir.resolve():
            return gr.update(), gr.update()
        # "Picked", not "kept": History's ★ Keep is what protects a take.
        return path, f"**Picked:** {text(value.get('caption'))}, now in the player."

    def stop(self, request: gr.Request) -> None:
        self.stops.stop_all(request)
