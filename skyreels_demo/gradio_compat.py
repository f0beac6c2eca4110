"""Every reach into Gradio's internals, in one place, each with the version and file it was
read from; tests/test_gradio_compat.py fails loudly when an upgrade moves one.

Read from Gradio 6.31.0 (requirements.txt pins it to the Space's sdk_version).
"""

from __future__ import annotations

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
