"""A prompt written from the picture: WaveSpeed's vision LLM drafts a SkyReels V1 prompt.

`suggest_prompt` prepares the image as a run would, uploads it, and asks `VISION_LLM` (in sync
mode) to describe the shot SkyReels V1 should make of it, steered by a short idea the visitor
may type ("she laughs", "slow dolly in"). A suggestion costs whoever pays for it a call, so it
is recorded as a run of model `VISION_LLM` and counted by the same caps as a video; History,
expectations and resume look only at video runs (`RunStore`'s `model=` filter). With no key
the built-in backend answers with a plainly marked template sentence instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from skyreels_demo import images
from skyreels_demo.errors import BadInput, ServiceError, TaskFailed, TimedOut
from skyreels_demo.config import is_loopback_url
from skyreels_demo.studio.keys import in_use
from skyreels_demo.models import VISION_LLM, ModelSpec
from skyreels_demo.store.records import Mode
from skyreels_demo.studio.run_request import RunRequest, image_source
from skyreels_demo.images.remote import ImageAddress
from skyreels_demo.wavespeed.schedule import Expectation, schedule_from_setting
from skyreels_demo.wavespeed.tasks import Task

if TYPE_CHECKING:
    from skyreels_demo.studio.studio import Studio

log = logging.getLogger(__name__)

MAX_IDEA_CHARS = 200
# A suggestion is worth a short wait, not a video's fifteen minutes.
ANSWER_WAIT_S = 120.0
# Bounds what one call can cost and keeps the answer to a prompt's length.
MAX_TOKENS = 300
IDEA_LABEL = "The visitor's idea: "

def system_prompt(model: ModelSpec) -> str:
    """The vision LLM's instructions for writing a prompt for `model` (the studio's video model)."""
    prefix = model.prompt_prefix.strip(", ")
    return (
        f"You write prompts for {model.title}, an image-to-video model trained on film and TV clips. "
        f"You see the first frame of a {model.duration_s:.0f}-second shot. Describe the shot it should "
        "become: who is in the frame and what they look like, their expression and how they move, what "
        "the camera does, and the light. Write one or two plain sentences in the present tense, about 40 "
        "to 70 words, like a line from a screenplay. Use only motion the picture makes plausible, and keep "
        "faces and hands natural. No title, no list, no quotation marks, no hashtags"
        + (f', and do not start with "{prefix}" (the app adds it)' if prefix else "")
        + ". If the visitor gives an idea, build the shot around it. Answer with the prompt only."
    )


@dataclass(frozen=True)
class Suggestion:
    """A prompt to put in the prompt box, and whether it came from the real API or the preview."""

    text: str
    mode: str  # "api" or "preview"

    @property
    def is_preview(self) -> bool:
        return self.mode == "preview"


def check_idea(idea: str | None) -> str:
    """The idea as one line of text, or a refusal before anything is spent."""
    if idea is not None and not isinstance(idea, str):
        raise BadInput('The idea must be a few words of text, like "she laughs" or "slow dolly in".')
    text = " ".join((idea or "").split())
    if len(text) > MAX_IDEA_CHARS:
        raise BadInput(
            f"The idea is {len(text)} characters long; keep it to {MAX_IDEA_CHARS} or fewer, "
            'like "she laughs" or "slow dolly in".'
        )
    return text


def ask(idea: str) -> str:
    """The question sent with the picture; the idea, if any, on its own last line."""
    question = "Write the SkyReels V1 prompt for this picture."
    return f"{question}\n{IDEA_LABEL}{idea}" if idea else question


def suggest_prompt(studio: "Studio", request: RunRequest) -> Suggestion:
    """Ask the vision LLM to write a prompt for the studio's model from `request.image`.

    `request.prompt` is the visitor's idea to steer it (may be empty); its image, framing, key
    and requester are a run's. The idea and the image are checked, and the call recorded within
    the caps, before anything is sent. Raises a `StudioError` with its sentence on any failure.
    A visitor's key is masked in the log while the call uses it, then forgotten (keys.py).
    """
    with in_use(request.api_key):
        return _suggest(studio, request)


def _suggest(studio: "Studio", request: RunRequest) -> Suggestion:
    wish = check_idea(request.prompt)
    source = image_source(
        request.image,
        request.fit,
        studio.model,
        missing="Add an image first: the prompt is written from the picture.",
        allow_loopback=studio.settings.allow_loopback_images,
    )
    run, backend = studio.open_run(request, VISION_LLM, prompt=wish, seed=-1)  # a prompt has no seed
    try:
        with studio.until_submitted(run, backend, request) as submitted:
            if isinstance(source, ImageAddress):  # fetched only now, the call admitted by its caps
                source = studio.fetch_admitted(source, studio.model, request)
            if isinstance(source, images.PreparedImage):
                # Sent, not kept: a suggestion leaves no image on disk.
                image_url = backend.client.upload(source.data, source.filename, source.content_type)
                run = studio.recorder.image_sent(run, image_url, source.sha256)
            else:
                run, image_url = studio.hand_over_image(run, backend, source)
            inputs = {
                "prompt": ask(wish),
                "system_prompt": system_prompt(studio.model),
                "images": [image_url],
                "max_tokens": MAX_TOKENS,
                "enable_sync_mode": True,
            }
            run, job = studio.launch(run, backend, VISION_LLM, inputs)
            submitted()
        try:
            task = job.task if job.task.is_final else _wait_for_answer(studio, job)
            if not task.succeeded:
                raise _not_written(task.id, task.error_code, task.error)
            text = answer_text(task.raw, studio.model)
        except BaseException as exc:
            studio.recorder.answer_lost(run, exc)  # the call was made: it counts
            raise
        studio.recorder.answered(run, task.inference_ms)
        log.info("suggested a prompt (%s, %d characters)", backend.mode, len(text))
        return Suggestion(text, str(backend.mode))
    finally:
        if backend.is_visitors:
            backend.client.close()  # the visitor's key is forgotten with its client


def answer_text(data: Mapping[str, Any], model: ModelSpec) -> str:
    """The prompt for `model` in an answer's `data`, tidied; lenient about the shape of `outputs`."""
    text = _first_text(data.get("outputs"))
    if text is None:
        text = _first_text(data.get("output"))
    cleaned = _tidy(text or "", model.max_prompt_chars)
    if not cleaned:
        raise ServiceError(
            "The vision model answered without any text: try again, or write the prompt yourself.",
            detail=f"outputs: {str(data.get('outputs'))[:200]}",
        )
    return cleaned


# --- pieces ------------------------------------------------------------------------------------


def _wait_for_answer(studio: "Studio", job) -> Task:
    """Follow a call whose sync answer came back unfinished, for a short while."""
    mode = Mode.PREVIEW if is_loopback_url(job.client.base_url) else Mode.API
    schedule = schedule_from_setting(studio.settings.poll, Expectation.prior(VISION_LLM), studio.check_rule(mode, VISION_LLM))
    wait_s = min(ANSWER_WAIT_S, studio.settings.run_deadline_s)
    task = job.task
    try:
        for task in job.follow(schedule=schedule, deadline_s=wait_s):
            pass
    except TaskFailed as exc:
        raise _not_written(exc.task_id, exc.code, exc.message) from None
    except TimedOut as exc:
        raise TimedOut(
            f"The vision model has not answered after {wait_s:.0f} s: try again in a minute, or "
            "write the prompt yourself.",
            task_id=exc.task_id,
            last_status=exc.last_status,
        ) from None
    return task


def _not_written(task_id: str, code: int | None, message: str) -> TaskFailed:
    if code == 1402:
        advice = "WaveSpeed could not download the picture; add it again and retry"
    elif code == 1200:
        advice = "it was stopped by content moderation; try another picture"
    else:
        advice = "try again, or write the prompt yourself"
    reason = f" ({message.rstrip('.')})" if message else ""
    return TaskFailed(f"The prompt could not be written{reason}: {advice}.", task_id=task_id, code=code, message=message)


def _first_text(value: Any) -> str | None:
    """The first piece of text in a string, a list, or a chat-style object."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, Mapping):
        for key in ("text", "content", "output", "message", "choices"):
            found = _first_text(value.get(key))
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_text(item)
            if found is not None:
                return found
    return None


_LABEL = re.compile(r"^\s*(?:\*\*)?(?:prompt|suggested prompt|skyreels(?: v1)? prompt)(?:\*\*)?\s*:\s*", re.I)
_PREFIX = re.compile(r"^\s*FPS-?\s*24\s*[,:.]?\s*", re.I)
_QUOTES = "\"'“”‘’`"


def _tidy(text: str, limit: int) -> str:
    """One paragraph, without a label, wrapping quotes or the FPS prefix the app adds itself."""
    text = re.sub(r"^```\w*|```$", "", text.strip()).strip()
    text = _LABEL.sub("", text)
    text = text.strip().strip(_QUOTES).strip()
    text = _PREFIX.sub("", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text
