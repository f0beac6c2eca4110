"""An MCP tool call at the door: room for a picture inline (8 MB, 64 MB of such calls at once),
and a refusal the caller's MCP session survives.

Separate from the door because an MCP call is refused unlike any other request: not with an
HTTP status (which would end the client's session) but as the tool's own error, answered by
the MCP server itself to a stand-in call with the same id (gradio_compat.mcp reads the
sentence from `REFUSED_HEADER`, which only the door sets).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote

from skyreels_demo.web.asgi import MB, ASGIApp, Receive, Refusal, Scope, Send, answer, mb, replay, with_length

log = logging.getLogger(__name__)

# The sentence of an MCP call the door refused, on the stand-in call it hands the MCP server.
REFUSED_HEADER = "x-skyreels-refused"
MCP_BUSY = (
    "The app is taking in other large pictures right now: try again in a few seconds, or upload the "
    "picture first (POST it to /gradio_api/upload) and give its address."
)
_ENDS = 512  # bytes kept of each end of a call past its limit: enough to find its id and tool


def mcp_too_large(size: int, limit: int) -> str:
    return (
        f"That call carried {size / MB:.1f} MB, and an MCP call to this app may carry at most {mb(limit)} (a picture "
        f"of about {mb(limit * 3 // 4)} as a data URI). Upload the picture first: POST it as the multipart "
        "field \"files\" to <app>/gradio_api/upload, then give <app>/gradio_api/file=<the path it answers> "
        "as the image."
    )


class McpCalls:
    """Admits MCP tool calls to the app: each within its size, the large ones within their share."""

    def __init__(self, app: ASGIApp, limits: Any) -> None:
        self.app = app
        self.limits = limits  # door.DoorLimits
        self._lock = threading.Lock()
        self._large_bytes = 0  # MCP calls over body_bytes being served now

    async def __call__(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        limit, drain = self.limits.mcp_body_bytes, self.limits.mcp_drain_bytes
        # Only the door says a call was refused (gradio_compat.mcp reads it): never a client.
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != REFUSED_HEADER.encode()]
        if declared is not None and declared > drain:
            raise Refusal(413, f"An MCP call to this app may carry at most {mb(limit)}.")
        read = await self._read(receive, send, limit, drain)
        if read is None:
            return
        body, head, tail, size = read
        if size > limit:
            log.info("refused an MCP call of %.1f MB", size / MB)
            await self._refused(scope, receive, send, head, tail, mcp_too_large(size, limit))
            return
        taken = len(body) if len(body) > self.limits.body_bytes else 0
        with self._lock:
            busy = self._large_bytes + taken > self.limits.mcp_large_bytes_at_once
            if not busy:
                self._large_bytes += taken
        if busy:
            await self._refused(scope, receive, send, body[:_ENDS], body[-_ENDS:], MCP_BUSY)
            return
        try:
            await self.app(scope, replay(body, receive), send)
        finally:
            with self._lock:
                self._large_bytes -= taken

    @staticmethod
    async def _read(receive: Receive, send: Send, limit: int, drain: int) -> tuple[bytes, bytes, bytes, int] | None:
        """(the body, or its two ends once past `limit`; its size). A call past `limit` is read
        through (counted, not kept) to answer it at its end; past `drain`, the connection is
        closed. None when the call ended here."""
        body = bytearray()
        head, tail, size = b"", b"", 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                body += chunk
            else:
                if body:  # past the limit: only the ends are kept, to find the request's id
                    head, tail, body = bytes(body[:_ENDS]), bytes(body[-_ENDS:]), bytearray()
                if not head:
                    head = chunk[:_ENDS]
                tail = (tail + chunk)[-_ENDS:]
                if size > drain:
                    await answer(send, 413, f"An MCP call to this app may carry at most {mb(limit)}.", close=True)
                    return None
            if not message.get("more_body", False):
                return bytes(body), head, tail, size

    async def _refused(self, scope: Scope, receive: Receive, send: Send, head: bytes, tail: bytes, sentence: str) -> None:
        """A tool call refused for its size, answered as the tool's error through the MCP server
        itself, so that it reaches the client on whichever transport it uses (streamable HTTP's
        answer, or SSE's stream) and its session goes on; a non-2xx answer would end the session.
        The server is handed a stand-in call with the same id and no arguments, and the sentence
        in a header only the door sets. A request whose id cannot be read gets HTTP 413."""
        request_id = _request_id(head, tail)
        if request_id is None or not re.search(rb'"method"\s*:\s*"tools/call"', head):
            await answer(send, 413, sentence, close=True)
            return
        name = re.search(rb'"name"\s*:\s*"([A-Za-z0-9_.-]{1,128})"', head)
        stand_in = json.dumps({
            "jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name[1].decode() if name else "", "arguments": {}},
        }).encode()
        headers = with_length(scope, len(stand_in), drop=(b"content-length", b"transfer-encoding"))
        scope["headers"] = headers + [(REFUSED_HEADER.encode(), quote(sentence).encode())]
        await self.app(scope, replay(stand_in, receive), send)


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
