"""Submitting a SkyReels V1 task and reading its (or a vision LLM call's) result, as WaveSpeed's
/api/v3 answers them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from skyreels_demo.local_api.clock import TaskRecord
from skyreels_demo.local_api.limits import OverLimits
from skyreels_demo.local_api.routes.common import answer, error_response, prediction_data, success
from skyreels_demo.local_api.routes.files import OUTPUTS_PATH
from skyreels_demo.local_api.routes.llm import answer_data
from skyreels_demo.local_api.storage import MAX_UPLOAD_BYTES, UPLOADS_PATH
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import ApiWord

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("submit", "result")
# How often a submit with `enable_sync_mode` looks at its task while it holds the answer.
SYNC_CHECK_S = 0.05


def store_data_uri(backend: LocalBackend, uri: str) -> str:
    """Decode a `data:image/...;base64,` URI, check it is a picture, keep it; its URL here."""
    head, _, payload = uri.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64") or not payload:
        raise ValueError("a data URI must be data:image/<type>;base64,<data>")
    if len(payload) > (MAX_UPLOAD_BYTES * 4) // 3 + 4:
        raise ValueError("the inline image is larger than 20 MB")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the inline image is not valid base64") from None
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.verify()
    except Exception:
        raise ValueError("the inline data is not a picture that can be read") from None
    kind, name = backend.storage.store_upload(data, "inline")
    return f"{backend.base_url}{UPLOADS_PATH}{name}"


def register(app: FastAPI, backend: LocalBackend) -> None:
    for model in backend.models.values():
        _serve_model(app, backend, model)
    _serve_results(app, backend)


def _serve_model(app: FastAPI, backend: LocalBackend, model: ModelSpec) -> None:
    """The submit route of one video model, at its own path."""

    @app.post(model.path)
    async def submit(request: Request) -> Response:
        async def build() -> Response:
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                return error_response(400, 1401, "The request body is not valid JSON.")
            problem = refuse_submission(body, model)
            if problem is not None:
                return error_response(400, *problem)
            seed = body.get("seed")
            image = body["image"]
            if image.startswith("data:"):
                # An inline image, as Hugging Face's WaveSpeed provider sends one: kept as an
                # upload of ours, so the task names it by URL like any other.
                try:
                    image = await run_in_threadpool(store_data_uri, backend, image)
                except ValueError as exc:
                    return error_response(400, 1401, f"Invalid parameter: image ({exc}).")
            webhook = request.query_params.get("webhook") or None
            try:
                record = await run_in_threadpool(
                    backend.create_task, model, body["prompt"], image, -1 if seed is None else seed, webhook
                )
            except OverLimits as exc:
                return error_response(429, 429, str(exc))
            if body.get("enable_sync_mode") is True:
                return await sync_answer(backend, record, model)
            return success(task_data(record, model, backend.base_url, backend.clock()))

        return await answer(backend, "submit", request, build)


def _serve_results(app: FastAPI, backend: LocalBackend) -> None:

    async def result(task_id: str, request: Request) -> Response:
        backend.note_check(task_id)

        async def build() -> Response:
            record = backend.find_task(task_id)
            if record is None:
                # One predictions namespace, as on WaveSpeed: a vision LLM call is a task too.
                answered = backend.answers.find(task_id)
                if answered is not None:
                    return success(answer_data(answered, backend.base_url, time.time()))
                return error_response(404, 404, "No task with that id was found.")
            return success(task_data(record, backend.model_of(record), backend.base_url, backend.clock()))

        return await answer(backend, "result", request, build)

    # data.urls.get names the first; some of WaveSpeed's pages show the second.
    app.add_api_route("/api/v3/predictions/{task_id}/result", result, methods=["GET"])
    app.add_api_route("/api/v3/predictions/{task_id}", result, methods=["GET"])


async def sync_answer(backend: LocalBackend, record: TaskRecord, model: ModelSpec) -> Response:
    """The answer to a submit with `enable_sync_mode`: held until the task ends, as WaveSpeed's
    is, then the final task; past `sync_wait_s`, the task as it stands, still processing, with
    code 5004 and the sentence WaveSpeed's SDK looks for (the task goes on: poll it by its id)."""
    deadline = time.monotonic() + backend.sync_wait_s
    while record.status not in (ApiWord.COMPLETED, ApiWord.FAILED) and time.monotonic() < deadline:
        await asyncio.sleep(SYNC_CHECK_S)
    data = task_data(record, model, backend.base_url, backend.clock())
    if data["status"] in (ApiWord.CREATED, ApiWord.PROCESSING):
        data["code"] = 5004
        data["error"] = (
            f"Sync mode timed out after {backend.sync_wait_s:g} s; the task is still running: "
            f"get its result at {data['urls']['get']}."
        )
    return success(data)


def task_data(record: TaskRecord, model: ModelSpec, base_url: str, now: float) -> dict[str, Any]:
    """The envelope's `data` for a task of `model`, as it stands at `now`."""
    status = record.status_at(now)
    data = prediction_data(record.id, model.name, base_url, status, record.created_at)
    if status == ApiWord.COMPLETED:
        done = max(record.due_at, record.render.at)  # type: ignore[union-attr]
        data["outputs"] = [f"{base_url}{OUTPUTS_PATH}{record.id}.mp4"]
        data["has_nsfw_contents"] = [record.nsfw]
        data["timings"] = {"inference": round((done - record.processing_at) * 1000)}
    elif status == ApiWord.FAILED:
        data["error"] = record.failure.message  # type: ignore[union-attr]
        data["code"] = record.failure.code  # type: ignore[union-attr]
    return data


def refuse_submission(body: Any, model: ModelSpec) -> tuple[int, str] | None:
    """(API code, sentence) when a submit body does not fit the schema, else None."""
    if not isinstance(body, dict):
        return 1401, "The request body must be a JSON object."
    for name in ("prompt", "image"):
        value = body.get(name)
        if value is None or value == "" or (isinstance(value, str) and not value.strip()):
            return 1400, f"Missing required parameter: {name}."
        if not isinstance(value, str):
            return 1401, f"Invalid parameter: {name} must be a string."
    seed = body.get("seed")
    # bool is an int subclass in Python but not an integer in JSON.
    seed_is_int = isinstance(seed, int) and not isinstance(seed, bool)
    low, high = model.seed_range
    if seed is not None and (not seed_is_int or not low <= seed <= high):
        return 1401, f"Invalid parameter: seed must be an integer from {low} to {high}."
    return None
