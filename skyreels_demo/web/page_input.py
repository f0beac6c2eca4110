"""What the page and API clients send, checked: every handler takes its inputs through these,
so a script calling a "private" event with junk gets a refusal, not a traceback."""

from __future__ import annotations

import re

import gradio as gr

from skyreels_demo import images
from skyreels_demo.images.remote import ImageAddress
from skyreels_demo.store.runs import Run, RunStore

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


# The one sentence for a run or film that is not this browser's (the same whether it exists).
NOT_YOURS = "That take is not in this browser's History: pick one of your own takes."


def may_touch(shared: bool, record: object, visitor: object, requester: str = "") -> bool:
    """May this browser touch this run or film: continue it, share, keep, download or reuse it?

    The one rule every handler asks. On a laptop, yes: one person owns everything. On a shared
    app, only the browser whose History holds it (its private id, never a name a client sends);
    a run an API client made (no browser, no History) only by the same requester as the server
    decided it (their signed-in account, else their address)."""
    if not shared:
        return True
    owner = getattr(record, "visitor", None)
    if not isinstance(owner, str):
        return False
    browser = visitor_id(visitor)
    if browser:
        return owner == browser
    return not owner and bool(requester) and getattr(record, "requester", None) == requester


def own_run(store: RunStore, shared: bool, run_id: object, visitor: object, requester: str = "") -> Run | None:
    """The run `run_id` names, if this browser may touch it (`may_touch`), else None: the same
    whether the run is someone else's or no run at all, so an answer tells nothing of others'."""
    if not isinstance(run_id, str) or not run_id:
        return None
    try:
        run = store.get(run_id)
    except KeyError:
        return None
    return run if may_touch(shared, run, visitor, requester) else None
