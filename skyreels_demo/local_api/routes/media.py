"""The official SDK's two-step upload: ask for a ticket, then PUT the bytes where it says.

`POST /api/v3/media/uploads` answers with a presigned-style PUT URL whose path holds an
unguessable, single-use token that expires, and the `download_url` the bytes will have. The PUT
needs no key (on WaveSpeed it goes to another host) and must carry exactly the declared size.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from skyreels_demo.local_api.routes.common import answer, error_response, success
from skyreels_demo.local_api.storage import MAX_UPLOAD_BYTES, UPLOADS_PATH

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("ticket", "put")
PUT_PATH = "/files/put/"
TICKET_TTL_S = 600.0
MAX_OPEN_TICKETS = 1000
_EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    "image/bmp": "bmp", "image/tiff": "tiff",
}


@dataclass(frozen=True)
class Ticket:
    name: str  # the stored upload's name, fixed when the ticket is given
    size: int
    content_type: str
    expires_at: float


class Tickets:
    """Open upload tickets by token; each is used once or expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Ticket] = {}

    def give(self, ticket: Ticket) -> str | None:
        now = time.time()
        with self._lock:
            self._open = {t: k for t, k in self._open.items() if k.expires_at > now}
            if len(self._open) >= MAX_OPEN_TICKETS:
                return None
            token = secrets.token_urlsafe(24)
            self._open[token] = ticket
            return token

    def take(self, token: str) -> Ticket | None:
        with self._lock:
            ticket = self._open.pop(token, None)
        return ticket if ticket is not None and ticket.expires_at > time.time() else None


def register(app: FastAPI, backend: LocalBackend) -> None:
    tickets = Tickets()

    @app.post("/api/v3/media/uploads")
    async def ticket(request: Request) -> Response:
        async def build() -> Response:
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                return error_response(400, 400, "The request body is not valid JSON.")
            if not isinstance(body, dict):
                return error_response(400, 400, "Send a JSON object with filename, size and content_type.")
            size, content_type = body.get("size"), body.get("content_type") or ""
            if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_UPLOAD_BYTES:
                return error_response(400, 400, "size must be the file's length in bytes, at most 20 MB.")
            if not isinstance(content_type, str) or len(content_type) > 100:
                return error_response(400, 400, "content_type must be a MIME type.")
            filename = body.get("filename") if isinstance(body.get("filename"), str) else ""
            suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            ext = _EXTENSIONS.get(content_type) or (suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else "bin")
            name = f"{uuid.uuid4().hex}.{ext}"
            put_type = content_type or "application/octet-stream"
            token = tickets.give(Ticket(name, size, put_type, time.time() + TICKET_TTL_S))
            if token is None:
                return error_response(429, 429, "Too many uploads are open: finish or wait for some first.")
            return success({
                "upload": {
                    "method": "PUT",
                    "url": f"{backend.base_url}{PUT_PATH}{token}",
                    "headers": {"Content-Type": put_type},
                },
                "download_url": f"{backend.base_url}{UPLOADS_PATH}{name}",
                "filename": filename or name,
                "size": size,
            })

        return await answer(backend, "ticket", request, build)

    @app.put(PUT_PATH + "{token}")
    async def put(token: str, request: Request) -> Response:
        async def build() -> Response:
            # Storage answers without the envelope, as S3-like hosts do.
            if "authorization" in request.headers:
                # As S3-style presigned URLs do: the token is the only credential allowed.
                return Response("Only one way of authorising is allowed: drop Authorization.", status_code=400)
            held = tickets.take(token)
            if held is None:
                return Response("No such upload, or it has expired.", status_code=403)
            declared = request.headers.get("content-length", "")
            if not declared.isdigit() or int(declared) != held.size:
                return Response("The body must be exactly the size the ticket declared.", status_code=400)
            data = await request.body()
            if len(data) != held.size:
                return Response("The body must be exactly the size the ticket declared.", status_code=400)
            await run_in_threadpool(backend.storage.store_upload_as, held.name, data)
            return Response(status_code=200)

        # Presigned: the token in the path is the permission; no Authorization is expected.
        return await answer(backend, "put", request, build, key_required=False)
