"""The backend's HTTP routes, one module per group, each with `register(app, backend)`.

A new group (say the SDK's two-step upload) is one module beside these, with `KINDS` (the
kinds of request it counts and lets tests arm faults for) and `register`, listed in `GROUPS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from skyreels_demo.local_api.routes import account, files, llm, media, predictions, tasks, uploads, webhook_secret
from skyreels_demo.local_api.routes.common import error_response, success

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

GROUPS = (media, uploads, tasks, files, llm, account, webhook_secret, predictions)
# Every kind of request a route counts and a fault switch can target, group by group.
KINDS: tuple[str, ...] = tuple(kind for group in GROUPS for kind in group.KINDS)


def build_app(backend: LocalBackend) -> FastAPI:
    """The FastAPI app with every group's routes, answering errors in WaveSpeed's envelope."""
    app = FastAPI(title="SkyReels V1 Studio: offline preview backend", docs_url=None, redoc_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, 1401, "The request does not fit the schema.")

    @app.get("/")
    async def about() -> Response:
        # Not counted and needs no key: `LocalBackend.start` asks it whether the server is up.
        return success({"name": "SkyReels V1 Studio offline preview", "models": list(backend.models)})

    for group in GROUPS:
        group.register(app, backend)
    return app
