"""What the page and API clients send, checked: every handler takes its inputs through these,
so a script calling a "private" event with junk gets a refusal, not a traceback."""

from __future__ import annotations

import re

import gradio as gr

from . import images
from .remote_images import ImageAddress

UNEXPECTED = "Something went wrong on our side: try again, and if it keeps happening, report it."
# A browser's private History id, as `new_visitor` makes them.
_VISITOR_ID = re.compile(r"[0-9a-f]{32}")


def new_visitor(visitor: str | None) -> str:
    import uuid

    return visitor_id(visitor) or uuid.uuid4().hex


def visitor_id(value: object) -> str:
    """A browser's History id, or "" for anything that is not one."""
    return value if isinstance(value, str) and _VISITOR_ID.fullmatch(value) else ""


def session_of(request: gr.Request | None) -> str:
    value = getattr(request, "session_hash", None)
    return value if isinstance(value, str) else ""


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def picture(value: object) -> str | ImageAddress | None:
    """What an image box handed over: a file's path, an address (ImageInput: fetched only once
    the run is admitted), or None for anything else."""
    return value if isinstance(value, (str, ImageAddress)) and value else None


def fit_choice(value: object) -> str:
    return value if value in images.FITS else "crop"
