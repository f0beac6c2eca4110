"""The page's and the API's runs: one video (/generate) or several seeds at once
(/generate_variations), rendered from `Studio` events, with a Stop for every run of a page."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from .errors import Stopped, StudioError
from .events import Done
from .page_input import UNEXPECTED, fit_choice, text, visitor_id
from .run_request import RunRequest
from .status_board import StatusBoard, summary, variation_grid, variation_lines
from .ui_context import PageContext
from .variations import VariationUpdate, make_variations

log = logging.getLogger(__name__)


class RunHandlers:
    """Handlers that start runs."""

    def __init__(self, context: PageContext) -> None:
        self.studio = context.studio
        self.model = context.studio.model
        self.requester = context.requester
        self.stops = context.stops
        self.videos_dir = context.settings.videos_dir

    def request_from(
        self, prompt, image, seed, fps_prefix, fit, api_key, visitor: str, request, profile, stop: threading.Event
    ) -> RunRequest:
        """A run request from what a page or an API client sent (checked shapes, server-side identity)."""
        return RunRequest(
            text(prompt),
            image if isinstance(image, str) else None,
            -1 if seed is None else seed,
            fit=fit_choice(fit),
            fps_prefix=fps_prefix is not False,
            api_key=text(api_key) or None,
            requester=self.requester(request, profile),
            visitor=visitor,
            stop=stop,
        )

    def generate(
        self,
        prompt: str,
        image: str | None,
        seed: float | None = -1,
        fps_prefix: bool = True,
        fit: str = "crop",
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
    ) -> Iterator[tuple[str, Any, str]]:
        """Make a short SkyReels V1 video (about 4 seconds) from a still image and a prompt.

        Args:
            prompt: What should happen in the video: who is in the picture, how they move, the camera and the light.
            image: The still image to animate (JPEG, PNG, WebP, GIF, BMP or TIFF).
            seed: -1 for a random seed, or the seed of an earlier video to make it again.
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend (default on).
            fit: "crop" to the model's frame as SkyReels does (default), or "pad" to keep the whole picture.
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            The status of each stage as HTML, the finished MP4 video, and a summary with the seed used.
        """
        yield from self._run(prompt, image, seed, fps_prefix, fit, api_key, "", request, profile, raises=True)

    def generate_in_page(
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
    ) -> Iterator[tuple[str, Any, str]]:
        """The page's Generate: a run like /generate, filed under this browser's History."""
        # On the page an error is said once, in the status; an API client gets it as its error.
        yield from self._run(
            prompt, image, seed, fps_prefix, fit, api_key, visitor_id(visitor), request, profile, raises=False
        )

    def _run(self, prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, *, raises: bool):
        board = StatusBoard()
        yield board.render(), None, ""
        stop = threading.Event()
        session = self.stops.hold(request, stop)
        try:
            run = self.request_from(prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, stop)
            for event in self.studio.generate(run):
                board.apply(event)
                if isinstance(event, Done):
                    yield board.render(), str(event.video_path), summary(event.run, event, self.model)
                else:
                    yield board.render(), None, ""
        except StudioError as exc:
            log.info("run ended: %s", exc.sentence)
            board.fail(exc.sentence, stopped=isinstance(exc, Stopped))
            yield board.render(), None, ""
            if raises and not isinstance(exc, Stopped):
                raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in a run")
            board.fail(UNEXPECTED)
            yield board.render(), None, ""
            if raises:
                raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self.stops.release(session, stop)

    def generate_variations(
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
    ) -> Iterator[tuple[list[tuple[str, str]], str]]:
        """Make 2 to 4 SkyReels V1 videos of one prompt and image with different seeds, side by side.

        Args:
            prompt: What should happen in the videos: who is in the picture, how they move, the camera and the light.
            image: The still image to animate (JPEG, PNG, WebP, GIF, BMP or TIFF).
            count: How many variations to make: 2, 3 or 4.
            seed: -1 for random seeds, or a first seed (the others follow it: seed+1, seed+2, ...).
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend (default on).
            fit: "crop" to the model's frame as SkyReels does (default), or "pad" to keep the whole picture.
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            The finished videos, each captioned with its seed, and one line per variation saying how it went.
        """
        yield from self._variations(prompt, image, count, seed, fps_prefix, fit, api_key, "", request, profile)

    def generate_variations_in_page(
        self, prompt, image, count, seed, fps_prefix, fit, api_key, visitor, request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ):
        """The page's "Make variations": like /generate_variations, filed under this browser's History."""
        yield gr.update(value=[], visible=True), "Starting the variations…"  # never the last ones' words
        try:
            for grid, lines in self._variations(
                prompt, image, count, seed, fps_prefix, fit, api_key, visitor_id(visitor), request, profile
            ):
                # The page shows the grid only once variations are asked for.
                yield gr.update(value=grid, visible=True), lines
        except gr.Error as exc:
            # Said once, in the variations' own status line, not also in a pop-up.
            yield gr.update(), f"✕ {exc.message}"

    def _variations(self, prompt, image, count, seed, fps_prefix, fit, api_key, visitor, request, profile):
        stop = threading.Event()
        session = self.stops.hold(request, stop)
        latest: dict[int, VariationUpdate] = {}
        try:
            run = self.request_from(prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile, stop)
            updates = make_variations(self.studio, run, count if isinstance(count, (int, float, str)) else 0)
            for update in updates:
                latest[update.number] = update
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
        return path, f"**Kept:** {text(value.get('caption'))}"

    def stop(self, request: gr.Request) -> None:
        self.stops.stop_all(request)
