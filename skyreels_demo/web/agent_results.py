"""What an agent is handed back: errors as the app's sentences, results as plain items (a
gallery as one line per video, a status as its plain lines, never HTML or a Python repr), and a
picture it sent inline kept as its upload.

Separate from the MCP server's class (gradio_compat/mcp.py), which only reaches into Gradio to
call these: what is said to an agent is the app's, and reads without Gradio's internals.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from skyreels_demo.images import MAX_BYTES as MAX_IMAGE_BYTES
from skyreels_demo.web.status_board import plain_text

# When a failure carries no sentence of ours (it should not happen): never a bare "Error!".
NO_SENTENCE = "The app could not finish this call; the reason is in its log. Try again in a minute."
NOT_A_PATH = (
    "The image must be an https address of the picture or a data URI "
    "(data:image/jpeg;base64,...): a file path is not read by this server."
)
# gradio_client's words for an error whose message the app hid (show_error=False).
_HIDDEN_ERROR = "has not enabled verbose error reporting"
_VALIDATION = re.compile(r"^\d+ parameter\(s\) failed validation:")


class InlineRefused(RuntimeError):
    """A picture sent inline that the app will not keep; its message is the sentence."""


def sentence(message: str) -> str:
    """The app's sentence from an error's text, or `NO_SENTENCE` when it carries none.

    A call the door refused reaches gradio_client in Gradio's validation shape, which it words
    "1 parameter(s) failed validation:\n- prompt: <sentence>": the sentences are what is said."""
    message = (message or "").strip()
    if _VALIDATION.match(message):
        message = " ".join(line.split(": ", 1)[-1].strip() for line in message.splitlines()[1:] if line.startswith("- "))
    if not message or _HIDDEN_ERROR in message or message in {"Error", "Error!", "None"}:
        return NO_SENTENCE
    return message


def plain_outputs(data: list[Any]) -> list[Any]:
    """A tool's outputs as an agent reads them: a gallery as one line per video ("Seed 41
    (variation 2): <url>"), any other dict or list as JSON text, a status as its plain lines
    (status_board.plain_text: the page and gradio_client get its HTML)."""
    data = [_as_text(item) if isinstance(item, (dict, list)) and not _is_file(item) else item for item in data]
    return [plain_text(item) or item if isinstance(item, str) else item for item in data]


def files_as_strings(schema: dict[str, Any], files: list[list[str | int]]) -> dict[str, Any]:
    """A file given as a string keeps nothing of its object form (gr.Video's FileData left
    `"required": ["path"]` on a string, which no string satisfies)."""
    for position in files:
        node = at(schema.get("properties", {}), position)
        if isinstance(node, dict) and node.get("type") == "string":
            node.pop("required", None)
            node.pop("title", None)
    return schema


def inline_positions(value: Any, positions: list[list[str | int]]) -> tuple[set[tuple], list[list[str | int]]]:
    """(the file positions holding a data URI, the others)."""
    inline = {tuple(p) for p in positions if isinstance(at(value, p), str) and at(value, p).startswith("data:")}
    return inline, [p for p in positions if tuple(p) not in inline]


def keep_inline(uploads: Any, who: str, uri: str) -> Any:
    """A picture sent inline, kept as `who`'s upload: counted against their hourly allowance and
    the upload folder's budget, and swept with the other uploads (Gradio would write it to its
    temporary folder, counted by nothing and never swept)."""
    data = _inline_bytes(uri)
    if uploads is None:
        raise ValueError("inline pictures are not kept by this server")
    try:
        return uploads.keep_upload(who, data, "image")
    except Exception as refusal:  # the door's Refusal: its sentence is the answer
        raise InlineRefused(getattr(refusal, "sentence", None) or NO_SENTENCE) from None


def _inline_bytes(uri: str) -> bytes:
    """The bytes of a `data:...;base64,` picture, refused with a sentence past the image limit
    before it is decoded."""
    header, _, payload = uri.partition(",")
    if ";base64" not in header or not payload:
        raise InlineRefused("A data URI picture must be base64 (data:image/jpeg;base64,...).")
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise InlineRefused(f"That picture is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB: send a smaller one.")
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise InlineRefused("That data URI is not valid base64: send the picture again.") from None


def at(value: Any, path: list[str | int]) -> Any:
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def put(value: Any, path: list[str | int], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = put(copy[path[0]], path[1:], new)
    return copy


def _as_text(item: Any) -> str:
    if isinstance(item, list) and all(isinstance(entry, dict) and ("video" in entry or "image" in entry) for entry in item):
        lines = []
        for entry in item:
            media = entry.get("video") or entry.get("image") or {}
            url = media.get("url") or media.get("path") if isinstance(media, dict) else media
            lines.append(f"{entry.get('caption') or 'Video'}: {url}")
        return "\n".join(lines) or "No videos were made."
    return json.dumps(item)


def _is_file(item: Any) -> bool:
    from gradio_client import utils as client_utils

    return client_utils.is_file_obj_with_meta(item)
