"""Push, not poll: WaveSpeed's signed webhooks, verified before they do anything.

When the app has an address WaveSpeed can reach (SKYREELS_PUBLIC_URL, or a Space's own), each
submit carries `?webhook=<address>/webhooks/wavespeed/<token>`, the token naming the run. A call
there is refused (400 or 401, changing nothing) unless its body is small, its `webhook-id`,
`webhook-timestamp` and `webhook-signature` headers are present, the timestamp is within five
minutes, the id was not seen before, and the HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
account's secret matches. A verified call only wakes the run's follower, which then fetches the
result with its own authenticated GET: the video URL never comes from the unauthenticated body.

The secret is fetched with the key that submitted the task. The owner's is kept for the
process; a visitor's lives only in its run's entry here and goes with it. No secret is logged.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.errors import StudioError

log = logging.getLogger(__name__)

ROUTE = "/webhooks/wavespeed"
MAX_BODY_BYTES = 64 * 1024
TOLERANCE_S = 300.0
SEEN_IDS = 10_000  # webhook ids remembered against replays
SECRET_PREFIX = "whsec_"


class Refused(Exception):
    """A call that must change nothing; `status` is the HTTP answer (400 or 401)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 WaveSpeed signs with: the secret without `whsec_`, as bytes."""
    key = secret.removeprefix(SECRET_PREFIX).encode()
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> dict:
    """The call's JSON body if it is WaveSpeed's, signed with `secret`; else raises Refused."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(400, "the body is too large")
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id, stamp, signed = (lower.get(n, "") for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not webhook_id or not stamp or not signed or len(webhook_id) > 200:
        raise Refused(400, "webhook headers are missing")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise Refused(400, "the timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > TOLERANCE_S:
        raise Refused(401, "the timestamp is too old or in the future")
    expected = signature(secret, webhook_id, stamp, body)
    offered = [part.partition(",")[2] for part in signed.split() if part.startswith("v3,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise Refused(401, "the signature does not match")
    if _nesting(body) > MAX_NESTING:
        raise Refused(400, "the body is nested too deeply")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise Refused(400, "the body names no task")
    return payload


@dataclass
class Waiting:
    """One run that expects a webhook."""

    token: str
    secret: str = field(repr=False)
    pushed: threading.Event = field(default_factory=threading.Event)
    task_id: str = ""


class WebhookHub:
    """Runs waiting for webhooks, by the token in their webhook URL and by task id."""

    def __init__(self, public_url: str | None = None, local_url: str | None = None) -> None:
        # Where WaveSpeed reaches this app; where the offline preview (on this machine) does.
        self.public_url = public_url.rstrip("/") if public_url else None
        self.local_url = local_url.rstrip("/") if local_url else None
        self._lock = threading.Lock()
        self._by_token: dict[str, Waiting] = {}
        self._by_task: dict[str, Waiting] = {}
        self._owner_secrets: dict[str, str] = {}  # base URL -> the owner's secret
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def base_for(self, preview: bool) -> str | None:
        return self.local_url if preview else self.public_url

    def expect(self, client: WaveSpeedClient, *, preview: bool, owner: bool) -> Waiting | None:
        """Ready a run for a webhook: its token and the secret to check it with; None if this
        app cannot be reached or the secret cannot be had (the run then polls as usual)."""
        if self.base_for(preview) is None:
            return None
        try:
            secret = self._secret(client, cache=owner or preview)
        except StudioError as exc:
            log.warning("webhooks off for this run: the secret could not be read (%s)", exc.sentence)
            return None
        waiting = Waiting(token=secrets.token_urlsafe(18), secret=secret)
        with self._lock:
            self._by_token[waiting.token] = waiting
        return waiting

    def url(self, waiting: Waiting, *, preview: bool) -> str:
        return f"{self.base_for(preview)}{ROUTE}/{waiting.token}"

    def submitted(self, waiting: Waiting, task_id: str) -> None:
        with self._lock:
            waiting.task_id = task_id
            self._by_task[task_id] = waiting

    def pushed_event(self, task_id: str | None) -> threading.Event | None:
        """The event a verified webhook sets for this task, if one is expected."""
        with self._lock:
            waiting = self._by_task.get(task_id or "")
        return waiting.pushed if waiting is not None else None

    def forget(self, task_id: str | None = None, waiting: Waiting | None = None) -> None:
        """The run no longer needs its webhook: drop its entry and (a visitor's) secret."""
        with self._lock:
            waiting = waiting or self._by_task.get(task_id or "")
            if waiting is not None:
                self._by_token.pop(waiting.token, None)
                self._by_task.pop(waiting.task_id, None)

    def receive(self, token: str, headers: Mapping[str, str], body: bytes) -> str:
        """Verify a call for the run named by `token` and wake it; raises Refused otherwise."""
        with self._lock:
            waiting = self._by_token.get(token)
        if waiting is None:
            raise Refused(401, "no run expects this webhook")
        payload = verify(waiting.secret, headers, body)
        if waiting.task_id and payload["id"] != waiting.task_id:
            raise Refused(401, "the webhook is for another task")
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self._lock:
            if webhook_id in self._seen:
                return "already seen"
            self._seen[webhook_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        waiting.pushed.set()
        log.info("webhook for task %s: %s", payload["id"], payload.get("status"))
        return "ok"

    def _secret(self, client: WaveSpeedClient, *, cache: bool) -> str:
        if cache:
            with self._lock:
                known = self._owner_secrets.get(client.base_url)
            if known:
                return known
        secret = client.webhook_secret()
        if cache:
            with self._lock:
                self._owner_secrets[client.base_url] = secret
        return secret


# WaveSpeed's body is an object of lists and small objects: a few levels deep at most.
MAX_NESTING = 32


def _nesting(body: bytes) -> int:
    """How deeply a JSON text's arrays and objects nest (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


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
