"""The sentences a page's buttons answer with when pressed too early or with nothing chosen.

Each is shown in a note beside the button that was pressed (a Markdown block of its own), never
as Gradio's error over an input (its red "Error" stays until the next event) nor as a pop-up from
an unqueued event (gr.Info there reaches only the server's log). An empty note takes no room.
"""

from __future__ import annotations

# History's buttons for the picked take (tabs/history.py lays them out; Keep's label is ui_takes').
USE_THESE, NEW_SEED, CONTINUE = "Use these settings", "Run again with a new seed", "Continue this shot"
DOWNLOAD, SHARE, WITHDRAW = "Download this take", "Share this take", "Withdraw the link"
NO_VIDEO_YET = "Make a video first: the next shot starts from its last frame. Add an image and a prompt, then press Generate."
CHOOSE_A_ZIP = "Choose a take's .zip first (from \"Download this take\"), then press Make it again."


def pick_a_take(button: str) -> str:
    """What a take's button answers with nothing picked: naming the button, so a visitor who
    pressed several knows which one this answers."""
    return f"Pick a take first: click one of the pictures in your runs, then press “{button}” again."


def note(sentence: str) -> str:
    """A note's Markdown: the sentence as it is (the page marks a note by its style, ui.css)."""
    return sentence
