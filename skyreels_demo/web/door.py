"""The door: Gradio's own routes, bounded before Gradio reads a byte of what a stranger sends.

On a public Space Gradio's routes take what anyone sends: an upload request may carry 1,000
files, kept an hour; `/gradio_api/deep_link` writes a session's values (a pasted key too) to a
served file that is never deleted; and every input is kept in session state before a handler
can refuse it, with no limit on a request's body. `Door` is a pure ASGI middleware in front of
the mounted Gradio app that, in shared mode:

- counts an upload's multipart parts as they stream and refuses the sixth file (413), a
  visitor's bytes past their hourly allowance (429) and a full upload folder (507), mid-stream
  if need be; Gradio itself then deletes every temporary file of the refused request;
- refuses any other body over a megabyte (413), by Content-Length or by counting chunks; an MCP
  tool call may carry 8 MB (a phone photo as a data URI), 64 MB of such large calls at once,
  and one over either is answered as the tool's error (below);
- refuses deep links (404), in every mode: they write a session's values to disk;
- in every mode, refuses a queue join or direct call whose inputs break their event's rules
  (event_inputs.py: a text over its box's limit, a value over its kind's few bytes, a file
  this app does not hold), before Gradio keeps it in session state or opens a file.

A refusal is a sentence each client can read: `{"detail": sentence}` with its HTTP status for
the page, the JS client and curl; for gradio_client, which reads a refused queue join only in
Gradio's own validation shape (HTTP 422, a list naming the input), that shape; and for an MCP
client, whose session a non-2xx answer would end, the tool call's error, answered by the MCP
server itself to a stand-in call with the same id (mcp_door.py).

A laptop (shared mode off) passes everything else through unchanged. Who a visitor is comes
from the function the app passes in (by default `visitors.identify` on what the server sees).
Uploads no run holds are deleted after 15 minutes by `Door.sweep`, which the app calls on a
timer (the counts and the sweep: upload_budget.py). `session_limits()` holds the Gradio
settings that bound session memory.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from python_multipart.multipart import parse_options_header

from skyreels_demo.studio.visitors import identify, is_loopback
from skyreels_demo.web.asgi import (
    MB,
    ASGIApp,
    Message,
    Receive,
    Refusal,
    Scope,
    Send,
    answer,
    answer_json,
    content_length,
    headers_of,
    mb,
    read_body,
    replay,
    with_length,
)
from skyreels_demo.web.event_inputs import EventInputs
from skyreels_demo.web.mcp_door import McpCalls
from skyreels_demo.web.upload_budget import MCP_REUPLOAD, UploadBudget, upload_folder
from skyreels_demo.web.upload_parts import PartCount

log = logging.getLogger(__name__)

# Matched at the end of the path, so Gradio may be mounted under any prefix.
UPLOAD = re.compile(r"/gradio_api/upload/?$")
DEEP_LINK = re.compile(r"/gradio_api/deep_link/?$")
JOIN = re.compile(r"/gradio_api/(?:queue/join|stream/[^/]+)/?$")
DIRECT = re.compile(r"/gradio_api/(?P<route>call/v2|call|run|api)/(?P<api_name>[^/]+)/?$")
# Gradio's MCP server: streamable HTTP, and the SSE transport's messages.
MCP = re.compile(r"/gradio_api/mcp(?:/http|/messages)?/?$")


@dataclass(frozen=True)
class DoorLimits:
    """What the door lets through; `shared=False` (a laptop) turns all but deep links off."""

    shared: bool = False
    files_per_upload: int = 5
    upload_bytes_per_hour: int = 300 * MB  # per visitor, through the upload route
    upload_folder_bytes: int = 1000 * MB  # Gradio's whole upload folder
    upload_keep_s: float = 15 * 60.0  # an upload no run holds goes after this
    body_bytes: int = 1 * MB  # any other request's body
    # An MCP tool call carries its picture inline, as a data URI (4/3 of the picture's bytes): 8 MB
    # takes a phone photo of up to 6 MB. Gradio's MCP server holds the call's arguments for as
    # long as the tool runs (minutes), so calls over `body_bytes` share 64 MB in all at once.
    mcp_body_bytes: int = 8 * MB
    mcp_large_bytes_at_once: int = 64 * MB
    # A tool call past its limit is read through (counted, not kept) to answer it as the tool's
    # error, which needs the request's id, at its end; past this, the connection is closed.
    mcp_drain_bytes: int = 80 * MB
    # An upload's non-file parts are kept in memory by Gradio's parser: a few small fields only.
    upload_field_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Any) -> "DoorLimits":
        return cls(
            shared=settings.shared,
            upload_bytes_per_hour=int(settings.upload_mb_per_hour * MB),
            upload_folder_bytes=int(settings.upload_budget_mb * MB),
        )


def visitor_by_address(proxy_hops: int) -> Callable[[Scope], str]:
    """Who a request is from, as `visitors.identify` decides it from what the server sees."""

    def visitor(scope: Scope) -> str:
        client = scope.get("client") or (None, None)
        return identify(username=None, peer=client[0], headers=headers_of(scope), proxy_hops=proxy_hops).key

    return visitor


def session_limits(*, sessions: int = 1000, keep_uploads_s: int = 900) -> dict[str, dict[str, Any]]:
    """Gradio settings that bound what it keeps per page session: kwargs for each call.

    Gradio keeps one SessionState per session hash (a copy of every block's config plus the last
    value of every input and output), evicted only when `state_session_capacity` sessions are
    kept (default 10,000, least recent first), never when a page closes. Measured on the studio
    page (64 blocks, 20 events, Gradio 6.31): about 104 KB a session with the prompt at its
    2,000-character limit, so 1,000 sessions take about 100 MB, not the 1 GB the default allows;
    visitor 1,001 evicts the least recent page, which starts afresh on its next event. Text is
    bounded by the door (max_length); an image pasted as a data URI is bounded only by the 1 MB
    body limit. `delete_cache` makes Gradio's own cache (outputs it copied) go on the same
    schedule as the door's upload sweep; the queue's `max_size` (settings.queue_size) already
    bounds the bodies of waiting events. gr.mount_gradio_app takes neither setting: they are set
    on the Blocks before mounting (gradio_compat.set_session_limits).
    """
    return {
        "blocks": {"delete_cache": (max(60, keep_uploads_s // 3), keep_uploads_s)},
        "queue": {},
        "launch": {"state_session_capacity": sessions},
    }


class Door:
    """Pure ASGI middleware in front of the mounted Gradio app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        limits: DoorLimits,
        *,
        visitor: Callable[[Scope], str] | None = None,
        inputs: EventInputs | None = None,
        held: Callable[[], Iterable[str | os.PathLike]] | None = None,
        folder: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.visitor = visitor or visitor_by_address(0)
        self.inputs = inputs
        self.folder = Path(os.path.abspath(folder if folder is not None else upload_folder()))
        self.budget = UploadBudget(limits, self.folder, held or (lambda: set()), clock)
        self.mcp_calls = McpCalls(app, limits)
        self.limits = limits

    @property
    def limits(self) -> DoorLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: DoorLimits) -> None:
        """New limits hold for the door and its parts at once."""
        self._limits = self.budget.limits = self.mcp_calls.limits = limits

    # The upload folder's public face: the app's timer sweeps it, MCP keeps inline pictures in it.

    def sweep(self, held: Callable[[], Iterable[str | os.PathLike]] | None = None) -> int:
        return self.budget.sweep(held)

    def folder_bytes(self, rescan: bool = False) -> int:
        return self.budget.folder_bytes(rescan)

    def keep_upload(self, who: str, data: bytes, name: str) -> Path:
        return self.budget.keep_upload(who, data, name)

    # -- ASGI --

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if DEEP_LINK.search(path):
            log.info("refused a deep link: it would write a session's values to disk")
            await answer(send, 404, "Deep links are turned off in this app.")
            return
        try:
            if not self.limits.shared:
                await self._checked(scope, receive, send)
            elif UPLOAD.search(path) and scope.get("method") == "POST":
                await self._upload(scope, receive, send)
            else:
                await self._bounded(scope, receive, send)
        except Refusal as refusal:  # refused before the app was called; the body is left unread
            await _refuse(scope, send, refusal)

    # -- any request but an upload: a small body, read here, text inputs checked --

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = content_length(scope)
        chunked = "transfer-encoding" in headers_of(scope)
        if declared is None and not chunked or declared == 0:
            await self.app(scope, receive, send)  # no body: nothing to bound
            return
        if MCP.search(scope.get("path", "")) and scope.get("method") == "POST":
            await self.mcp_calls(scope, receive, send, declared)
            return
        too_large = f"A request to this app may carry at most {mb(self.limits.body_bytes)}."
        if declared is not None and declared > self.limits.body_bytes:
            raise Refusal(413, too_large)
        body = await read_body(receive, self.limits.body_bytes, too_large)
        if body is None:
            return
        checked = self._check_inputs(scope, body) if scope.get("method") == "POST" else body
        await self.app(scope, replay(checked, receive), send)

    def _check_inputs(self, scope: Scope, body: bytes) -> bytes:
        """Refuse a call whose inputs break their event's rules (event_inputs.py); the body to
        hand on (re-encoded only when the door read its fn_index in another spelling)."""
        path = scope.get("path", "")
        join, direct = JOIN.search(path), DIRECT.search(path)
        if not (join or direct) or self.inputs is None or (join and not path.rstrip("/").endswith("queue/join")):
            return body
        try:
            payload = json.loads(body)
        except ValueError:
            return body  # Gradio answers a body that is not JSON itself
        before = payload.get("fn_index") if isinstance(payload, dict) else None
        route = "join" if join else direct["route"]
        rewritten: list[str] = []
        refused = self.inputs.check(route, direct["api_name"] if direct else None, payload, _hosts(scope), rewritten)
        if refused is not None:
            log.info("refused a call to %s: %s", path, refused.sentence)
            raise Refusal(refused.status, refused.sentence, name=refused.name)
        if isinstance(payload, dict) and (payload.get("fn_index") is not before or rewritten):
            body = json.dumps(payload).encode()
            scope["headers"] = with_length(scope, len(body))
        return body

    # -- a laptop: nothing bounded but what a call may name --

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope.get("method") != "POST" or not (JOIN.search(path) or DIRECT.search(path)):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        checked = self._check_inputs(scope, body)
        await self.app(scope, replay(checked, receive), send)

    # -- uploads: counted as they stream --

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = self.visitor(scope)
        if _mcp_reupload(scope):
            # Gradio's MCP server uploading a picture its caller sent inline, which keep_upload
            # already counted against that caller: only the folder's budget counts it again.
            who = MCP_REUPLOAD
        declared = content_length(scope)
        self.budget.check_hour(who, declared)
        if declared is not None:
            await self.budget.make_room(declared)
        content_type, options = parse_options_header(headers_of(scope).get("content-type", ""))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            await self._bounded(scope, receive, send)  # Gradio refuses it unread; keep it small
            return
        upload = _CountedUpload(who, PartCount(boundary, self.limits), self.budget, receive, send)
        await self.app(scope, upload.receive, upload.send)
        if upload.refused is not None and not upload.response_started:
            # Answered only now, when Gradio has deleted what it wrote: a 413 means nothing kept.
            refused = upload.refused
            await answer(send, refused.status, refused.sentence, retry_after_s=refused.retry_after_s, close=True)


class _CountedUpload:
    """One upload between the visitor and Gradio: each chunk counted as it passes; on a refusal,
    Gradio's parser is handed bytes it fails on (so Gradio deletes every temporary file of the
    request) and its answer is held back for the door's."""

    def __init__(self, who: str, count: PartCount, budget: UploadBudget, receive: Receive, send: Send) -> None:
        self.who, self.count, self.budget = who, count, budget
        self._receive, self._send = receive, send
        self.refused: Refusal | None = None
        self.response_started = False
        self._status = 0
        self._answer = bytearray()

    async def receive(self) -> Message:
        message = await self._receive()
        while self.count.finished and message["type"] == "http.request":
            message = await self._receive()  # past the end (or a refusal): the app gets no more
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        poison = self.count.poison()  # what makes Gradio's parser fail where it stands now
        try:
            self.count.feed(chunk)
            await self.budget.take(self.who, len(chunk))
        except Refusal as refusal:
            log.info("refused an upload from %s: %s", self.who, refusal.sentence)
            self.refused = refusal
            self.count.finished = True
            # Gradio's parser fails on this and deletes every temporary file of the request.
            return {"type": "http.request", "body": poison, "more_body": False}
        if self.count.finished:  # the closing boundary: Gradio needs nothing after it
            return {"type": "http.request", "body": chunk, "more_body": False}
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # Gradio's own answer to the poisoned body: the visitor gets the door's
        if message["type"] == "http.response.start":
            self.response_started = True
            self._status = message["status"]
        elif message["type"] == "http.response.body" and self._status == 200:
            if len(self._answer) < 256 * 1024:
                self._answer.extend(message.get("body", b""))
            if not message.get("more_body", False):
                self.budget.record_uploads(bytes(self._answer))
        await self._send(message)


def _mcp_reupload(scope: Scope) -> bool:
    """An upload by Gradio's own MCP client (gradio/mcp.py: `x-gradio-user: mcp`) over loopback."""
    peer = (scope.get("client") or (None,))[0]
    return headers_of(scope).get("x-gradio-user") == "mcp" and is_loopback(peer)


def _hosts(scope: Scope) -> list[str]:
    """The names a caller reached this app by: its Host, and a proxy's X-Forwarded-Host (an
    address of the app's own files is read as the path it names only when it names one of these;
    a caller who writes another gains nothing: it could name the path itself)."""
    headers = headers_of(scope)
    return [h for h in (headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")) if h.strip()]


def _gradio_client(scope: Scope) -> bool:
    """A call from the Python gradio_client (its user-agent), which also carries MCP tool calls."""
    return "gradio_client/" in headers_of(scope).get("user-agent", "")


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    """A refusal in the shape the caller reads (see the module docstring)."""
    if JOIN.search(scope.get("path", "")) and _gradio_client(scope):
        # gradio_client raises "N parameter(s) failed validation: - <name>: <sentence>" from this
        # shape, and only an HTTPStatusError (no sentence) from any other refused join.
        detail = [{"__type__": "validate", "is_valid": False, "message": refusal.sentence,
                   "parameter_name": refusal.name or "request"}]
        await answer_json(send, 422, {"detail": detail})
        return
    await answer(send, refusal.status, refusal.sentence, retry_after_s=refusal.retry_after_s, close=True)
