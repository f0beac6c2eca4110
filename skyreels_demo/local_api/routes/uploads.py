"""The documented upload: POST /api/v3/media/upload/binary, one multipart field `file`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from skyreels_demo.local_api.routes.common import answer, error_response, success
from skyreels_demo.local_api.storage import MAX_UPLOAD_BYTES, UPLOADS_PATH

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("upload",)


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.post("/api/v3/media/upload/binary")
    async def upload(request: Request) -> Response:
        async def build() -> Response:
            declared = request.headers.get("content-length", "")
            # Refused before reading: room for the multipart framing around a 20 MB file.
            if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 1024 * 1024:
                return error_response(413, 413, "The file is larger than 20 MB.")
            try:
                form = await request.form(max_files=4)
            except Exception as exc:
                return error_response(400, 400, f"Send the file as multipart/form-data ({exc}).")
            try:
                file = form.get("file")
                if not isinstance(file, UploadFile):
                    return error_response(400, 400, "No file: send it in the multipart form field 'file'.")
                data = await file.read(MAX_UPLOAD_BYTES + 1)
                filename = Path(file.filename or "").name
            finally:
                await form.close()
            if len(data) > MAX_UPLOAD_BYTES:
                return error_response(413, 413, "The file is larger than 20 MB.")
            if not data:
                return error_response(400, 400, "The file is empty.")
            kind, name = await run_in_threadpool(backend.storage.store_upload, data, filename)
            return success({
                "type": kind,
                "download_url": f"{backend.base_url}{UPLOADS_PATH}{name}",
                "filename": filename or name,
                "size": len(data),
            })

        return await answer(backend, "upload", request, build)
