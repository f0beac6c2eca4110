"""What the app shows in words: the status board of a run, and the texts around a video.

Pure rendering from events (through their progress: studio/progress.py) and runs to HTML and
Markdown, each status with its plain lines for agents (plain_text); the layout is in page.py. Everything a person typed is escaped before it is shown.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from skyreels_demo.config import Settings
from skyreels_demo.studio.events import (
    Done,
    Downloading,
    Event,
    Fetching,
    InLine,
    Prepared,
    Processing,
    Submitted,
)
from skyreels_demo.models import ModelSpec
from skyreels_demo.store.records import RECOVERED_NOTE, Mode, Run, was_recovered
from skyreels_demo.status import RunStatus, Stage
from skyreels_demo.studio.progress import progress_of
from skyreels_demo.studio.variations import VariationUpdate

KEY_PAGE = "https://wavespeed.ai/accesskey"


_STAGES = tuple(stage.value for stage in Stage)  # plain words: the keys of `lines`
_LABELS = {
    Stage.PREPARE.value: "Prepare the image",
    Stage.UPLOAD.value: "Upload it",
    Stage.SUBMIT.value: "Submit the task",
    Stage.WAIT.value: "Make the video",
    Stage.DOWNLOAD.value: "Download the video",
    Stage.DONE.value: "Ready",
}


@dataclass
class StatusBoard:
    """What the status area shows: one line per stage, the current one live. Each event's line
    and stage come from its progress (studio/progress.py); the board words the stages it leaves
    behind in the past tense."""

    lines: dict[str, str] = field(default_factory=dict)
    current: str = Stage.PREPARE.value
    failed: str | None = None
    progress: float | None = None  # 0..1 while the video is being made
    stopped: bool = False  # ended by the person, not by a failure
    in_line: InLine | None = None  # the run's place while it waits for the account's next slot

    def apply(self, event: Event) -> None:
        # A place in line is shown until the run's turn comes (any later step ends the wait).
        self.in_line = event if isinstance(event, InLine) else None
        now = progress_of(event)
        if now is None:
            return
        self.lines[now.stage.value] = now.text
        if not isinstance(event, (Fetching, Prepared)):
            self.current = now.stage.value
        if isinstance(event, Prepared):
            self.current = Stage.UPLOAD.value
        elif isinstance(event, InLine):
            self.lines[Stage.UPLOAD.value] = "Waiting for your turn in line"
        elif isinstance(event, Submitted):
            upload = self.lines.get(Stage.UPLOAD.value, "")
            uploaded = upload.replace("Uploading", "Uploaded").rstrip("…") + "." if upload.startswith("Uploading") else ""
            self.lines[Stage.UPLOAD.value] = uploaded or "Uploaded."
            # The task id is for the summary's Details and the command line, not a person's status.
            self.lines[Stage.SUBMIT.value] = f"Submitted with seed {event.seed}."
            self.current, self.lines[Stage.WAIT.value] = Stage.WAIT.value, "Waiting for WaveSpeed to start…"
        elif isinstance(event, Processing) and now.making is not None:
            self.progress = now.making
        elif isinstance(event, Downloading):
            self.lines[Stage.WAIT.value] = "Made the video."
            self.progress = None
        elif isinstance(event, Done):
            self.lines[Stage.DOWNLOAD.value] = "Downloaded."
            self.lines[Stage.DONE.value] = done_words(event)

    def fail(self, sentence: str, *, stopped: bool = False) -> None:
        self.failed = self.current
        self.stopped = stopped
        self.lines[self.current] = sentence
        self.progress = None

    def rows(self) -> list[tuple[str, str, str]]:
        """(state, mark, words) of each stage: done ✓, active ●, pending ○, failed ✕, stopped ■."""
        rows = []
        reached = _STAGES.index(self.current)
        for index, stage in enumerate(_STAGES):
            text = self.lines.get(stage) or _LABELS[stage]
            if stage == self.failed:
                state, mark = ("stopped", "■") if self.stopped else ("failed", "✕")
            elif index < reached or (stage == Stage.DONE.value and self.current == Stage.DONE.value):
                state, mark = "done", "✓"
            elif index == reached and self.failed is None:
                state, mark = "active", "●"
            else:
                state, mark = "pending", "○"
            rows.append((state, mark, text))
        return rows

    def text(self) -> str:
        """The board in plain lines ("✓ Uploaded the image (74 KB)."), its place in line first."""
        place = [self.in_line.message] if self.in_line is not None else []
        return "\n".join(place + [f"{mark} {words}" for _, mark, words in self.rows()])

    def render(self) -> str:
        items = "".join(
            f'<li class="{state}"><span class="mark">{mark}</span><span>{html.escape(words)}</span></li>'
            for state, mark, words in self.rows()
        )
        meter = ""
        if self.progress is not None:
            meter = f'<div class="meter" aria-hidden="true"><div style="width:{self.progress * 100:.0f}%"></div></div>'
        shown = f'{place_in_line(self.in_line)}<ul class="stages" aria-live="polite">{items}</ul>{meter}'
        return _remember(shown, self.text())


# The plain text of each status rendered lately, for MCP: the tool's outputs come back to the
# MCP server over Gradio's loopback queue as the very strings the page gets, and the agent is
# handed the words they were made from (agent_results.plain_outputs), never a reading of HTML.
_PLAIN: "OrderedDict[str, str]" = OrderedDict()
_PLAIN_KEPT = 2048
_PLAIN_LOCK = threading.Lock()


def _remember(shown: str, text: str) -> str:
    with _PLAIN_LOCK:
        _PLAIN[shown] = text
        _PLAIN.move_to_end(shown)
        while len(_PLAIN) > _PLAIN_KEPT:
            _PLAIN.popitem(last=False)
    return shown


def plain_text(shown: str) -> str | None:
    """The plain lines of a status this module rendered lately; None for any other string."""
    with _PLAIN_LOCK:
        return _PLAIN.get(shown)


def place_in_line(event: InLine | None, tag: str = "p") -> str:
    """The run's place in line, readable by people and (data-queue-place: runs ahead) by scripts;
    `tag` "span" for a place within a line of text (a film's shot)."""
    if event is None:
        return ""
    return (
        f'<{tag} class="queue-place" role="status" data-queue-place="{event.ahead}" '
        f'data-queue-estimate-s="{event.estimate_s:.0f}">{html.escape(event.message)}</{tag}>'
    )


def idle_status() -> str:
    return '<p class="status-empty">Add an image and a prompt, then press Generate.</p>'


# History's picture for a made run whose video and image were pruned (retention.py): the run
# stays listed, with its prompt, seed and task id.
PRUNED_PICTURE = Path(__file__).resolve().parents[2] / "assets" / "pruned.png"


def shown(run: Run) -> bool:
    """Whether History lists the run: every made run (its files pruned or not), and any other
    that still has its picture."""
    return run.status == RunStatus.DONE or bool(run.image_path and Path(run.image_path).exists())


def picture_of(run: Run) -> str:
    """What History shows for a run: its video, else its picture, else the pruned placeholder."""
    if run.has_video:
        return run.video_path
    if run.image_path and Path(run.image_path).exists():
        return run.image_path
    return str(PRUNED_PICTURE)


# A run's state in a person's words, where History names it (a made take needs none).
_STATE_WORDS = {
    RunStatus.PREPARING: "Starting",
    RunStatus.SUBMITTING: "Starting",
    RunStatus.SUBMITTED: "Being made",
    RunStatus.QUEUED: "Being made",
    RunStatus.PROCESSING: "Being made",
    RunStatus.COMPLETED: "Saving",
    RunStatus.DONE: "Made",
    RunStatus.FAILED: "✕ Failed",
    RunStatus.REFUSED: "✕ Not made",
    RunStatus.UNCONFIRMED: "? Not confirmed",
    RunStatus.LOST: "✕ Lost",
}


def state_words(run: Run) -> str:
    return _STATE_WORDS.get(run.status, str(run.status).capitalize())


def when_made(run: Run, now: float | None = None) -> str:
    """When a run was made, as a person reads it: "14:02" today, "3 Dec 14:02" before."""
    made = time.localtime(run.created_at)
    today = time.localtime(time.time() if now is None else now)
    if made[:3] == today[:3]:
        return time.strftime("%H:%M", made)
    return f"{made.tm_mday} " + time.strftime("%b %H:%M", made) + (
        "" if made.tm_year == today.tm_year else f" {made.tm_year}"
    )


def caption(run: Run, model: ModelSpec) -> str:
    """History's caption: what a person wants of a take (its prompt, its seed, when), and its
    state only when it is not a made take."""
    prompt = model.without_prefix(run.prompt)
    prompt = prompt if len(prompt) <= 48 else prompt[:47] + "…"
    words = f"{prompt} · seed {run.seed} · {when_made(run)}"
    return words if run.status == RunStatus.DONE else f"{state_words(run)} · {words}"


def _disclosure(lines: list[str]) -> str:
    """Markdown lines behind a "Details" disclosure (blank lines keep them Markdown inside it)."""
    return "<details><summary>Details</summary>\n\n" + "\n\n".join(lines) + "\n\n</details>"


def summary(run: Run, event: Done, model: ModelSpec) -> str:
    t = event.timings
    parts = [f"**Seed {event.seed}**"]
    if t.get("inference_s"):
        parts.append(f"made in {t['inference_s']:.1f} s")
    parts.append(f"{t.get('total_s', event.elapsed_s):.1f} s from click to video")
    text = " · ".join(parts)
    if event.nsfw:
        text += "\n\n⚠️ WaveSpeed flagged this video as possibly NSFW."
    if run.mode == Mode.PREVIEW:
        text += f"\n\n_Offline preview: a camera move over your image, not {model.title} output._"
    # For the curious and for agents (who read the Markdown as it is): the task, behind Details.
    return text + "\n\n" + _disclosure([f"task `{run.task_id}`"])


def details(run: Run, statuses: list[tuple[float, str]], model: ModelSpec | None = None) -> str:
    """History's words for a picked take: its state, when, seed and prompt as the person wrote it;
    the task, the prompt as sent and the states it went through behind "Details"."""
    where = "offline preview" if run.mode == Mode.PREVIEW else run.api_host
    typed = model.without_prefix(run.prompt) if model is not None else run.prompt
    lines = [f"**{state_words(run)}** · {when_made(run)} · seed {run.seed} · {where}", "", f"> {typed}"]
    if run.note:
        lines.append(f"\n{run.note}")
    if was_recovered(statuses):
        lines.append(f"\n{RECOVERED_NOTE}")
    if run.error_message and run.error_message != run.note:
        lines.append(f"\n{run.error_message}")
    if run.inference_ms:
        lines.append(f"\nMade in {run.inference_ms / 1000:.1f} s.")
    more = []
    if run.task_id:
        more.append(f"Task `{run.task_id}`")
    if typed != run.prompt:
        more.append(f"Sent to the model as: {run.prompt}")
    if len(statuses) > 1:
        start = statuses[0][0]
        more.append(" → ".join(f"{s} (+{at - start:.0f}s)" for at, s in statuses))
    if more:
        lines.append("\n" + _disclosure(more))
    return "\n".join(lines)


def banner(settings: Settings, model: ModelSpec, price: float | None = None) -> str:
    """What the page runs on; `price`: a run's, as WaveSpeed answers it (default: the listed one)."""
    if settings.has_key:
        return (
            f"<div class='mode-banner live'>Live: videos are made by {html.escape(model.title)} on WaveSpeedAI "
            f"(about ${model.price_usd if price is None else price:.2f} each, paid by this app's key"
            + (", a few per visitor each hour; paste your own key for more" if settings.shared else "")
            + ").</div>"
        )
    return (
        "<div class='mode-banner preview'><strong>Offline preview.</strong> No WaveSpeed key is set, "
        "so videos are a camera move over your image made on this machine, <strong>not SkyReels "
        "output</strong>. To make real videos, paste your own key under \"Your own WaveSpeed key\" "
        "or set WAVESPEED_API_KEY.</div>"
    )




def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.1f} minutes"


def price_line(settings: Settings, model: ModelSpec, *, own_key: bool = False, price: float | None = None) -> str:
    """What one video costs, and whose credit pays, beside Generate; `price`: as WaveSpeed
    answers it for the key that pays (pricing.py), else the model's listed price."""
    each = f"${model.price_usd if price is None else price:.2f}"
    if own_key or (settings.has_key and not settings.shared):
        return f"Each video uses about {each} of your WaveSpeed credit."
    if settings.has_key:
        return f"Each video uses about {each} of this Space's credit; paste your own key for more."
    return "Offline preview: free, made on this machine."


def variation_grid(latest: dict[int, VariationUpdate]) -> list[tuple[str, str]]:
    return [
        (str(update.video_path), f"Seed {update.seed} (variation {number})")
        for number, update in sorted(latest.items())
        if update.video_path is not None
    ]


def status_lines(lines: Iterable[str], texts: Iterable[str] | None = None) -> str:
    """A status made of lines (a film's shots, the variations), each already HTML, one paragraph
    each: the page shows it as it is, a place in line keeping its data-queue-place (a Markdown
    block would strip it). `texts`: the same lines in plain words, for agents (plain_text); when
    a caller gives none, its own lines' few tags are dropped (they are this app's markup)."""
    lines = list(lines)
    words = list(texts) if texts is not None else [html.unescape(_TAG.sub("", line)) for line in lines]
    shown = '<div class="status-lines">' + "".join(f"<p>{line}</p>" for line in lines) + "</div>"
    return _remember(shown, "\n".join(words))


_TAG = re.compile(r"<[^>]*>")


def status_line(words: str) -> str:
    """A status of one line of plain words."""
    return status_lines([html.escape(words)], [words])


def done_words(event: Done) -> str:
    """A finished run in words, without its seed (said beside it, or in the summary below)."""
    made = event.timings.get("inference_s")
    total = event.timings.get("total_s", event.elapsed_s)
    flag = " WaveSpeed flagged this video as possibly NSFW." if event.nsfw else ""
    return f"Done: {f'made in {made:.1f} s, ' if made else ''}{total:.1f} s in all.{flag}"


def event_words(event: Event | None, otherwise: str) -> str:
    """What a run is doing now, as HTML, within a line that already names its seed (a film's
    shot, a variation): its place in line marked up as on the status board; no task id, and the
    seed not said again."""
    if isinstance(event, InLine):
        return place_in_line(event, "span")
    if isinstance(event, Submitted):
        return "Submitted."
    if isinstance(event, Done):
        return html.escape(done_words(event))
    return html.escape(event.message if event is not None else otherwise)


def variation_lines(latest: dict[int, VariationUpdate]) -> str:
    lines, texts = [], []
    for number, update in sorted(latest.items()):
        mark = "✓" if update.video_path else ("✕" if update.error else "●")
        words = html.escape(update.error.sentence) if update.error is not None else event_words(update.event, "Waiting to start…")
        lines.append(f"{mark} <strong>{number}</strong> · seed {update.seed} · {words}")
        said = update.error.sentence if update.error is not None else _said(update.event, "Waiting to start…")
        texts.append(f"{mark} {number} · seed {update.seed} · {said}")
    return status_lines(lines, texts)


def _said(event: Event | None, otherwise: str) -> str:
    """`event_words` in plain words."""
    if isinstance(event, Submitted):
        return "Submitted."
    if isinstance(event, Done):
        return done_words(event)
    return event.message if event is not None else otherwise
