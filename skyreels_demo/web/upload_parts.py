"""An upload's multipart body followed as it streams, with the same parser Gradio reads it with,
so the door can refuse the sixth file or oversized form fields at the byte that breaks a limit.

Separate from the door because it is a parser's view of one body, not a decision about a
request; where the door then stops Gradio's own parser is a reach into Gradio
(gradio_compat.multipart_poison).
"""

from __future__ import annotations

import logging
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from skyreels_demo.web import gradio_compat
from skyreels_demo.web.asgi import Refusal

log = logging.getLogger(__name__)


class PartCount:
    """Follows an upload's multipart body as Gradio's parser (the same parser) will see it."""

    def __init__(self, boundary: bytes, limits: Any) -> None:
        self.limits = limits  # door.DoorLimits
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
        return gradio_compat.multipart_poison(self.parser)

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
