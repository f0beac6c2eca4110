"""WaveSpeed's signed webhooks: a call verified before it does anything (studio/hub.py wakes the
run it names; web/webhook_route.py serves the route).

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

import hashlib
import hmac
import json
import logging
import time
from typing import Mapping


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
