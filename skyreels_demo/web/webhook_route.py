"""The webhook route beside Gradio: `POST /webhooks/wavespeed/{token}`, its body bounded, handed
to the studio's hub (which verifies it and wakes the run it names)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.wavespeed.webhooks import MAX_BODY_BYTES, ROUTE, Refused

log = logging.getLogger(__name__)


def add_route(app: FastAPI, hub: WebhookHub) -> None:
    """Serve `POST /webhooks/wavespeed/{token}` on the app's FastAPI server."""

    async def webhook(token: str, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": "the body is too large"}, status_code=400)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": "the body is too large"}, status_code=400)
        try:
            outcome = hub.receive(token, request.headers, body)
        except Refused as exc:
            log.info("refused a webhook call: %s", exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        return JSONResponse({"ok": outcome})

    app.add_api_route(ROUTE + "/{token}", webhook, methods=["POST"])
