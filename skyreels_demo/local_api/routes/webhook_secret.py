"""The account's webhook signing secret, as `GET /api/v3/webhook/secret` gives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response

from skyreels_demo.local_api.routes.common import answer, success

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("secret",)


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.get("/api/v3/webhook/secret")
    async def webhook_secret(request: Request) -> Response:
        async def build() -> Response:
            return success({"secret": backend.pusher.secret})

        return await answer(backend, "secret", request, build)
