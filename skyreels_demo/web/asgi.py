"""The few words of ASGI the door speaks: a request's headers and length, a body handed on once,
and a refusal answered as `{"detail": sentence}`.

Separate from the door so that each of its parts (uploads, MCP calls, the budget) reads and
answers a request the same way, without importing the door itself.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

MB = 1024 * 1024
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refusal(Exception):
    """A request the door turns away: the HTTP status and a sentence for the visitor; `name`,
    the input refused when it was one input of a call."""

    def __init__(self, status: int, sentence: str, retry_after_s: float | None = None, name: str | None = None) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence
        self.retry_after_s = retry_after_s
        self.name = name


def headers_of(scope: Scope) -> dict[str, str]:
    """The request's headers, lower-case; repeated ones joined with commas, as HTTP allows."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def content_length(scope: Scope) -> int | None:
    raw = headers_of(scope).get("content-length", "").strip()
    return int(raw) if raw.isdigit() else None


def with_length(scope: Scope, size: int, *, drop: tuple[bytes, ...] = (b"content-length",)) -> list[tuple[bytes, bytes]]:
    """The request's headers with `drop` taken out and its Content-Length set to `size`."""
    kept = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]
    return kept + [(b"content-length", str(size).encode())]


def replay(body: bytes, receive: Receive) -> Receive:
    """The body the door read, handed to the app once; then the connection's own messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def read_body(receive: Receive, limit: int | None = None, too_large: str = "") -> bytes | None:
    """The whole body, or None when the client hung up; past `limit`, refused (413, `too_large`)
    as soon as the count passes it: the rest is never read."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            raise Refusal(413, too_large)
        if not message.get("more_body", False):
            return bytes(body)


async def answer(
    send: Send, status: int, sentence: str, *, retry_after_s: float | None = None, close: bool = False
) -> None:
    """A sentence as `{"detail": sentence}` with its status (and Retry-After when it has one)."""
    body = json.dumps({"detail": sentence}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(int(retry_after_s + 0.999)).encode()))
    if close:
        headers.append((b"connection", b"close"))  # the rest of the body is not read: hang up
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def answer_json(send: Send, status: int, payload: Any) -> None:
    """`payload` as JSON with `status`, hanging up after it (the body was left unread)."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def mb(size: int) -> str:
    return f"{size / MB:g} MB"
