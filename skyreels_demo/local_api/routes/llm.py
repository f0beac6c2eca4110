"""WaveSpeed's vision LLM (`POST /api/v3/wavespeed-ai/any-llm/vision`), as the offline preview.

There is no language model here: the answer is a template sentence, marked as a preview at its
start (a tag the page takes out of the prompt box, saying instead that it is a placeholder), built
from the idea the question carries on its last line ("The visitor's idea: ...", as the studio's
prompts.ask writes it; read here on its own, as WaveSpeed's server would have to, so the backend
needs nothing of the app) and from what can be measured of the picture without a model: its
shape and its light. It never guesses who or what is in it ("the subject", not "a person": the
picture may be a cat or a cup). Everything around it
is real: the key, the schema, the image must be one this backend can fetch and read, sync mode
answers at once with the envelope (`data.outputs = [text]`), and without sync mode (or with the
`unfinished_answers` fault armed) the answer is "processing" until the result route has it.
Answers live in memory only: a sync answer is read once, at once.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from skyreels_demo.local_api.fetch import ImageUnavailable, refuse_address
from skyreels_demo.local_api.routes.common import answer, error_response, prediction_data, success
from skyreels_demo.models import VISION_LLM
from skyreels_demo.status import ApiWord

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("llm",)
PREVIEW_MARK = "[Offline preview suggestion]"
IDEA_LABEL = "The visitor's idea: "  # how a question's last line names the idea, if it has one
# An answer that is not ready at once (no sync mode, or the fault) is ready this much later.
LATER_S = 0.3


@dataclass(frozen=True)
class Answered:
    """One vision LLM call: its text or its failure, and from when it reads as final."""

    id: str
    created_at: float
    ready_at: float
    text: str = ""
    failure: tuple[int, str] | None = None

    def status_at(self, now: float) -> str:
        if now < self.ready_at:
            return ApiWord.PROCESSING
        return ApiWord.FAILED if self.failure is not None else ApiWord.COMPLETED


class Answers:
    """The calls this backend has answered, by id, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Answered] = {}

    def add(self, answered: Answered) -> None:
        with self._lock:
            self._by_id[answered.id] = answered

    def find(self, answer_id: str) -> Answered | None:
        with self._lock:
            return self._by_id.get(answer_id)


def idea_in(question: str) -> str:
    """The idea on the question's last line ("" if that line does not name one)."""
    last = question.rstrip().rsplit("\n", 1)[-1]
    return last.removeprefix(IDEA_LABEL).strip() if last.startswith(IDEA_LABEL) else ""


@dataclass(frozen=True)
class Looks:
    """What can be told of a picture without a model: its light and a framing for its shape."""

    light: str = "soft, natural"
    framing: str = "a steady medium shot"

    @classmethod
    def of(cls, picture: Image.Image) -> Looks:
        width, height = picture.size
        framing = "a wide, steady shot" if width > height * 1.2 else "a tall, steady shot" if height > width * 1.2 else cls.framing
        small = picture.convert("RGB")
        small.thumbnail((32, 32))
        red, green, blue = (sum(band) / len(band) for band in zip(*small.getdata()))
        luma = 0.299 * red + 0.587 * green + 0.114 * blue
        brightness = "low, moody" if luma < 70 else "bright, even" if luma > 180 else "soft"
        warmth = "warm" if red - blue > 20 else "cool" if blue - red > 20 else "natural"
        return cls(f"{brightness}, {warmth}", framing)


def preview_text(idea: str, looks: Looks = Looks()) -> str:
    """The offline stand-in for a written prompt: marked, neutral about what the picture shows,
    built from the idea and the picture's light and shape; a prompt only, no advice inside it."""
    if idea:
        idea = idea.rstrip(". ")
        what = f"{idea}, in {looks.framing}"  # the idea as the visitor wrote it
    else:
        what = f"The subject of the picture moves gently and naturally in {looks.framing} as the camera slowly pushes in"
    return f"{PREVIEW_MARK} {what}; {looks.light} light, shallow depth of field, film look."


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.post(VISION_LLM.path)
    async def vision(request: Request) -> Response:
        async def build() -> Response:
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                return error_response(400, 1401, "The request body is not valid JSON.")
            problem = refuse_question(body)
            if problem is not None:
                return error_response(400, *problem)
            answered = await run_in_threadpool(_answer, backend, body)
            return success(answer_data(answered, backend.base_url, time.time()))

        return await answer(backend, "llm", request, build)


def answer_data(answered: Answered, base_url: str, now: float) -> dict[str, Any]:
    """The envelope's `data` for a call, as it stands at `now` (the result route uses it too)."""
    status = answered.status_at(now)
    data = prediction_data(answered.id, VISION_LLM.name, base_url, status, answered.created_at)
    if status == ApiWord.COMPLETED:
        data["outputs"] = [answered.text]
        data["has_nsfw_contents"] = [False]
        data["timings"] = {"inference": max(1, round((answered.ready_at - answered.created_at) * 1000))}
    elif status == ApiWord.FAILED:
        data["code"], data["error"] = answered.failure  # type: ignore[misc]
    return data


def refuse_question(body: Any) -> tuple[int, str] | None:
    """(API code, sentence) when a body does not fit the vision LLM's schema, else None."""
    if not isinstance(body, dict):
        return 1401, "The request body must be a JSON object."
    prompt = body.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return 1400, "Missing required parameter: prompt."
    if not isinstance(prompt, str):
        return 1401, "Invalid parameter: prompt must be a string."
    if not isinstance(body.get("system_prompt", ""), str):
        return 1401, "Invalid parameter: system_prompt must be a string."
    images = body.get("images", [])
    if not isinstance(images, list) or not all(isinstance(url, str) and url for url in images):
        return 1401, "Invalid parameter: images must be a list of image URLs."
    for name in ("enable_sync_mode", "reasoning"):
        if not isinstance(body.get(name, False), bool):
            return 1401, f"Invalid parameter: {name} must be true or false."
    temperature = body.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        return 1401, "Invalid parameter: temperature must be a number from 0 to 2."
    tokens = body.get("max_tokens", 1)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        return 1401, "Invalid parameter: max_tokens must be a positive integer."
    return None


def _answer(backend: LocalBackend, body: dict[str, Any]) -> Answered:
    """Look at the images as a model would have to, then answer (worker thread: it may fetch)."""
    now = time.time()
    faults = backend.faults._take_answer()
    failure, looks = faults.failure, None
    for url in body.get("images", []):
        problem, seen = _look(backend, url)
        failure, looks = failure or problem, looks or seen
    ready = not faults.unfinished and body.get("enable_sync_mode") is True
    answered = Answered(
        id=uuid.uuid4().hex,
        created_at=now,
        ready_at=now if ready else now + LATER_S,
        text=preview_text(idea_in(body["prompt"]), looks or Looks()),
        failure=failure,
    )
    backend.answers.add(answered)
    return answered


def _look(backend: LocalBackend, url: str) -> tuple[tuple[int, str] | None, Looks | None]:
    """How the picture at `url` looks, or why the model could not look at it (code 1402 and a sentence)."""
    problem = refuse_address(url)
    if problem is not None:
        return (1402, problem), None
    try:
        data = backend.fetch_image(url)
        with Image.open(io.BytesIO(data)) as picture:
            picture.verify()
        with Image.open(io.BytesIO(data)) as picture:
            return None, Looks.of(picture)
    except ImageUnavailable as exc:
        return (1402, str(exc)), None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return (1402, "The image URL does not point to a picture that can be read (JPG, PNG, WebP...)."), None
