"""The account's list of predictions (`POST /api/v3/predictions`) and a run's price
(`POST /api/v3/model/pricing`), as WaveSpeed's own desktop client asks for them.

The list finds a task again whose submit's answer was lost: its items carry no input, so a task
is matched by model and creation time. Newest first, filtered by model, status and dates (the
last 24 hours when no date is given), in pages. The price is `backend.prices[model]`, which a
test may change while the backend serves.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from skyreels_demo.local_api.routes.common import answer, error_response, success
from skyreels_demo.local_api.routes.tasks import task_data
from skyreels_demo.times import DAY_S

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("predictions", "pricing")
DEFAULT_SPAN_S = DAY_S  # no dates: the last 24 hours, as WaveSpeed's desktop client asks
MAX_PAGE_SIZE = 100


class Refused(ValueError):
    """A request body that does not fit: its sentence is the 400's message."""


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.post("/api/v3/predictions")
    async def predictions(request: Request) -> Response:
        async def build() -> Response:
            try:
                asked = _listing(await _body(request), backend.clock())
            except Refused as exc:
                return error_response(400, 1401, str(exc))
            return success(list_page(backend, **asked))

        return await answer(backend, "predictions", request, build)

    @app.post("/api/v3/model/pricing")
    async def pricing(request: Request) -> Response:
        async def build() -> Response:
            try:
                body = await _body(request)
            except Refused as exc:
                return error_response(400, 1401, str(exc))
            model_id, inputs = body.get("model_id"), body.get("inputs", {})
            if not isinstance(model_id, str) or not model_id:
                return error_response(400, 1400, "Missing required parameter: model_id.")
            if not isinstance(inputs, dict):
                return error_response(400, 1401, "Invalid parameter: inputs must be an object.")
            price = backend.prices.get(model_id)
            if price is None:
                return error_response(404, 404, f"No model {model_id} was found.")
            return success({"model_id": model_id, "unit_price": price, "currency": "USD"})

        return await answer(backend, "pricing", request, build)


def list_page(
    backend: LocalBackend,
    *,
    page: int,
    page_size: int,
    after: float,
    before: float,
    model: str | None,
    status: str | None,
) -> dict[str, Any]:
    """One page of the account's predictions that fit, newest first."""
    now = backend.clock()
    chosen = []
    for record in backend.all_tasks():
        said = record.status_at(now)
        if said == "deleted":
            continue  # past its seven days: gone from the list too
        of = backend.model_of(record)
        if model is not None and of.name != model:
            continue
        if status is not None and said != status:
            continue
        if not after <= record.created_at <= before:
            continue
        chosen.append((record, of))
    chosen.sort(key=lambda pair: pair[0].created_at, reverse=True)
    start = (page - 1) * page_size
    items = []
    for record, of in chosen[start:start + page_size]:
        data = task_data(record, of, backend.base_url, now)
        items.append({
            "id": data["id"],
            "model": data["model"],
            "status": data["status"],
            "outputs": data["outputs"],
            "created_at": data["created_at"],
            "execution_time": data["timings"]["inference"],
            "has_nsfw_contents": data["has_nsfw_contents"],
        })
    return {"page": page, "page_size": page_size, "total": len(chosen), "items": items}


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise Refused("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused("The request body must be a JSON object.")
    return body


def _listing(body: dict[str, Any], now: float) -> dict[str, Any]:
    page = _whole(body.get("page", 1), "page", 1, 1_000_000)
    page_size = _whole(body.get("page_size", 20), "page_size", 1, MAX_PAGE_SIZE)
    before = _moment(body.get("created_before"), "created_before")
    after = _moment(body.get("created_after"), "created_after")
    if before is None:
        before = now
    if after is None:
        after = before - DEFAULT_SPAN_S
    model, status = body.get("model"), body.get("status")
    for name, value in (("model", model), ("status", status)):
        if value is not None and not isinstance(value, str):
            raise Refused(f"Invalid parameter: {name} must be a string.")
    return dict(page=page, page_size=page_size, after=after, before=before, model=model or None, status=status or None)


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(f"Invalid parameter: {name} must be a whole number from {low} to {high}.")
    return value


def _moment(value: Any, name: str) -> float | None:
    """An ISO 8601 time (a Z or an offset; none means UTC) as seconds since the epoch."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refused(f"Invalid parameter: {name} must be an ISO 8601 time.")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"Invalid parameter: {name} must be an ISO 8601 time, not {value!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise Refused(f"Invalid parameter: {name} is out of range.")
    return seconds
