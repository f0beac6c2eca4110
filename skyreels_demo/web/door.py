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
server itself to a stand-in call with the same id (`_mcp_refused`).

A laptop (shared mode off) passes everything else through unchanged. Who a visitor is comes
from the function the app passes in (by default `visitors.identify` on what the server sees).
Uploads no run holds are deleted after 15 minutes by `Door.sweep`, which the app calls on a
timer. `session_limits()` holds the Gradio settings that bound session memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote

import anyio.to_thread
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from skyreels_demo.web.event_inputs import EventInputs
from skyreels_demo.studio.visitors import identify, is_loopback
from skyreels_demo.times import HOUR_S

log = logging.getLogger(__name__)

MB = 1024 * 1024
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Matched at the end of the path, so Gradio may be mounted under any prefix.
UPLOAD = re.compile(r"/gradio_api/upload/?$")
DEEP_LINK = re.compile(r"/gradio_api/deep_link/?$")
JOIN = re.compile(r"/gradio_api/(?:queue/join|stream/[^/]+)/?$")
DIRECT = re.compile(r"/gradio_api/(?P<route>call/v2|call|run|api)/(?P<api_name>[^/]+)/?$")
# Gradio's MCP server: streamable HTTP, and the SSE transport's messages.
MCP = re.compile(r"/gradio_api/mcp(?:/http|/messages)?/?$")

MCP_REUPLOAD = "mcp-reupload"  # not a visitor: the bytes were counted when the caller sent them
SCAN_EVERY_S = 5.0  # the upload folder is walked at most this often; bytes since are added


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
        return identify(username=None, peer=client[0], headers=_headers(scope), proxy_hops=proxy_hops).key

    return visitor


def upload_folder() -> Path:
    """Where Gradio writes uploads (its cache): GRADIO_TEMP_DIR, else <tempdir>/gradio."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


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
    bounds the bodies of waiting events. gr.mount_gradio_app takes neither setting: set them on
    the Blocks before mounting (`apply_session_limits`).
    """
    return {
        "blocks": {"delete_cache": (max(60, keep_uploads_s // 3), keep_uploads_s)},
        "queue": {},
        "launch": {"state_session_capacity": sessions},
    }


def apply_session_limits(blocks: Any, limits: dict[str, dict[str, Any]] | None = None) -> None:
    """Set the session settings on Blocks about to be mounted (mount_gradio_app takes neither)."""
    limits = limits or session_limits()
    blocks.state_session_capacity = limits["launch"]["state_session_capacity"]
    blocks.delete_cache = limits["blocks"]["delete_cache"]


class Refusal(Exception):
    """A request the door turns away: the HTTP status and a sentence for the visitor; `name`,
    the input refused when it was one input of a call."""

    def __init__(self, status: int, sentence: str, retry_after_s: float | None = None, name: str | None = None) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence
        self.retry_after_s = retry_after_s
        self.name = name


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
        self.limits = limits
        self.visitor = visitor or visitor_by_address(0)
        self.inputs = inputs
        self.held = held or (lambda: set())
        self.folder = Path(os.path.abspath(folder if folder is not None else upload_folder()))
        self.clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[list[float]]] = {}  # visitor -> [minute, bytes] buckets
        self._uploads: dict[str, float] = {}  # path Gradio answered with -> when
        self._scanned_at = -1e18
        self._scanned_bytes = 0
        self._added_since_scan = 0
        self._mcp_large_bytes = 0  # MCP calls over body_bytes being served now

    # -- ASGI --

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if DEEP_LINK.search(path):
            log.info("refused a deep link: it would write a session's values to disk")
            await _answer(send, 404, "Deep links are turned off in this app.")
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
        declared = _content_length(scope)
        chunked = "transfer-encoding" in _headers(scope)
        if declared is None and not chunked or declared == 0:
            await self.app(scope, receive, send)  # no body: nothing to bound
            return
        if MCP.search(scope.get("path", "")) and scope.get("method") == "POST":
            await self._mcp_call(scope, receive, send, declared)
            return
        too_large = f"A request to this app may carry at most {_mb(self.limits.body_bytes)}."
        if declared is not None and declared > self.limits.body_bytes:
            raise Refusal(413, too_large)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limits.body_bytes:
                # Refused as soon as the count passes the limit: the rest is never read.
                await _refuse(scope, send, Refusal(413, too_large))
                return
            if not message.get("more_body", False):
                break
        checked = self._check_inputs(scope, bytes(body)) if scope.get("method") == "POST" else bytes(body)
        await self.app(scope, _replay(checked, receive), send)

    # -- an MCP tool call: room for a picture inline, and a refusal the session survives --

    async def _mcp_call(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        limit, drain = self.limits.mcp_body_bytes, self.limits.mcp_drain_bytes
        # Only the door says a call was refused (agents.py reads it): never a client.
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != REFUSED_HEADER.encode()]
        if declared is not None and declared > drain:
            raise Refusal(413, f"An MCP call to this app may carry at most {_mb(limit)}.")
        body = bytearray()
        head, tail, size = b"", b"", 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                body += chunk
            else:
                if body:  # past the limit: only the ends are kept, to find the request's id
                    head, tail, body = bytes(body[:512]), bytes(body[-512:]), bytearray()
                if not head:
                    head = chunk[:512]
                tail = (tail + chunk)[-512:]
                if size > drain:
                    await _answer(send, 413, f"An MCP call to this app may carry at most {_mb(limit)}.", close=True)
                    return
            if not message.get("more_body", False):
                break
        if size > limit:
            log.info("refused an MCP call of %.1f MB", size / MB)
            await self._mcp_refused(scope, receive, send, head, tail, mcp_too_large(size, limit))
            return
        taken = len(body) if len(body) > self.limits.body_bytes else 0
        with self._lock:
            busy = self._mcp_large_bytes + taken > self.limits.mcp_large_bytes_at_once
            if not busy:
                self._mcp_large_bytes += taken
        if busy:
            await self._mcp_refused(scope, receive, send, bytes(body[:512]), bytes(body[-512:]), MCP_BUSY)
            return
        try:
            await self.app(scope, _replay(bytes(body), receive), send)
        finally:
            with self._lock:
                self._mcp_large_bytes -= taken

    async def _mcp_refused(self, scope: Scope, receive: Receive, send: Send, head: bytes, tail: bytes, sentence: str) -> None:
        """A tool call refused for its size, answered as the tool's error through the MCP server
        itself, so that it reaches the client on whichever transport it uses (streamable HTTP's
        answer, or SSE's stream) and its session goes on; a non-2xx answer would end the session.
        The server is handed a stand-in call with the same id and no arguments, and the sentence
        in a header only the door sets. A request whose id cannot be read gets HTTP 413."""
        request_id = _request_id(head, tail)
        if request_id is None or not re.search(rb'"method"\s*:\s*"tools/call"', head):
            await _answer(send, 413, sentence, close=True)
            return
        name = re.search(rb'"name"\s*:\s*"([A-Za-z0-9_.-]{1,128})"', head)
        stand_in = json.dumps({
            "jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name[1].decode() if name else "", "arguments": {}},
        }).encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in (b"content-length", b"transfer-encoding")]
        headers += [(b"content-length", str(len(stand_in)).encode()), (REFUSED_HEADER.encode(), quote(sentence).encode())]
        scope["headers"] = headers
        await self.app(scope, _replay(stand_in, receive), send)

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
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
            scope["headers"].append((b"content-length", str(len(body)).encode()))
        return body

    # -- a laptop: nothing bounded but what a call may name --

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope.get("method") != "POST" or not (JOIN.search(path) or DIRECT.search(path)):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        checked = self._check_inputs(scope, bytes(body))
        await self.app(scope, _replay(checked, receive), send)

    # -- uploads: counted as they stream --

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = self.visitor(scope)
        if _mcp_reupload(scope):
            # Gradio's MCP server uploading a picture its caller sent inline, which keep_upload
            # already counted against that caller: only the folder's budget counts it again.
            who = MCP_REUPLOAD
        declared = _content_length(scope)
        now = self.clock()
        left = self.limits.upload_bytes_per_hour - self._spent_in_hour(who, now)
        if left <= 0 or (declared is not None and declared > left):
            raise self._over_hourly(who, now)
        if declared is not None:
            await self._make_room(declared)
        content_type, options = parse_options_header(_headers(scope).get("content-type", ""))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            await self._bounded(scope, receive, send)  # Gradio refuses it unread; keep it small
            return
        count = _PartCount(boundary, self.limits)
        refused: Refusal | None = None
        response_started = False
        response_body = bytearray()
        status = 0

        async def door_receive() -> Message:
            nonlocal refused
            message = await receive()
            while count.finished and message["type"] == "http.request":
                message = await receive()  # past the end (or a refusal): the app gets no more
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            poison = count.poison()  # what makes Gradio's parser fail where it stands now
            try:
                count.feed(chunk)
                await self._take(who, len(chunk))
            except Refusal as refusal:
                log.info("refused an upload from %s: %s", who, refusal.sentence)
                refused = refusal
                count.finished = True
                # Gradio's parser fails on this and deletes every temporary file of the request.
                return {"type": "http.request", "body": poison, "more_body": False}
            if count.finished:  # the closing boundary: Gradio needs nothing after it
                return {"type": "http.request", "body": chunk, "more_body": False}
            return message

        async def door_send(message: Message) -> None:
            nonlocal response_started, status
            if refused is not None:
                return  # Gradio's own answer to the poisoned body: the visitor gets the door's
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                if len(response_body) < 256 * 1024:
                    response_body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self._record_uploads(bytes(response_body))
            await send(message)

        await self.app(scope, door_receive, door_send)
        if refused is not None and not response_started:
            # Answered only now, when Gradio has deleted what it wrote: a 413 means nothing kept.
            await _answer(send, refused.status, refused.sentence, retry_after_s=refused.retry_after_s, close=True)

    async def _take(self, who: str, size: int) -> None:
        """Count `size` bytes of `who`'s upload, refusing them past the hour's or folder's room."""
        now = self.clock()
        with self._lock:
            spent = self._spent_in_hour_locked(who, now)
            if spent + size > self.limits.upload_bytes_per_hour:
                raise self._over_hourly(who, now)
        await self._make_room(size)
        with self._lock:
            self._count_locked(who, size, now)

    def _count_locked(self, who: str, size: int, now: float) -> None:
        """Add `size` bytes to the folder's count and to `who`'s hour, in minute buckets."""
        self._added_since_scan += size
        if who == MCP_REUPLOAD:
            return
        buckets = self._spent.setdefault(who, deque())
        minute = now // 60 * 60
        if buckets and buckets[-1][0] == minute:
            buckets[-1][1] += size
        else:
            buckets.append([minute, size])

    def _spent_in_hour(self, who: str, now: float) -> int:
        with self._lock:
            return self._spent_in_hour_locked(who, now)

    def _spent_in_hour_locked(self, who: str, now: float) -> int:
        if who == MCP_REUPLOAD:
            return 0
        buckets = self._spent.get(who)
        if not buckets:
            return 0
        while buckets and buckets[0][0] <= now - HOUR_S:
            buckets.popleft()
        if not buckets:
            del self._spent[who]
            return 0
        return int(sum(size for _, size in buckets))

    def _over_hourly(self, who: str, now: float) -> Refusal:
        buckets = self._spent.get(who)
        wait = (buckets[0][0] + HOUR_S - now) if buckets else 60.0
        return Refusal(
            429,
            f"You have uploaded {_mb(self.limits.upload_bytes_per_hour)} this hour; try again later.",
            retry_after_s=max(1.0, wait),
        )

    async def _make_room(self, size: int) -> None:
        """Refuse `size` more bytes in the upload folder if it would pass its budget, after first
        deleting the uploads that may go."""
        budget = self.limits.upload_folder_bytes
        used = self._known_folder_bytes()
        if used is None:
            used = await anyio.to_thread.run_sync(self.folder_bytes)
        if used + size <= budget:
            return
        await anyio.to_thread.run_sync(self.sweep)
        if await anyio.to_thread.run_sync(self.folder_bytes, True) + size > budget:
            raise Refusal(507, "This app's upload space is full; try again in a few minutes.")

    # -- the upload folder --

    def _known_folder_bytes(self) -> int | None:
        with self._lock:
            if time.monotonic() - self._scanned_at < SCAN_EVERY_S:
                return self._scanned_bytes + self._added_since_scan
        return None

    def folder_bytes(self, rescan: bool = False) -> int:
        """What the upload folder holds: walked at most every few seconds, plus bytes since."""
        now = time.monotonic()
        with self._lock:
            if not rescan and now - self._scanned_at < SCAN_EVERY_S:
                return self._scanned_bytes + self._added_since_scan
        total = _tree_bytes(self.folder)
        with self._lock:
            self._scanned_at, self._scanned_bytes, self._added_since_scan = now, total, 0
            return total

    def keep_upload(self, who: str, data: bytes, name: str) -> Path:
        """Write `data` (a picture an MCP caller sent inline) into the upload folder as an upload
        of `who`'s: counted against their hourly allowance and the folder's budget like one sent
        to the upload route, and swept with the others. Runs on the event loop, so it never
        walks the folder: the last walk plus the bytes since."""
        now = self.clock()
        with self._lock:
            if self.limits.shared:
                if self._spent_in_hour_locked(who, now) + len(data) > self.limits.upload_bytes_per_hour:
                    raise self._over_hourly(who, now)
                if self._scanned_bytes + self._added_since_scan + len(data) > self.limits.upload_folder_bytes:
                    raise Refusal(507, "This app's upload space is full; try again in a few minutes.")
            self._count_locked(who, len(data), now)
        folder = self.folder / ("inline-" + hashlib.sha256(data).hexdigest()[:40])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[-60:] or "image")
        path.write_bytes(data)
        with self._lock:
            self._uploads[os.path.abspath(path)] = now
        return path

    def _record_uploads(self, body: bytes) -> None:
        try:
            paths = json.loads(body)
        except ValueError:
            return
        if isinstance(paths, list):
            now = self.clock()
            with self._lock:
                for path in paths:
                    if isinstance(path, str):
                        self._uploads[os.path.abspath(path)] = now

    def sweep(self, held: Callable[[], Iterable[str | os.PathLike]] | None = None) -> int:
        """Delete uploads no run holds once `upload_keep_s` old (the app calls this on a timer),
        Gradio's temporary files left by broken uploads, and any deep link; returns files gone."""
        held_paths = {os.path.abspath(p) for p in (held or self.held)()}
        now = self.clock()
        keep_s = self.limits.upload_keep_s
        with self._lock:
            due = [p for p, at in self._uploads.items() if now - at >= keep_s]
        gone = 0
        for path in due:
            if path in held_paths or os.path.dirname(path) in held_paths:
                continue
            if _delete(Path(path), self.folder):
                gone += 1
            with self._lock:
                self._uploads.pop(path, None)
        gone += self._sweep_strays(now, keep_s)
        if gone:
            log.info("swept %d uploads from %s", gone, self.folder)
            with self._lock:
                self._scanned_at = -1e18  # walk it again next time
        return gone

    def _sweep_strays(self, now: float, keep_s: float) -> int:
        gone = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                # Gradio's parser writes each file as <folder>/tmpXXXX, then renames it into a
                # <sha>/ folder: one still here and old is from an upload that broke off.
                stray = entry.name.startswith("tmp") and entry.is_file() and now - entry.stat().st_mtime >= keep_s
            except FileNotFoundError:
                continue
            if stray and _delete(Path(entry.path), self.folder):
                gone += 1
            elif entry.name == "deep_links" and entry.is_dir():
                for file in Path(entry.path).rglob("*"):
                    gone += bool(file.is_file() and _delete(file, self.folder))
        return gone


class _PartCount:
    """Follows an upload's multipart body as Gradio's parser (the same parser) will see it."""

    def __init__(self, boundary: bytes, limits: DoorLimits) -> None:
        self.limits = limits
        self.files = 0
        self.field_bytes = 0
        self.finished = False
        self._in_file = False
        self._disposition = b""
        self._header = b""
        self._value = b""
        self._refusal: Refusal | None = None
        self._broken = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_end": self._on_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return  # Gradio's parser fails on the same bytes and answers 400 itself
        try:
            self.parser.write(chunk)
        except _Over:
            pass
        except Exception:  # a malformed body: Gradio's parser fails on the same bytes
            self._broken = True
            log.debug("an upload's multipart body is malformed", exc_info=True)
        if self._refusal is not None:
            raise self._refusal

    def poison(self) -> bytes:
        """Bytes that make a parser standing where this one stands now raise a parse error."""
        state = self.parser.state
        if state in (MultipartState.PART_DATA_START, MultipartState.PART_DATA, MultipartState.PART_DATA_END):
            return self.parser.boundary + b"\r\n\x00"  # end the part; a NUL cannot start a header
        if state in (MultipartState.HEADER_VALUE_START, MultipartState.HEADER_VALUE):
            return b"\r\x00"  # a header line must end in CRLF
        return b"\x00"  # no other state accepts a NUL

    def _refuse(self, refusal: Refusal) -> None:
        self._refusal = refusal
        raise _Over

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._disposition = b""
        self._in_file = b"filename" in options  # how Gradio tells a file from a field
        if self._in_file:
            self.files += 1
            if self.files > self.limits.files_per_upload:
                self._refuse(Refusal(413, f"One upload may carry at most {self.limits.files_per_upload} files."))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            self.field_bytes += end - start
            if self.field_bytes > self.limits.upload_field_bytes:
                self._refuse(Refusal(413, "An upload's form fields are too large."))

    def _on_end(self) -> None:
        self.finished = True


class _Over(Exception):
    """Stops the door's parser at the byte that broke a limit."""


# -- helpers --


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, lower-case; repeated ones joined with commas, as HTTP allows."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _mcp_reupload(scope: Scope) -> bool:
    """An upload by Gradio's own MCP client (gradio/mcp.py: `x-gradio-user: mcp`) over loopback."""
    peer = (scope.get("client") or (None,))[0]
    return _headers(scope).get("x-gradio-user") == "mcp" and is_loopback(peer)


def _hosts(scope: Scope) -> list[str]:
    """The names a caller reached this app by: its Host, and a proxy's X-Forwarded-Host (an
    address of the app's own files is read as the path it names only when it names one of these;
    a caller who writes another gains nothing: it could name the path itself)."""
    headers = _headers(scope)
    return [h for h in (headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")) if h.strip()]


def _gradio_client(scope: Scope) -> bool:
    """A call from the Python gradio_client (its user-agent), which also carries MCP tool calls."""
    return "gradio_client/" in _headers(scope).get("user-agent", "")


# The sentence of an MCP call the door refused, on the stand-in call it hands the MCP server.
REFUSED_HEADER = "x-skyreels-refused"
MCP_BUSY = (
    "The app is taking in other large pictures right now: try again in a few seconds, or upload the "
    "picture first (POST it to /gradio_api/upload) and give its address."
)


def mcp_too_large(size: int, limit: int) -> str:
    return (
        f"That call carried {size / MB:.1f} MB, and an MCP call to this app may carry at most {_mb(limit)} (a picture "
        f"of about {_mb(limit * 3 // 4)} as a data URI). Upload the picture first: POST it as the multipart "
        "field \"files\" to <app>/gradio_api/upload, then give <app>/gradio_api/file=<the path it answers> "
        "as the image."
    )


def _request_id(head: bytes, tail: bytes) -> Any:
    """A JSON-RPC request's id, read from its first or last bytes (Python's MCP client writes it
    last, the TypeScript one near the start); None when neither shows one."""
    found = re.search(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")\s*}\s*$', tail) or re.search(
        rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")', head
    )
    if found is None:
        return None
    try:
        return json.loads(found[1])
    except ValueError:
        return None


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    """A refusal in the shape the caller reads (see the module docstring)."""
    path = scope.get("path", "")
    if JOIN.search(path) and _gradio_client(scope):
        # gradio_client raises "N parameter(s) failed validation: - <name>: <sentence>" from this
        # shape, and only an HTTPStatusError (no sentence) from any other refused join.
        detail = [{"__type__": "validate", "is_valid": False, "message": refusal.sentence,
                   "parameter_name": refusal.name or "request"}]
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 422, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    await _answer(send, refusal.status, refusal.sentence, retry_after_s=refusal.retry_after_s, close=True)


def _content_length(scope: Scope) -> int | None:
    raw = _headers(scope).get("content-length", "").strip()
    return int(raw) if raw.isdigit() else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body the door read, handed to the app once; then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(
    send: Send, status: int, sentence: str, *, retry_after_s: float | None = None, close: bool = False
) -> None:
    body = json.dumps({"detail": sentence}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(int(retry_after_s + 0.999)).encode()))
    if close:
        headers.append((b"connection", b"close"))  # the rest of the body is not read: hang up
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _tree_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _delete(path: Path, folder: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)
        return False
    if path.parent != folder:
        try:
            path.parent.rmdir()  # Gradio's <sha>/ folder, if this was its only file
        except OSError:
            pass
    return True


def _mb(size: int) -> str:
    return f"{size / MB:g} MB"
