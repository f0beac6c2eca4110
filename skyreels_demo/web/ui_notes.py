"""The sentences a page's buttons answer with when pressed too early or with nothing chosen.

Each is shown in a note beside the button that was pressed (a Markdown block of its own), never
as Gradio's error over an input (its red "Error" stays until the next event) nor as a pop-up from
an unqueued event (gr.Info there reaches only the server's log). An empty note takes no room.
"""

from __future__ import annotations

PICK_A_TAKE = "Pick a take first: click one of the pictures in your runs, then press this again."
NO_VIDEO_YET = "Make a video first: the next shot starts from its last frame. Add an image and a prompt, then press Generate."
CHOOSE_A_ZIP = "Choose a take's .zip first (from \"Download this take\"), then press Make it again."


def note(sentence: str) -> str:
    """A note's Markdown: the sentence as it is (the page marks a note by its style, ui.css)."""
    return sentence
