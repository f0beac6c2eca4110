"""Every reach into Gradio's internals, in one place, each with the version and file it was
read from; tests/test_gradio_compat.py fails loudly when an upgrade moves one.

Read from Gradio 6.31.0 (requirements.txt pins it to the Space's sdk_version).
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

GRADIO_VERSION = "6.31.0"


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
