"""What every route group shares: WaveSpeed's envelope, its error answers, and `answer`.

Every route answers through `answer(backend, kind, request, build)`, which counts the request,
checks the Bearer key and applies any fault armed for its kind around the real answer.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from skyreels_demo.local_api.faults import CannedAnswer

if TYPE_CHECKING:  # only for hints: the backend imports the routes, not the other way round
    from skyreels_demo.local_api.backend import LocalBackend


def envelope(code: int, message: str, data: Any, error: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "data": data}
    if error is not None:
        body["error"] = error
    return body


def success(data: Any) -> JSONResponse:
    """HTTP 200 with `data` in a success envelope."""
    return JSONResponse(envelope(200, "success", data))


def error_response(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(envelope(code, message, None, error=message), status_code=status, headers=headers)


async def answer(
    backend: LocalBackend,
    kind: str,
    request: Request,
    build: Callable[[], Awaitable[Response]],
    *,
    key_required: bool = True,
) -> Response:
    """Count the request, check the key, then apply any armed fault around the real answer.

    `kind` names the request for counts and fault switches; it must be one a route group
    declares in its KINDS.
    """
    backend.count_request(kind)
    if kind in backend.retired:
        # A route WaveSpeed has (or might have) taken away, as tests switch it off.
        return error_response(404, 404, "Not Found")
    if key_required:
        refused = refuse_unauthorised(backend, request)
        if refused is not None:
            return refused
    delay, canned = backend.faults._take(kind)
    if canned is not None and not (canned.truncate or canned.drop):
        response = canned_response(canned)
    else:
        response = await build()
        if canned is not None:
            response = await (cut_off(response) if canned.drop else truncated(response))
    if delay:
        await asyncio.sleep(delay)
    return response


def refuse_unauthorised(backend: LocalBackend, request: Request) -> Response | None:
    """A 401 answer unless the request carries a Bearer key the backend accepts."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return error_response(401, 401, "Unauthorized: send the header 'Authorization: Bearer <API key>'.")
    expected = backend.api_key
    if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
        return error_response(401, 401, "Unauthorized: the API key is not valid.")
    return None


def canned_response(canned: CannedAnswer) -> Response:
    headers = {}
    if canned.retry_after is not None:
        headers["Retry-After"] = _seconds(canned.retry_after)
    return error_response(canned.status, canned.code, canned.message, headers=headers)


async def truncated(response: Response) -> Response:
    """The same answer with only the first half of its body."""
    if isinstance(response, FileResponse):
        body = await run_in_threadpool(Path(response.path).read_bytes)
    else:
        body = bytes(response.body)
    return Response(body[: len(body) // 2], status_code=response.status_code, media_type=response.media_type)


async def cut_off(response: Response) -> Response:
    """The answer's first bytes under a Content-Length of the whole: the server then closes the
    connection with the answer unfinished, and the client never reads a whole one."""
    body = bytes(response.body)
    return Response(
        body[:8], status_code=response.status_code, media_type=response.media_type,
        headers={"content-length": str(len(body))},
    )


def iso_time(timestamp: float) -> str:
    """A moment as WaveSpeed writes `created_at`: UTC, milliseconds, a Z."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    # Whole seconds as HTTP specifies; a fraction is kept only when asked for (keeps tests fast).
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def prediction_data(task_id: str, model: str, base_url: str, status: str, created_at: float) -> dict[str, Any]:
    """The envelope's `data` for any prediction, before it has outputs, as WaveSpeed shapes it."""
    return {
        "id": task_id,
        "model": model,
        "outputs": [],
        "urls": {"get": f"{base_url}/api/v3/predictions/{task_id}/result"},
        "has_nsfw_contents": [],
        "status": status,
        "created_at": iso_time(created_at),
        "error": "",
        "timings": {"inference": 0},
    }

