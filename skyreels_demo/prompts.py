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
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from . import images
from .access import VISITOR, Backend
from .caps import limits_for
from .errors import BadInput, ServiceError, StudioError, TaskFailed, TimedOut
from .models import SKYREELS_V1, VISION_LLM
from .runs import DONE, FAILED, REFUSED, SUBMITTED
from .schedule import Expectation, schedule_from_setting
from .tasks import Task

if TYPE_CHECKING:
    from .studio import Studio

log = logging.getLogger(__name__)

MAX_IDEA_CHARS = 200
# A suggestion is worth a short wait, not a video's fifteen minutes.
ANSWER_WAIT_S = 120.0
# Bounds what one call can cost and keeps the answer to a prompt's length.
MAX_TOKENS = 300
IDEA_LABEL = "The visitor's idea: "

SYSTEM_PROMPT = (
    "You write prompts for SkyReels V1, an image-to-video model trained on film and TV clips. "
    "You see the first frame of a four-second shot. Describe the shot it should become: who is "
    "in the frame and what they look like, their expression and how they move, what the camera "
    "does, and the light. Write one or two plain sentences in the present tense, about 40 to 70 "
    "words, like a line from a screenplay. Use only motion the picture makes plausible, and keep "
    "faces and hands natural. No title, no list, no quotation marks, no hashtags, and do not "
    f'start with "{SKYREELS_V1.prompt_prefix.strip(", ")}" (the app adds it). If the visitor gives '
    "an idea, build the shot around it. Answer with the prompt only."
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


def idea_in(question: str) -> str:
    """The idea `ask` put into a question ("" if none): the offline backend builds from it."""
    last = question.rstrip().rsplit("\n", 1)[-1]
    return last[len(IDEA_LABEL):].strip() if last.startswith(IDEA_LABEL) else ""


def suggest_prompt(
    studio: "Studio",
    image: Any,
    idea: str = "",
    *,
    api_key: str | None = None,
    requester: str = "local",
    signed_in: bool = False,
    fit: str = "crop",
) -> Suggestion:
    """Ask the vision LLM to write a SkyReels V1 prompt from `image`, steered by `idea`.

    `image` is what `Studio.generate` takes (a path, bytes, a Pillow image, an http(s) URL, or a
    `PreparedImage`); `requester` and `signed_in` say who asks, as the server knows them, for the
    caps. The idea and the image are checked, and the call recorded within the caps, before
    anything is sent. Raises a `StudioError` with its sentence on any failure.
    """
    wish = check_idea(idea)
    source = _image_source(image, fit)
    backend = studio.access.backend_for(api_key)
    try:
        run = studio.store.create(
            prompt=wish,
            seed=-1,  # a prompt has no seed; the column wants a number
            mode=backend.mode,
            api_host=backend.host,
            key_source=backend.key_source,
            model=VISION_LLM.name,
            requester=requester,
            within=limits_for(studio.settings, backend, requester, signed_in=signed_in),
        )
        submitted = False
        try:
            if isinstance(source, images.PreparedImage):
                image_url = backend.client.upload(source.data, source.filename, source.content_type)
                studio.store.update(run.id, image_sha256=source.sha256, image_url=image_url)
            else:
                image_url = source
                studio.store.update(run.id, image_url=image_url)
            inputs = {
                "prompt": ask(wish),
                "system_prompt": SYSTEM_PROMPT,
                "images": [image_url],
                "max_tokens": MAX_TOKENS,
                "enable_sync_mode": True,
            }
            task = backend.client.submit(VISION_LLM, inputs)
            submitted = True
            studio.store.update(run.id, task_id=task.id, status=SUBMITTED, submitted_at=time.time())
            if not task.is_final:
                task = _wait_for_answer(studio, backend, task)
            if not task.succeeded:
                raise _not_written(task.id, task.error_code, task.error)
            text = answer_text(task.raw)
        except BaseException as exc:
            # Refused before the call, nothing was paid; after it, the call counts as made.
            reason = exc.sentence if isinstance(exc, StudioError) else "stopped before an answer came"
            studio.store.update(
                run.id, status=FAILED if submitted else REFUSED, error_message=reason, finished_at=time.time()
            )
            raise
        studio.store.update(run.id, status=DONE, finished_at=time.time(), inference_ms=task.inference_ms)
        log.info("suggested a prompt (%s, %d characters)", backend.mode, len(text))
        return Suggestion(text, backend.mode)
    finally:
        if backend.key_source == VISITOR:
            backend.client.close()  # the visitor's key is forgotten with its client


def answer_text(data: Mapping[str, Any]) -> str:
    """The prompt in an answer's `data`, tidied; lenient about the shape of `outputs`."""
    text = _first_text(data.get("outputs"))
    if text is None:
        text = _first_text(data.get("output"))
    cleaned = _tidy(text or "")
    if not cleaned:
        raise ServiceError(
            "The vision model answered without any text: try again, or write the prompt yourself.",
            detail=f"outputs: {str(data.get('outputs'))[:200]}",
        )
    return cleaned


# --- pieces ------------------------------------------------------------------------------------


def _image_source(image: Any, fit: str) -> images.PreparedImage | str:
    """A prepared frame to upload, or an http(s) URL passed on as it is."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise BadInput("Add an image first: the prompt is written from the picture.")
    if isinstance(image, images.PreparedImage):
        return image
    if images.is_remote_url(image):
        return image.strip()
    return images.prepare(image, fit=fit)


def _wait_for_answer(studio: "Studio", backend: Backend, first: Task) -> Task:
    """Follow a call whose sync answer came back unfinished, for a short while."""
    schedule = schedule_from_setting(studio.settings.poll, Expectation.prior(VISION_LLM))
    wait_s = min(ANSWER_WAIT_S, studio.settings.run_deadline_s)
    task = first
    try:
        for task in backend.client.follow(first.id, schedule=schedule, deadline_s=wait_s, first=first):
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


def _tidy(text: str) -> str:
    """One paragraph, without a label, wrapping quotes or the FPS prefix the app adds itself."""
    text = re.sub(r"^```\w*|```$", "", text.strip()).strip()
    text = _LABEL.sub("", text)
    text = text.strip().strip(_QUOTES).strip()
    text = _PREFIX.sub("", text)
    text = " ".join(text.split())
    limit = SKYREELS_V1.max_prompt_chars
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text
