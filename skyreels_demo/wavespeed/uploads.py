"""Handing WaveSpeed the image: the official SDK's ticket and PUT, the documented binary upload,
or the image inline as a data URI, whichever this host offers.

With `image_transport="auto"` the ways are tried in that order, each next one only when the
route before answers 404 or 405, and the way that worked is remembered per base URL for the
process. An upload costs nothing, so each way may be retried; it is never the paid submit.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any, Mapping

from skyreels_demo.errors import ApiError, AuthError, UploadFailed
from skyreels_demo.wavespeed.retries import Call
from skyreels_demo.wavespeed.transport import Transport

log = logging.getLogger(__name__)

# Ways to hand WaveSpeed the image, in the order `auto` tries them.
WAYS_UP = ("ticket", "binary", "inline")
# Which way worked, per base URL, for this process: later runs go straight to it.
way_that_worked: dict[str, str] = {}
_way_lock = threading.Lock()


class ImageUploads:
    """Hands images over through one key's `Transport`, by the ways this host offers."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.base_url = transport.base_url
        self.settings = transport.settings

    def upload(self, data: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg") -> str:
        """Hand WaveSpeed the image; return what to submit as `image` (a URL, or a data URI).

        With `image_transport="auto"` it tries the official SDK's ticket and PUT, then the
        documented binary upload when that route answers 404 or 405, then the image inline;
        the way that worked is remembered for this base URL. "upload" never goes inline;
        "inline" never uploads. An upload costs nothing, so each way may be retried; it is
        never the paid submit.
        """
        started = time.monotonic()
        ways = self._ways_up()
        for index, way in enumerate(ways):
            try:
                url = self._upload_by(way, data, filename, content_type)
            except ApiError as exc:
                retired = exc.status in (404, 405) and not isinstance(exc, AuthError)
                if retired and index + 1 < len(ways):
                    log.info("the %s upload is not offered here (HTTP %s); trying the next way", way, exc.status)
                    continue
                raise
            with _way_lock:
                way_that_worked[self.base_url] = way
            log.info("image handed over (%s, %d bytes) in %.2fs", way, len(data), time.monotonic() - started)
            return url
        raise AssertionError("unreachable: the last way either returns or raises")

    def _ways_up(self) -> tuple[str, ...]:
        setting = self.settings.image_transport
        if setting == "inline":
            return ("inline",)
        ways = WAYS_UP if setting == "auto" else ("ticket", "binary")
        with _way_lock:
            known = way_that_worked.get(self.base_url)
        if known in ways:
            return (known,) + tuple(way for way in ways if way != known)
        return ways

    def _upload_by(self, way: str, data: bytes, filename: str, content_type: str) -> str:
        if way == "inline":
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        if way == "binary":
            body = self.transport.request(
                Call.UPLOAD,
                "POST",
                "/api/v3/media/upload/binary",
                "uploading the image",
                error=UploadFailed,
                files={"file": (filename, data, content_type)},
            )
        else:
            body = self._upload_with_ticket(data, filename, content_type)
        url = body.get("download_url")
        if not isinstance(url, str) or not url:
            raise UploadFailed("The upload did not return an image URL: try again in a minute.")
        return url

    def _upload_with_ticket(self, data: bytes, filename: str, content_type: str) -> Mapping[str, Any]:
        """The official SDK's way: a ticket from the API, then a PUT to where it points."""
        body = self.transport.request(
            Call.UPLOAD,
            "POST",
            "/api/v3/media/uploads",
            "asking where to upload the image",
            error=UploadFailed,
            json={"filename": filename, "size": len(data), "content_type": content_type},
        )
        ticket = body.get("upload")
        ticket = ticket if isinstance(ticket, Mapping) else {}
        url, headers = ticket.get("url"), ticket.get("headers") or {}
        if str(ticket.get("method", "")).upper() != "PUT" or not isinstance(url, str) or not url:
            raise UploadFailed("WaveSpeed did not say where to upload the image: try again in a minute.")
        if not isinstance(headers, Mapping):
            headers = {}
        response = self.transport.send(
            Call.UPLOAD,
            "PUT",
            url,
            "uploading the image",
            session=self.transport.storage,
            data=data,
            headers={str(k): str(v) for k, v in headers.items()},
        )
        if not 200 <= response.status_code < 300:
            raise UploadFailed(
                f"The image could not be uploaded (storage answered HTTP {response.status_code}): "
                "try again in a minute.",
                status=response.status_code,
                detail=response.text[:200],
            )
        return body
