"""The Gradio app: layout first, then wiring; handlers only render `Studio` events.

No HTTP here. A visitor's own key lives only in this process's memory for the length of a run:
never in the page's config, the browser (run history is off), the run store or a log line.
"""

from __future__ import annotations

import html
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from . import images
from .config import Settings
from .errors import Stopped, StudioError
from .events import (
    Done,
    Downloading,
    Event,
    Prepared,
    Processing,
    Queued,
    Submitted,
    Uploading,
    WaitingForSlot,
)
from .models import SKYREELS_V1
from .preview import OfflinePreview
from .runs import DONE, Run
from .studio import Studio

MODEL = SKYREELS_V1
SEED_MAX = MODEL.seed_max

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
KEY_PAGE = "https://wavespeed.ai/accesskey"
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

CSS = """
.studio-header h1 { margin-bottom: 0.1em; }
.studio-header p { margin-top: 0; color: var(--body-text-color-subdued); }
.mode-banner { border-radius: 8px; padding: 10px 14px; margin: 4px 0 8px; }
.mode-banner.preview { background: #fff7e6; border: 1px solid #f5c46b; color: #6b4700; }
.mode-banner.live { background: #ecfdf3; border: 1px solid #86d8a8; color: #0f5132; }
.stages { list-style: none; padding: 0; margin: 0; font-size: 0.95em; }
.stages li { padding: 3px 0; display: flex; gap: 8px; align-items: baseline; }
.stages .mark { width: 1.3em; text-align: center; flex: none; }
.stages li.pending { color: var(--body-text-color-subdued); }
.stages li.active { font-weight: 600; }
.stages li.failed { color: #b42318; font-weight: 600; }
.stages li.stopped { color: #8a5a00; font-weight: 600; }
.meter { height: 6px; background: var(--neutral-200); border-radius: 3px; overflow: hidden; margin: 6px 0 2px; }
.meter > div { height: 100%; background: var(--color-accent); transition: width 0.9s linear; }
.status-empty { color: var(--body-text-color-subdued); }
.prep-notes { font-size: 0.9em; color: var(--body-text-color-subdued); }
"""


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


# --- the status area, rendered from events ---------------------------------------------------

_STAGES = ("prepare", "upload", "submit", "wait", "download", "done")
_LABELS = {
    "prepare": "Prepare the image",
    "upload": "Upload it",
    "submit": "Submit the task",
    "wait": "Make the video",
    "download": "Download the video",
    "done": "Ready",
}


@dataclass
class StatusBoard:
    """What the status area shows: one line per stage, the current one live."""

    lines: dict[str, str] = field(default_factory=dict)
    current: str = "prepare"
    failed: str | None = None
    progress: float | None = None  # 0..1 while the video is being made
    stopped: bool = False  # ended by the person, not by a failure

    def apply(self, event: Event) -> None:
        if isinstance(event, WaitingForSlot):
            self.current, self.lines["prepare"] = "prepare", event.message
        elif isinstance(event, Prepared):
            self.lines["prepare"] = event.message
            self.current = "upload"
        elif isinstance(event, Uploading):
            self.lines["upload"] = event.message
            self.current = "upload"
        elif isinstance(event, Submitted):
            self.lines["upload"] = self.lines.get("upload", "Uploaded.").replace("Uploading", "Uploaded").rstrip("…") + "."
            self.lines["submit"] = event.message
            self.current = "wait"
            self.lines["wait"] = "Waiting for WaveSpeed to start…"
        elif isinstance(event, Queued):
            self.lines["wait"] = event.message
            self.current = "wait"
        elif isinstance(event, Processing):
            self.lines["wait"] = event.message
            self.current = "wait"
            if event.typical_s > 0:
                self.progress = min(0.97, event.processing_s / event.typical_s)
        elif isinstance(event, Downloading):
            self.lines["wait"] = "Made the video."
            self.lines["download"] = event.message
            self.current, self.progress = "download", None
        elif isinstance(event, Done):
            self.lines["download"] = "Downloaded."
            self.lines["done"] = event.message
            self.current = "done"

    def fail(self, sentence: str, *, stopped: bool = False) -> None:
        self.failed = self.current
        self.stopped = stopped
        self.lines[self.current] = sentence
        self.progress = None

    def render(self) -> str:
        items = []
        reached = _STAGES.index(self.current)
        for index, stage in enumerate(_STAGES):
            text = self.lines.get(stage) or _LABELS[stage]
            if stage == self.failed:
                state, mark = ("stopped", "■") if self.stopped else ("failed", "✕")
            elif index < reached or (stage == "done" and self.current == "done"):
                state, mark = "done", "✓"
            elif index == reached and self.failed is None:
                state, mark = "active", "●"
            else:
                state, mark = "pending", "○"
            items.append(
                f'<li class="{state}"><span class="mark">{mark}</span><span>{html.escape(text)}</span></li>'
            )
        meter = ""
        if self.progress is not None:
            meter = f'<div class="meter" aria-hidden="true"><div style="width:{self.progress * 100:.0f}%"></div></div>'
        return f'<ul class="stages" aria-live="polite">{"".join(items)}</ul>{meter}'


def _idle_status() -> str:
    return '<p class="status-empty">Add an image and a prompt, then press Generate.</p>'


# --- the app -----------------------------------------------------------------------------------


class StudioApp:
    """One app process: the studio, the stop switches of live runs, and the Blocks."""

    def __init__(self, settings: Settings | None = None, studio: Studio | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.preview = OfflinePreview(self.settings)
        self.studio = studio or Studio(self.settings, start_preview=self.preview)
        self._stops: dict[str, threading.Event] = {}
        self._stops_lock = threading.Lock()
        # Gradio serves only files it copied into its own cache; videos are handed over from here.
        self._handover = Path(tempfile.mkdtemp(prefix="skyreels-ui-"))

    # -- handlers --

    def show_prepared(self, image_path: str | None, fit: str):
        """The frame the model will receive, as soon as an image is chosen."""
        if not image_path:
            return None, ""
        try:
            prepared = images.prepare(image_path, fit=fit)
        except StudioError as exc:
            return None, f"⚠️ {exc.sentence}"
        notes = " ".join(prepared.notes)
        return prepared.to_pil(), f"{notes} Upload size: {len(prepared.data) // 1024} KB.".strip()

    def generate(
        self,
        prompt: str,
        image: str | None,
        seed: float | None,
        fps_prefix: bool,
        fit: str,
        api_key: str | None,
        visitor: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[str, Any, str]]:
        """Make a SkyReels V1 video from a still image.

        Args:
            prompt: What should happen in the video (people, motion, camera, light).
            image: The still image to animate (a file).
            seed: -1 for a random seed, or a seed a video was made with to reproduce it.
            fps_prefix: Start the prompt with the frame-rate tag SkyReels' authors recommend.
            fit: "crop" to the model's frame as SkyReels does, or "pad" to keep the whole picture.
            api_key: Your own WaveSpeed API key (optional when the app has one).
            visitor: This browser's private id, for its history (leave empty from a client).

        Returns:
            The status of each stage as HTML, the finished MP4 video, and a summary with the seed used.
        """
        stop = self._stop_for(request)
        board = StatusBoard()
        yield board.render(), None, ""
        try:
            for event in self.studio.generate(
                prompt,
                image,
                seed if seed is not None else -1,
                api_key=api_key,
                visitor=self._visitor(visitor, request),
                fit=fit or "crop",
                fps_prefix=bool(fps_prefix),
                stop=stop,
            ):
                board.apply(event)
                if isinstance(event, Done):
                    yield board.render(), self._playable(event.video_path), _summary(event.run, event)
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
            sentence = "Something went wrong on our side: try again, and if it keeps happening, report it."
            board.fail(sentence)
            yield board.render(), None, ""
            raise gr.Error(sentence, print_exception=False) from None
        finally:
            self._release_stop(request)

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
            f"{what} usually takes about {_duration(typical)} here ({basis}). Stop ends the wait; "
            + ("a task already sent still runs and is paid for, and " if mode == "api" else "")
            + "its video is saved to History."
        )

    def stop(self, request: gr.Request) -> None:
        with self._stops_lock:
            event = self._stops.get(request.session_hash or "")
        if event is not None:
            event.set()

    def history(self, visitor: str | None, request: gr.Request):
        runs = self._visible_runs(visitor, request)
        items = []
        for run in runs:
            if run.status == DONE and run.has_video:
                items.append((self._playable(Path(run.video_path)), _caption(run)))
            elif run.image_path and Path(run.image_path).exists():
                items.append((self._playable(Path(run.image_path)), _caption(run)))
        return items, [run.id for run in runs if _shown(run)]

    def pick(self, run_ids: list[str], visitor: str | None, request: gr.Request, evt: gr.SelectData):
        run = self._owned_run(run_ids, evt.index, visitor, request)
        if run is None:
            return None, "", ""
        video = self._playable(Path(run.video_path)) if run.has_video else None
        return video, _details(run, self.studio.store.statuses(run.id)), run.id

    def reuse(self, run_id: str, visitor: str | None, request: gr.Request, new_seed: bool = False):
        run = self._run_for_visitor(run_id, visitor, request)
        if run is None:
            raise gr.Error("Pick a run in the history first.", print_exception=False)
        prompt = MODEL.without_prefix(run.prompt)
        image = self._playable(Path(run.image_path)) if run.image_path and Path(run.image_path).exists() else None
        seed = random.randint(0, SEED_MAX) if new_seed else run.seed
        return prompt, image, seed, gr.Tabs(selected="create")

    def reuse_with_new_seed(self, run_id: str, visitor: str | None, request: gr.Request):
        return self.reuse(run_id, visitor, request, new_seed=True)

    # -- helpers --

    def _stop_for(self, request: gr.Request) -> threading.Event:
        event = threading.Event()
        with self._stops_lock:
            self._stops[request.session_hash or uuid.uuid4().hex] = event
        return event

    def _release_stop(self, request: gr.Request) -> None:
        with self._stops_lock:
            self._stops.pop(request.session_hash or "", None)

    def _visitor(self, visitor: str | None, request: gr.Request) -> str:
        # The browser's private id ties runs to it; an API client without one gets its session.
        return (visitor or "").strip() or f"session-{request.session_hash or 'anonymous'}"

    def _visible_runs(self, visitor: str | None, request: gr.Request) -> list[Run]:
        if not self.settings.shared:
            return self.studio.store.recent(limit=40)  # locally, one person sees everything
        return self.studio.store.recent(visitor=self._visitor(visitor, request), limit=40)

    def _run_for_visitor(self, run_id: str, visitor: str | None, request: gr.Request) -> Run | None:
        if not run_id:
            return None
        try:
            run = self.studio.store.get(run_id)
        except KeyError:
            return None
        if self.settings.shared and run.visitor != self._visitor(visitor, request):
            return None
        return run

    def _owned_run(self, run_ids: list[str], index: int, visitor, request) -> Run | None:
        if not run_ids or not 0 <= index < len(run_ids):
            return None
        return self._run_for_visitor(run_ids[index], visitor, request)

    def _playable(self, path: Path) -> str:
        """A copy Gradio may serve, under this process's private hand-over folder."""
        target = self._handover / f"{uuid.uuid4().hex[:8]}-{path.name}"
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        return str(target)

    # -- layout, then wiring --

    def build(self) -> gr.Blocks:
        settings = self.settings
        with gr.Blocks(title="SkyReels V1 Studio", analytics_enabled=False) as demo:
            visitor = gr.BrowserState(None, storage_key="skyreels-visitor")
            gr.HTML(
                "<div class='studio-header'><h1>SkyReels V1 Studio</h1><p>Turn a still image "
                "and a prompt into a 4-second film-style clip with SkyReels V1, an image-to-video "
                "model tuned on film and TV, hosted by WaveSpeedAI.</p></div>"
            )
            gr.HTML(_banner(settings))
            with gr.Tabs() as tabs:
                with gr.Tab("Create", id="create"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=1, min_width=320):
                            image = ImageInput(
                                label="Image",
                                sources=["upload", "clipboard", "webcam"],
                                type="filepath",
                                height=300,
                            )
                            with gr.Accordion("What the model will see", open=True):
                                prepared = gr.Image(
                                    label="Prepared frame", interactive=False, height=220, show_label=False
                                )
                                prep_notes = gr.Markdown(elem_classes="prep-notes")
                            prompt = gr.Textbox(
                                label="Prompt", lines=3, max_lines=8, placeholder=PLACEHOLDER
                            )
                            fps_prefix = gr.Checkbox(
                                value=True,
                                label=f'Start the prompt with "{MODEL.prompt_prefix}" (recommended by SkyReels)',
                            )
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
                            fit = gr.Radio(
                                choices=[("Crop to the frame", "crop"), ("Fit the whole picture", "pad")],
                                value="crop",
                                label="Framing",
                            )
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
                            with gr.Row():
                                go = gr.Button("Generate", variant="primary", scale=3)
                                halt = gr.Button("Stop", variant="stop", scale=1)
                        with gr.Column(scale=1, min_width=320):
                            status = gr.HTML(_idle_status(), label="Status", elem_id="status")
                            video = gr.Video(
                                label="Video",
                                autoplay=True,
                                loop=True,
                                buttons=["download"],
                                interactive=False,
                                elem_id="result-video",
                            )
                            summary = gr.Markdown(elem_id="summary")
                            expectations = gr.Markdown(elem_classes="prep-notes")
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
                                label="Your runs, newest first", columns=3, height=520, allow_preview=False
                            )
                            refresh = gr.Button("Refresh", size="sm")
                        with gr.Column(scale=2):
                            past_video = gr.Video(label="Video", autoplay=True, loop=True, interactive=False)
                            past_details = gr.Markdown("Pick a run to see it here.")
                            with gr.Row():
                                again = gr.Button("Use these settings")
                                reroll = gr.Button("Run again with a new seed")

            # wiring
            image.change(self.show_prepared, [image, fit], [prepared, prep_notes], queue=False, api_visibility="private")
            fit.change(self.show_prepared, [image, fit], [prepared, prep_notes], queue=False, api_visibility="private")
            dice.click(lambda: random.randint(0, SEED_MAX), None, seed, queue=False, api_visibility="private")
            # Generate and "Run again with a new seed" are one run, with one limit and queue.
            run_wiring = dict(
                fn=self.generate,
                inputs=[prompt, image, seed, fps_prefix, fit, api_key, visitor],
                outputs=[status, video, summary],
                concurrency_limit=settings.max_concurrent_tasks,
                concurrency_id="generate",
                show_progress="minimal",
                show_progress_on=[status],
            )
            run_event = go.click(**run_wiring, api_name="generate")
            reroll.click(
                self.reuse_with_new_seed,
                [chosen, visitor],
                [prompt, image, seed, tabs],
                api_visibility="private",
            ).success(**run_wiring, api_visibility="private")
            halt.click(self.stop, None, None, queue=False, api_visibility="private")
            history_wiring = dict(
                fn=self.history, inputs=[visitor], outputs=[gallery, history_ids], queue=False, api_visibility="private"
            )
            run_event.then(**history_wiring)
            gr.on(triggers=[history_tab.select, refresh.click], **history_wiring)
            gallery.select(
                self.pick, [history_ids, visitor], [past_video, past_details, chosen], api_visibility="private"
            )
            again.click(
                self.reuse, [chosen, visitor], [prompt, image, seed, tabs], api_visibility="private"
            )
            demo.load(_ensure_visitor, [visitor], [visitor], queue=False, api_visibility="private")
            demo.load(self.expectations, None, expectations, queue=False, api_visibility="private")
        demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrent_tasks)
        return demo


def _ensure_visitor(visitor: str | None) -> str:
    return visitor or uuid.uuid4().hex


def _shown(run: Run) -> bool:
    return (run.status == DONE and run.has_video) or bool(run.image_path and Path(run.image_path).exists())


def _caption(run: Run) -> str:
    prompt = MODEL.without_prefix(run.prompt)
    prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    return f"{run.status} · seed {run.seed} · {prompt}"


def _summary(run: Run, event: Done) -> str:
    t = event.timings
    parts = [f"**Seed {event.seed}**", f"task `{run.task_id}`"]
    if t.get("inference_s"):
        parts.append(f"made in {t['inference_s']:.1f} s")
    parts.append(f"{t.get('total_s', event.elapsed_s):.1f} s from click to video")
    text = " · ".join(parts)
    if event.nsfw:
        text += "\n\n⚠️ WaveSpeed flagged this video as possibly NSFW."
    if run.mode == "preview":
        text += "\n\n_Offline preview: a camera move over your image, not SkyReels output._"
    return text


def _details(run: Run, statuses: list[tuple[float, str]]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at))
    lines = [
        f"**{run.status}** · {when} · seed {run.seed} · {'offline preview' if run.mode == 'preview' else run.api_host}",
        "",
        f"> {run.prompt}",
    ]
    if run.task_id:
        lines.append(f"\nTask `{run.task_id}`")
    if run.error_message:
        lines.append(f"\n{run.error_message}")
    if run.inference_ms:
        lines.append(f"\nMade in {run.inference_ms / 1000:.1f} s.")
    if len(statuses) > 1:
        start = statuses[0][0]
        lines.append("\n" + " → ".join(f"{s} (+{at - start:.0f}s)" for at, s in statuses))
    return "\n".join(lines)


def _banner(settings: Settings) -> str:
    if settings.has_key:
        return (
            "<div class='mode-banner live'>Live: videos are made by SkyReels V1 on WaveSpeedAI "
            "(about $0.20 each, paid by this app's key"
            + (", a few per visitor each hour; paste your own key for more" if settings.shared else "")
            + ").</div>"
        )
    return (
        "<div class='mode-banner preview'><strong>Offline preview.</strong> No WaveSpeed key is set, "
        "so videos are a camera move over your image rendered on this machine, <strong>not "
        f"SkyReels output</strong>. Paste your own key below (get one at {KEY_PAGE}) or set "
        "WAVESPEED_API_KEY to make real videos.</div>"
    )




def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.1f} minutes"


def launch_options(settings: Settings) -> dict[str, Any]:
    """What `launch()` needs: no run history in the browser, no SSR, our theme and CSS."""
    return dict(
        run_history=False,
        ssr_mode=False,
        footer_links=["api"],
        theme=gr.themes.Soft(primary_hue="indigo"),
        css=CSS,
        show_error=True,
        # Each live run holds a worker thread while it waits between ticks: keep room for every
        # allowed run plus the page's quick events, or runs past Gradio's default 40 wait for a thread.
        max_threads=max(40, settings.max_concurrent_tasks + 10),
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = StudioApp()
    app.studio.start_follower()  # finish runs left over from before a restart
    app.build().launch(**launch_options(app.settings))
