"""The account's balance, at the current route and the older one WaveSpeed documented first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response

from skyreels_demo.local_api.routes.common import answer, success

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

KINDS = ("balance", "old_balance")


def register(app: FastAPI, backend: LocalBackend) -> None:
    @app.get("/api/v3/account/balance")
    async def balance(request: Request) -> Response:
        async def build() -> Response:
            return success({"balance": backend.balance, "currency": "USD"})

        return await answer(backend, "balance", request, build)

    @app.get("/api/v3/balance")
    async def old_balance(request: Request) -> Response:
        async def build() -> Response:
            return success({"balance": backend.balance})

        return await answer(backend, "old_balance", request, build)
