"""The Gradio app: layout first, then wiring; handlers only render `Studio` events.

No HTTP here. A visitor's own key lives only in this process's memory for the length of a run:
never in the page's config, the browser (run history is off), the run store or a log line.
Who a visitor is for caps is decided here from what the server sees (a signed-in account, else
the client's address: visitors.py), never from a value the page sends; the page's private id
only groups a browser's History.
"""

from __future__ import annotations

import logging
import os
import random
import re
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from . import images
from .account import BalanceWatch, check_key
from .config import Settings
from .errors import BadInput, Stopped, StudioError
from .events import Done
from .follower import finish
from .models import SKYREELS_V1
from .preview import OfflinePreview
from .prompts import MAX_IDEA_CHARS, suggest_prompt
from .runs import Run
from .status_board import (
    KEY_PAGE,
    StatusBoard,
    banner,
    caption,
    details,
    duration,
    idle_status,
    shown,
    summary,
)
from .studio import Studio
from .variations import MAX_VARIATIONS, MIN_VARIATIONS, VariationUpdate, make_variations
from .visitors import LOCAL, Requester, identify
from .webhooks import WebhookHub, add_route

MODEL = SKYREELS_V1
SEED_MAX = MODEL.seed_max

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CSS_PATH = Path(__file__).with_name("ui.css")
EXAMPLES = [
    (
        "astronaut.png",
        "An astronaut in a white flight suit smiles warmly at the camera, then turns her head "
        "slightly as the flag behind her stirs; soft studio light, film look.",
    ),
    (
        "chelsea.png",
        "A tabby cat slowly blinks, twitches its ears and turns to look past the camera; warm "
        "afternoon light, shallow depth of field.",
    ),
    (
        "coffee.png",
        "Steam curls up from a cup of coffee on a saucer as a hand reaches in to lift it; "
        "the camera pushes in slowly, cosy cafe light.",
    ),
]
PLACEHOLDER = (
    "Describe who is in the picture and how they move, e.g. "
    "\"A woman in a red coat turns to the camera and smiles as snow falls around her.\""
)
UNEXPECTED = "Something went wrong on our side: try again, and if it keeps happening, report it."
HISTORY_SIZE = 40
# A browser's private History id, as `_new_visitor` makes them.
_VISITOR_ID = re.compile(r"[0-9a-f]{32}")
# Brings the status into view on a phone, where it sits below the controls.
SHOW_STATUS_JS = """(...inputs) => {
  const el = document.getElementById('status');
  const box = el && el.getBoundingClientRect();
  if (box && (box.top < 0 || box.top > window.innerHeight * 0.6)) el.scrollIntoView({block: 'start'});
  return inputs;
}"""


class ImageInput(gr.Image):
    """An image box whose handler gets the uploaded file as it is.

    gr.Image would open (and sometimes convert) the file itself and answer a broken one with its
    own technical message; here `images.prepare` decides what is a picture, and says why not.
    """

    is_template = True  # drawn by gr.Image's own front end

    def preprocess(self, payload):
        if payload is None or (payload.url and payload.url.startswith("data:")):
            return super().preprocess(payload)
        return str(payload.path)


class StudioApp:
    """One app process: the studio, the stop switches of live runs, and the Blocks."""

    def __init__(
        self, settings: Settings | None = None, studio: Studio | None = None, webhooks: WebhookHub | None = None
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.preview = OfflinePreview(self.settings)
        self.studio = studio or Studio(self.settings, start_preview=self.preview, webhooks=webhooks)
        # Stop switches of live runs, by the page session that started them: Stop ends them all.
        self._stops: dict[str, set[threading.Event]] = {}
        self._stops_lock = threading.Lock()
        self.videos_dir = self.settings.data_dir / "runs"
        self.images_dir = self.settings.data_dir / "images"
        for folder in (self.videos_dir, self.images_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # Gradio serves videos and images from where they are kept: one copy each, never a copy
        # per render. Only these two folders (names unguessable) are served, not the run store.
        gr.set_static_paths([self.videos_dir, self.images_dir])

    # -- who is asking --

    def requester(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Requester:
        if not self.settings.shared:
            return Requester(LOCAL)
        client = getattr(request, "client", None)
        return identify(
            username=getattr(profile, "username", None) if profile is not None else None,
            peer=getattr(client, "host", None),
            headers=dict(request.headers) if request is not None and request.headers is not None else {},
            proxy_hops=self.settings.proxy_hops,
        )

    # -- handlers: Create --

    def show_prepared(self, image_path: str | None, fit: str):
        """The frame the model will receive, as soon as an image is chosen."""
        if not image_path or not isinstance(image_path, str):
            return None, ""
        try:
            prepared = images.prepare(image_path, fit=_fit(fit))
        except StudioError as exc:
            return None, f"⚠️ {exc.sentence}"
        except Exception:
            log.exception("preparing a preview frame failed")
            return None, f"⚠️ {UNEXPECTED}"
        notes = " ".join(prepared.notes)
        return prepared.to_pil(), f"{notes} Upload size: {len(prepared.data) // 1024} KB.".strip()

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
        """Make a 4-second SkyReels V1 video from a still image and a prompt.

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
        yield from self._run(prompt, image, seed, fps_prefix, fit, api_key, "", request, profile)

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
        yield from self._run(prompt, image, seed, fps_prefix, fit, api_key, _visitor_id(visitor), request, profile)

    def _run(self, prompt, image, seed, fps_prefix, fit, api_key, visitor, request, profile):
        board = StatusBoard()
        yield board.render(), None, ""
        stop = threading.Event()
        session = self._hold_stop(request, stop)
        try:
            who = self.requester(request, profile)
            for event in self.studio.generate(
                _text(prompt),
                image if isinstance(image, str) else None,
                -1 if seed is None else seed,
                api_key=_text(api_key) or None,
                requester=who.key,
                signed_in=who.signed_in,
                visitor=visitor,
                fit=_fit(fit),
                fps_prefix=fps_prefix is not False,
                stop=stop,
            ):
                board.apply(event)
                if isinstance(event, Done):
                    yield board.render(), str(event.video_path), summary(event.run, event)
                else:
                    yield board.render(), None, ""
        except StudioError as exc:
            log.info("run ended: %s", exc.sentence)
            board.fail(exc.sentence, stopped=isinstance(exc, Stopped))
            yield board.render(), None, ""
            if not isinstance(exc, Stopped):
                raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in a run")
            board.fail(UNEXPECTED)
            yield board.render(), None, ""
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self._release_stop(session, stop)

    def suggest_prompt(
        self,
        image: str | None,
        idea: str | None = "",
        api_key: str | None = None,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
    ) -> str:
        """Write a SkyReels V1 prompt from a still image, ready to edit; nothing is submitted.

        Args:
            image: The still image to describe (JPEG, PNG, WebP, GIF, BMP or TIFF).
            idea: An optional short idea to steer the prompt, like "she laughs" or "slow dolly in".
            api_key: Your own WaveSpeed API key (optional: without it the app's key or its offline preview is used).

        Returns:
            A prompt of one or two sentences: who is in the frame, their expression and motion, the camera and the light.
        """
        if not isinstance(image, str) or not image:
            raise gr.Error("Add an image first: the prompt is written from the picture.", print_exception=False)
        who = self.requester(request, profile)
        try:
            suggestion = suggest_prompt(
                self.studio,
                image,
                _text(idea),
                api_key=_text(api_key) or None,
                requester=who.key,
                signed_in=who.signed_in,
            )
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("writing a prompt failed")
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        return suggestion.text

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
        yield from self._variations(
            prompt, image, count, seed, fps_prefix, fit, api_key, _visitor_id(visitor), request, profile
        )

    def _variations(self, prompt, image, count, seed, fps_prefix, fit, api_key, visitor, request, profile):
        stop = threading.Event()
        session = self._hold_stop(request, stop)
        latest: dict[int, VariationUpdate] = {}
        try:
            who = self.requester(request, profile)
            updates = make_variations(
                self.studio,
                _text(prompt),
                image if isinstance(image, str) else None,
                count if isinstance(count, (int, float, str)) else 0,
                seed=-1 if seed is None else seed,
                fit=_fit(fit),
                fps_prefix=fps_prefix is not False,
                api_key=_text(api_key) or None,
                requester=who.key,
                signed_in=who.signed_in,
                visitor=visitor,
                stop=stop,
            )
            for update in updates:
                latest[update.number] = update
                yield _variation_grid(latest), _variation_lines(latest)
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        except Exception:
            log.exception("unexpected failure in variations")
            raise gr.Error(UNEXPECTED, print_exception=False) from None
        finally:
            self._release_stop(session, stop)

    def keep_variation(self, evt: gr.SelectData):
        """Put the picked variation in the main player."""
        value = evt.value if isinstance(evt.value, dict) else {}
        video = value.get("video") if isinstance(value.get("video"), dict) else {}
        path = video.get("path") if isinstance(video.get("path"), str) else None
        if not path or Path(path).resolve().parent != self.videos_dir.resolve():
            return gr.update(), gr.update()
        return path, f"**Kept:** {_text(value.get('caption'))}"

    def check_key(self, api_key: str | None) -> tuple[str, str]:
        """Whether a pasted key works and what it pays for, before anything is spent."""
        key = _text(api_key).strip()
        if not key:
            return "", price_line(self.settings)
        result = check_key(self.settings, key)
        mark = "✓" if result.ok else "⚠️"
        return f"{mark} {result.sentence}", price_line(self.settings, own_key=result.ok)

    def expectations(self) -> str:
        """How long a run usually takes here, learned from the runs this app has made."""
        mode = self.studio.access.default_mode
        expected = self.studio.expectation(mode)
        typical = expected.queue_s + expected.processing_s
        if expected.samples:
            basis = "from the last run" if expected.samples == 1 else f"from the last {expected.samples} runs"
        else:
            basis = "a first estimate"
        what = "An offline preview" if mode == "preview" else "A SkyReels video"
        return (
            f"{what} usually takes about {duration(typical)} here ({basis}). Stop ends the wait; "
            + ("a task already sent still runs and is paid for, and " if mode == "api" else "")
            + "its video is saved to History."
        )

    def stop(self, request: gr.Request) -> None:
        with self._stops_lock:
            switches = list(self._stops.get(_session(request) or "", ()))
        for switch in switches:
            switch.set()

    # -- handlers: History --

    def history(self, visitor: str | None, request: gr.Request):
        runs = [run for run in self._visible_runs(visitor) if shown(run)]
        items = []
        for run in runs:
            path = run.video_path if run.has_video else run.image_path
            items.append((path, caption(run)))
        return items, [run.id for run in runs]

    def pick(self, run_ids: list[str], visitor: str | None, request: gr.Request, evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else -1
        run = self._run_for_visitor(run_ids[index], visitor) if isinstance(run_ids, list) and 0 <= index < len(run_ids) else None
        if run is None:
            return None, "", "", gr.update(visible=False)
        video = run.video_path if run.has_video else None
        needs_key = run.is_unfinished_task and self.studio.access.client_for_run(run) is None
        return video, details(run, self.studio.store.statuses(run.id)), run.id, gr.update(visible=needs_key)

    def finish_with_key(self, run_id: str, api_key: str | None, visitor: str | None, request: gr.Request):
        """Finish a visitor's own-key run that a restart cut off, with the key pasted again."""
        run = self._run_for_visitor(_text(run_id), visitor)
        if run is None:
            raise gr.Error("Pick a run in the history first.", print_exception=False)
        if not run.is_unfinished_task:
            return (run.video_path if run.has_video else None), details(run, self.studio.store.statuses(run.id)), ""
        try:
            client = self.studio.access.client_with_key(run, _text(api_key))
            try:
                run = finish(self.studio, run, client=client)
            finally:
                client.close()  # the key is forgotten with it
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        return (run.video_path if run.has_video else None), details(run, self.studio.store.statuses(run.id)), ""

    def reuse(self, run_id: str, visitor: str | None, request: gr.Request, new_seed: bool = False):
        run = self._run_for_visitor(_text(run_id), visitor)
        if run is None:
            raise gr.Error("Pick a run in the history first.", print_exception=False)
        image = run.image_path if run.image_path and Path(run.image_path).exists() else None
        seed = random.randint(0, SEED_MAX) if new_seed else run.seed
        return MODEL.without_prefix(run.prompt), image, seed, gr.Tabs(selected="create")

    def reuse_with_new_seed(self, run_id: str, visitor: str | None, request: gr.Request):
        return self.reuse(run_id, visitor, request, new_seed=True)

    # -- helpers --

    def _hold_stop(self, request: gr.Request | None, stop: threading.Event) -> str:
        session = _session(request) or uuid.uuid4().hex  # no page session: only closing stops it
        with self._stops_lock:
            self._stops.setdefault(session, set()).add(stop)
        return session

    def _release_stop(self, session: str, stop: threading.Event) -> None:
        with self._stops_lock:
            switches = self._stops.get(session, set())
            switches.discard(stop)
            if not switches:
                self._stops.pop(session, None)

    def _visible_runs(self, visitor: str | None) -> list[Run]:
        if not self.settings.shared:
            return self.studio.store.recent(limit=HISTORY_SIZE)  # locally, one person sees everything
        visitor = _visitor_id(visitor)
        return self.studio.store.recent(visitor=visitor, limit=HISTORY_SIZE) if visitor else []

    def _run_for_visitor(self, run_id: str, visitor: str | None) -> Run | None:
        if not run_id or not isinstance(run_id, str):
            return None
        try:
            run = self.studio.store.get(run_id)
        except KeyError:
            return None
        if self.settings.shared and (not _visitor_id(visitor) or run.visitor != _visitor_id(visitor)):
            return None
        return run

    # -- layout, then wiring --

    def build(self) -> gr.Blocks:
        settings = self.settings
        sign_in = settings.sign_in
        with gr.Blocks(
            title="SkyReels V1 Studio",
            analytics_enabled=False,
            # Uploads and other files Gradio keeps for a page go after an hour, checked every 10 min.
            delete_cache=(600, 3600),
        ) as demo:
            visitor = gr.BrowserState(None, storage_key="skyreels-visitor", secret=browser_secret(settings))
            with gr.Row(elem_classes="studio-top"):
                gr.HTML(
                    "<div class='studio-header'><h1>SkyReels V1 Studio</h1><p>A still image and a "
                    "prompt become a 4-second film-style clip, made by SkyReels V1 on WaveSpeedAI.</p></div>"
                )
                if sign_in:
                    gr.LoginButton(size="sm", scale=0, min_width=180)
            gr.HTML(banner(settings))
            with gr.Tabs() as tabs:
                with gr.Tab("Create", id="create"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=1, min_width=320):
                            image = ImageInput(
                                label="Image",
                                sources=["upload", "clipboard", "webcam"],
                                type="filepath",
                                height=210,
                            )
                            prep_notes = gr.Markdown(elem_classes="prep-notes")
                            prompt = gr.Textbox(label="Prompt", lines=3, max_lines=8, placeholder=PLACEHOLDER)
                            with gr.Row(equal_height=True):
                                go = gr.Button("Generate", variant="primary", scale=3)
                                halt = gr.Button("Stop", variant="stop", scale=1)
                            price = gr.Markdown(price_line(settings), elem_classes="prep-notes", elem_id="price")
                            with gr.Row(equal_height=True):
                                idea = gr.Textbox(
                                    show_label=False,
                                    container=False,
                                    placeholder='Optional idea: "she laughs", "slow dolly in"',
                                    max_length=MAX_IDEA_CHARS,
                                    scale=3,
                                )
                                suggest = gr.Button("Write a prompt from my image", size="sm", scale=2)
                            with gr.Row(equal_height=True):
                                seed = gr.Number(
                                    value=-1,
                                    label="Seed (-1 = random)",
                                    precision=0,
                                    minimum=-1,
                                    maximum=SEED_MAX,
                                    scale=3,
                                )
                                dice = gr.Button("Random seed", scale=1, size="sm")
                            with gr.Accordion("Framing and prompt options", open=False):
                                fit = gr.Radio(
                                    choices=[("Crop to the frame", "crop"), ("Fit the whole picture", "pad")],
                                    value="crop",
                                    label="Framing",
                                )
                                fps_prefix = gr.Checkbox(
                                    value=True,
                                    label=f'Start the prompt with "{MODEL.prompt_prefix}" (recommended by SkyReels)',
                                )
                                prepared = gr.Image(
                                    label="What the model will see", interactive=False, height=200
                                )
                            with gr.Accordion("Several seeds at once", open=False):
                                with gr.Row(equal_height=True):
                                    count = gr.Radio(
                                        choices=list(range(MIN_VARIATIONS, MAX_VARIATIONS + 1)),
                                        value=3,
                                        label="Variations",
                                        scale=2,
                                    )
                                    vary = gr.Button("Make variations", scale=1)
                            with gr.Accordion(
                                "Your own WaveSpeed key" + (" (optional)" if settings.has_key else ""),
                                open=False,
                            ):
                                api_key = gr.Textbox(
                                    label="WaveSpeed API key",
                                    type="password",
                                    placeholder="Used for your runs only; never stored or shown.",
                                    info=f"Get one at {KEY_PAGE}. A key you paste here has no cap.",
                                )
                                key_check = gr.Markdown(elem_id="key-check")
                        with gr.Column(scale=1, min_width=320):
                            status = gr.HTML(idle_status(), label="Status", elem_id="status")
                            video = gr.Video(
                                label="Video",
                                autoplay=True,
                                loop=True,
                                buttons=["download"],
                                interactive=False,
                                elem_id="result-video",
                            )
                            result_summary = gr.Markdown(elem_id="summary")
                            expectations = gr.Markdown(elem_classes="prep-notes")
                            variations_grid = gr.Gallery(
                                label="Variations (pick one to keep it in the player)",
                                columns=2,
                                height="auto",
                                object_fit="contain",
                                allow_preview=False,
                                elem_id="variations",
                            )
                            variations_status = gr.Markdown(elem_id="variations-status")
                    gr.Examples(
                        examples=[[str(ASSETS / name), text] for name, text in EXAMPLES if (ASSETS / name).exists()],
                        inputs=[image, prompt],
                        label="Examples (click one, then Generate)",
                        cache_examples=False,
                    )
                with gr.Tab("History", id="history") as history_tab:
                    history_ids = gr.State([])
                    chosen = gr.State("")
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=3):
                            gallery = gr.Gallery(
                                label="Your runs, newest first",
                                columns=3,
                                height=560,
                                object_fit="cover",
                                allow_preview=False,
                                elem_id="history-gallery",
                            )
                            refresh = gr.Button("Refresh", size="sm")
                        with gr.Column(scale=2):
                            past_video = gr.Video(label="Video", autoplay=True, loop=True, interactive=False)
                            past_details = gr.Markdown("Pick a run to see it here.")
                            with gr.Group(visible=False) as finish_box:
                                finish_key = gr.Textbox(
                                    label="This run was made with your own key: paste it again to fetch its video",
                                    type="password",
                                    placeholder="Used for this run only, then forgotten.",
                                )
                                finish_go = gr.Button("Finish this run", variant="primary")
                            with gr.Row():
                                again = gr.Button("Use these settings")
                                reroll = gr.Button("Run again with a new seed")
            # API only: /generate takes prompt, image and seed; everything else has a default.
            api_generate = gr.Button(visible=False)
            api_variations = gr.Button(visible=False)

            # wiring
            gr.on(
                triggers=[image.change, fit.change],
                fn=self.show_prepared,
                inputs=[image, fit],
                outputs=[prepared, prep_notes],
                # Queued and few at once: preparing a large picture takes memory and CPU.
                concurrency_limit=2,
                concurrency_id="prepare",
                trigger_mode="always_last",
                show_progress="hidden",
                api_visibility="private",
            )
            dice.click(lambda: random.randint(0, SEED_MAX), None, seed, queue=False, api_visibility="private")
            # Every path that submits shares one limit and queue: "generate".
            run_options = dict(
                outputs=[status, video, result_summary],
                concurrency_limit=settings.max_concurrent_tasks,
                concurrency_id="generate",
                show_progress="minimal",
                show_progress_on=[status],
            )
            page_inputs = [prompt, image, seed, fps_prefix, fit, api_key, visitor]
            api_generate.click(
                self.generate,
                inputs=[prompt, image, seed, fps_prefix, fit, api_key],
                api_name="generate",
                **run_options,
            )
            run_event = go.click(
                self.generate_in_page, inputs=page_inputs, js=SHOW_STATUS_JS, api_visibility="private", **run_options
            )
            reroll.click(
                self.reuse_with_new_seed, [chosen, visitor], [prompt, image, seed, tabs], api_visibility="private"
            ).success(self.generate_in_page, inputs=page_inputs, api_visibility="private", **run_options)
            variation_options = dict(
                outputs=[variations_grid, variations_status],
                concurrency_limit=settings.max_concurrent_tasks,
                concurrency_id="generate",
                show_progress="minimal",
            )
            api_variations.click(
                self.generate_variations,
                inputs=[prompt, image, count, seed, fps_prefix, fit, api_key],
                api_name="generate_variations",
                **variation_options,
            )
            vary.click(
                self.generate_variations_in_page,
                inputs=[prompt, image, count, seed, fps_prefix, fit, api_key, visitor],
                js=SHOW_STATUS_JS.replace("'status'", "'variations'"),
                api_visibility="private",
                **variation_options,
            )
            variations_grid.select(
                self.keep_variation, None, [video, result_summary], queue=False, api_visibility="private"
            )
            suggest.click(
                self.suggest_prompt,
                inputs=[image, idea, api_key],
                outputs=[prompt],
                api_name="suggest_prompt",
                concurrency_limit=2,
                concurrency_id="suggest",
            )
            gr.on(
                triggers=[api_key.blur, api_key.submit],
                fn=self.check_key,
                inputs=[api_key],
                outputs=[key_check, price],
                concurrency_limit=2,
                concurrency_id="key-check",
                trigger_mode="always_last",
                show_progress="hidden",
                api_visibility="private",
            )
            halt.click(self.stop, None, None, queue=False, api_visibility="private")
            history_options = dict(
                fn=self.history, inputs=[visitor], outputs=[gallery, history_ids], queue=False, api_visibility="private"
            )
            run_event.then(**history_options)
            gr.on(triggers=[history_tab.select, refresh.click], **history_options)
            gallery.select(
                self.pick,
                [history_ids, visitor],
                [past_video, past_details, chosen, finish_box],
                api_visibility="private",
            )
            finish_go.click(
                self.finish_with_key,
                [chosen, finish_key, visitor],
                [past_video, past_details, finish_key],
                concurrency_limit=settings.max_concurrent_tasks,
                concurrency_id="finish",
                api_visibility="private",
            )
            again.click(self.reuse, [chosen, visitor], [prompt, image, seed, tabs], api_visibility="private")
            demo.load(_new_visitor, [visitor], [visitor], queue=False, api_visibility="private")
            demo.load(self.expectations, None, expectations, queue=False, api_visibility="private")
        demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrent_tasks)
        return demo


def price_line(settings: Settings, *, own_key: bool = False) -> str:
    """What one video costs, and whose credit pays, beside Generate."""
    price = f"${MODEL.price_usd:.2f}"
    if own_key or (settings.has_key and not settings.shared):
        return f"Each video uses about {price} of your WaveSpeed credit."
    if settings.has_key:
        return f"Each video uses about {price} of this Space's credit; paste your own key for more."
    return "Offline preview: free, made on this machine."


def _variation_grid(latest: dict[int, VariationUpdate]) -> list[tuple[str, str]]:
    return [
        (str(update.video_path), f"Seed {update.seed} (variation {number})")
        for number, update in sorted(latest.items())
        if update.video_path is not None
    ]


def _variation_lines(latest: dict[int, VariationUpdate]) -> str:
    lines = []
    for number, update in sorted(latest.items()):
        mark = "✓" if update.video_path else ("✕" if update.error else "●")
        lines.append(f"{mark} **{number}** · seed {update.seed} · {update.message}")
    return "\n\n".join(lines)


def _new_visitor(visitor: str | None) -> str:
    return _visitor_id(visitor) or uuid.uuid4().hex


def _visitor_id(value: object) -> str:
    """A browser's History id, or "" for anything that is not one."""
    return value if isinstance(value, str) and _VISITOR_ID.fullmatch(value) else ""


def _session(request: gr.Request | None) -> str:
    value = getattr(request, "session_hash", None)
    return value if isinstance(value, str) else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _fit(value: object) -> str:
    return value if value in images.FITS else "crop"


def browser_secret(settings: Settings) -> str:
    """The key that encrypts each browser's History id: made once, kept in the data directory,
    so History survives a restart (Gradio would pick a new random one every start)."""
    path = settings.data_dir / "browser-state.secret"
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


def launch_options(settings: Settings) -> dict[str, Any]:
    """What `launch()` needs: no run history in the browser, no SSR, our theme and CSS."""
    return dict(
        run_history=False,
        ssr_mode=False,
        footer_links=["api"],
        theme=gr.themes.Soft(primary_hue="indigo"),
        css=CSS_PATH.read_text(encoding="utf-8"),
        # Our handlers raise gr.Error with a sentence; anything else must not show its raw text.
        show_error=False,
        # Refused at the door: no upload larger than the app would prepare.
        max_file_size=images.MAX_BYTES,
        # Each live run holds a worker thread while it waits between ticks: keep room for every
        # allowed run plus the page's quick events, or runs past Gradio's default 40 wait for a thread.
        max_threads=max(40, settings.max_concurrent_tasks + 10),
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    hub = WebhookHub(public_url=settings.public_url)
    app = StudioApp(settings, webhooks=hub)
    closed = app.studio.store.close_abandoned()
    if closed:
        log.info("closed %d runs that a previous process left before their submit", closed)
    app.studio.keep_within_budget(every_s=0)
    app.studio.start_follower()  # finish runs left over from before a restart
    BalanceWatch(app.settings).start()  # the owner hears (in the log) when credit runs low
    blocks = app.build()
    blocks.launch(prevent_thread_lock=True, **launch_options(app.settings))
    # WaveSpeed's webhooks arrive at the same server; the offline preview's over loopback.
    add_route(blocks.app, hub)
    hub.local_url = (blocks.local_url or "").rstrip("/") or None
    blocks.block_thread()
