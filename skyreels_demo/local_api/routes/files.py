"""Serving stored uploads and finished videos, without a key, as a CDN would."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from skyreels_demo.local_api.routes.common import answer, error_response
from skyreels_demo.local_api.storage import UPLOADS_PATH
from skyreels_demo.status import ApiWord

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("file",)
OUTPUTS_PATH = "/files/outputs/"
_OUTPUT_NAME = re.compile(r"([0-9a-f]{32})\.mp4")


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.api_route(UPLOADS_PATH + "{name}", methods=["GET", "HEAD"])
    async def uploaded_file(name: str, request: Request) -> Response:
        async def build() -> Response:
            path = backend.storage.upload_path(name)
            if path is None:
                return error_response(404, 404, "File not found.")
            return FileResponse(path)

        # Public, like WaveSpeed's CDN URLs: the model and browsers fetch them without a key.
        return await answer(backend, "file", request, build, key_required=False)

    @app.api_route(OUTPUTS_PATH + "{name}", methods=["GET", "HEAD"])
    async def output_file(name: str, request: Request) -> Response:
        async def build() -> Response:
            match = _OUTPUT_NAME.fullmatch(name)
            record = backend.find_task(match[1]) if match else None
            if record is None or record.missing_output or record.status != ApiWord.COMPLETED:
                return error_response(404, 404, "File not found.")
            return FileResponse(record.render.path, media_type="video/mp4")  # type: ignore[union-attr]

        return await answer(backend, "file", request, build, key_required=False)
