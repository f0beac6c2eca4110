"""Every reach into Gradio's internals, in one package, each with the version and file it was
read from; tests/test_gradio_compat.py fails loudly when an upgrade moves one. Nothing else in
the tree touches Gradio's private names, swaps its classes or sets what its launch() would.

Read from Gradio 6.31.0 (requirements.txt pins it to the Space's sdk_version). Here: what
launch() would set on Blocks that are mounted instead, and the stop of Gradio's upload parser;
the MCP server's class (mcp.py); the page's scripts that read Gradio's queue stream, fix its
markup and pace its status trackers' frames (page_js.py).
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from skyreels_demo.web.gradio_compat.page_js import (  # noqa: F401
    ACCESSIBLE_MARKUP_HEAD, FRAME_PACING_HEAD, queue_place_head,
)

GRADIO_VERSION = "6.31.0"
# gradio/blocks.py Blocks.create_limiter: max_threads of exactly 40 (its default) means "no
# limiter of Gradio's own": its steps then share the serving loop's default thread limiter.
SHARED_LIMITER_THREADS = 40


def adopt_mcp_server(blocks: Any, **hooks: Any) -> Any:
    """The app's MCP server made agent-facing (mcp.py); imported only when it is used."""
    from skyreels_demo.web.gradio_compat.mcp import adopt_server

    return adopt_server(blocks, **hooks)


def set_session_limits(blocks: gr.Blocks, *, sessions: int, delete_cache: tuple[int, int]) -> None:
    """What Blocks.launch() (gradio/blocks.py: `self.state_session_capacity = ...`) and
    Blocks(delete_cache=...) would set, on Blocks that gr.mount_gradio_app (routes.py, which
    takes neither) mounts instead; set before mounting, where App reads them."""
    blocks.state_session_capacity = sessions
    blocks.delete_cache = delete_cache


def share_threads(blocks: gr.Blocks, events_at_once: int) -> None:
    """Gradio's steps on the serving loop's thread limiter, and its queue's cap on events in
    progress at once: what launch(max_threads=...) sets (gradio/blocks.py: `self.max_threads`,
    `self._queue.max_thread_count`; queueing.py Queue.max_thread_count sizes its active jobs),
    which mounting never calls. The limiter's size is set by the server (server.thread_bound)."""
    blocks.max_threads = SHARED_LIMITER_THREADS
    blocks._queue.max_thread_count = events_at_once


# How often an idle queue looks for work. Gradio's own pace on Linux is every 1 ms (queueing.py
# Queue.__init__: sleep_when_free), 6 to 8% of a core for an app nobody is using (bench/
# bench_idle.py): a laptop's fan, a Space's share. At 20 ms an event starts within 20 ms of its
# arrival. Progress keeps Gradio's 10 ms (progress_update_sleep_when_free): an update newer than
# the last one sent replaces it, and a quick stage ("Downloading the video") must still be heard.
QUEUE_IDLE_S = 0.02


def pace_queue(blocks: gr.Blocks) -> None:
    """Gradio's queue, idle, looks for work every QUEUE_IDLE_S rather than every 1 ms
    (queueing.py Queue.start_processing reads the attribute on each pass)."""
    blocks._queue.sleep_when_free = QUEUE_IDLE_S


def mark_running(blocks: gr.Blocks, url: str) -> None:
    """What launch() would have told Gradio once serving: its own address, for MCP (which calls
    the app's queue over loopback at `local_url`: gradio/mcp.py GradioMCPServer._local_url) and
    the API page (gradio/blocks.py: local_url, local_api_url, is_running)."""
    blocks.local_url = url
    blocks.local_api_url = f"{url}gradio_api/"
    blocks.is_running = True
    mcp = getattr(blocks, "mcp_server_obj", None)
    if mcp is not None:
        mcp._local_url = url


def multipart_poison(parser: Any) -> bytes:
    """Bytes that make a python_multipart parser standing where `parser` stands raise a parse
    error. gradio/route_utils.py GradioMultiPartParser.parse: on any error it closes and deletes
    every temporary file of the request and answers 400, which is how the door refuses an upload
    mid-stream and leaves nothing on disk. States read from python_multipart
    0.0.34 (multipart.py MultipartState)."""
    from python_multipart.multipart import MultipartState

    state = parser.state
    if state in (MultipartState.PART_DATA_START, MultipartState.PART_DATA, MultipartState.PART_DATA_END):
        return parser.boundary + b"\r\n\x00"  # end the part; a NUL cannot start a header
    if state in (MultipartState.HEADER_VALUE_START, MultipartState.HEADER_VALUE):
        return b"\r\x00"  # a header line must end in CRLF
    return b"\x00"  # no other state accepts a NUL


def guard_file_inputs(blocks: gr.Blocks) -> None:
    """Make Gradio check every file path a client names, as it does when it launches itself.

    gradio/processing_utils.py `_check_allowed` returns at once unless `blocks.has_launched`,
    which only `Blocks.launch()` sets (blocks.py); gr.mount_gradio_app (routes.py) leaves it
    False, so a mounted app opened, hashed and copied any path a call named (/dev/zero wedged
    the event loop; /proc/self/environ was served back). With it set, an event's file inputs
    must lie in Gradio's upload folder (or a static path: gr.set_static_paths). The door
    (event_inputs.py) refuses such a call with a sentence before this is ever reached; this is
    the second lock.
    """
    blocks.has_launched = True


# gradio/templates/frontend/index.html writes two sets of Open Graph and Twitter tags into the
# page's head ("Gradio", "Click to try out the app!", a literal "{url}", Gradio's own picture;
# then the config's title and description), each a <meta property="og:..."> or
# <meta name="twitter:..."> over one or several lines.
_LINK_CARD_TAG = re.compile(r'<meta\s+(?:property="og:[^"]*"|name="twitter:[^"]*")[^>]*>\s*', re.S)
_HEAD = re.compile(r"<head[^>]*>", re.I)
_CHARSET = re.compile(r"\s*<meta\s+charset=[^>]*>", re.I)


def served_page(page: str, tags: str) -> str:
    """Gradio's page as the app serves it: its link card (`tags`), and the fixes that must run
    before Gradio's own scripts are read (FRAME_PACING_HEAD), early in its head."""
    return with_link_card(page, f"{FRAME_PACING_HEAD}\n{tags}")


def with_link_card(page: str, tags: str) -> str:
    """Gradio's page with its link-card tags (Open Graph, Twitter) replaced by `tags`, early in
    its head (after the charset, before the page's large inline config, so a crawler that
    reads only the start of a page still finds them); the page unchanged if it has no head."""
    head = _HEAD.search(page)
    if head is None:
        return page
    end = page.find("</head>", head.end())
    end = len(page) if end < 0 else end
    inside = _LINK_CARD_TAG.sub("", page[head.end():end])
    charset = _CHARSET.match(inside)
    at = charset.end() if charset else 0
    return f"{page[:head.end()]}{inside[:at]}\n{tags}{inside[at:]}{page[end:]}"
