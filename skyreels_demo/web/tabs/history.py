"""The History tab: this browser's takes, found by words or kept, one picked to watch and act
on (reuse, continue, keep, share, download), compared side by side, or made again from a zip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from skyreels_demo.studio.keys import MAX_KEY_CHARS
from skyreels_demo.web.components import KeyBox
from skyreels_demo.web.compare_view import COMPARE_JS
from skyreels_demo.web.ui_notes import CONTINUE, DOWNLOAD, NEW_SEED, SHARE, USE_THESE, WITHDRAW
from skyreels_demo.web.ui_takes import KEEP


@dataclass(frozen=True)
class HistoryTab:
    """History's components, as the wiring reaches them."""

    tab: gr.Tab
    history_ids: gr.State
    chosen: gr.State  # the picked take's run id
    # finding
    find_words: gr.Textbox
    kept_only: gr.Checkbox
    gallery: gr.Gallery
    refresh: gr.Button
    # the picked take
    past_video: gr.Video
    past_details: gr.Markdown
    finish_box: gr.Group
    finish_key: KeyBox
    finish_go: gr.Button
    again: gr.Button
    reroll: gr.Button
    past_continue: gr.Button
    keep: gr.Button
    download: gr.Button
    share: gr.Button
    withdraw: gr.Button
    take_buttons: list[gr.Button]
    take_note: gr.Markdown
    share_link: gr.Textbox
    take_zip: gr.File
    # comparing, and a take made again from its zip
    compare_pick: gr.CheckboxGroup
    compare_go: gr.Button
    compare_view: gr.HTML
    take_file: gr.File
    make_again: gr.Button
    zip_note: gr.Markdown


def history_tab() -> HistoryTab:
    """The History tab, drawn: the finder, the gallery beside the picked take, then comparing."""
    with gr.Tab("History", id="history") as tab:
        history_ids = gr.State([])
        chosen = gr.State("")
        # -- takes: found by prompt words, kept only (ui_takes.py) --
        with gr.Row(equal_height=True, elem_id="history-find"):
            find_words = gr.Textbox(
                label="Find takes by prompt words", placeholder="e.g. smiles snow", max_length=200, scale=3
            )
            kept_only = gr.Checkbox(
                label="Kept takes only ★", scale=0, min_width=0, container=False, elem_id="kept-only"
            )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gallery = gr.Gallery(
                    label="Your runs, newest first",
                    columns=3,
                    height=560,
                    object_fit="cover",
                    allow_preview=False,
                    elem_id="history-gallery",
                )
                refresh = gr.Button("Refresh", size="sm")
            with gr.Column(scale=2):
                picked = _picked_take()
        later = _compare_and_zip()
    return HistoryTab(tab=tab, history_ids=history_ids, chosen=chosen, find_words=find_words, kept_only=kept_only,
                      gallery=gallery, refresh=refresh, **picked, **later)


def _picked_take() -> dict[str, Any]:
    """The picked take's video and details, Finish with a key, and its row of small buttons."""
    past_video = gr.Video(
        label="Video", autoplay=True, loop=True, interactive=False, elem_id="history-video"
    )
    past_details = gr.Markdown(
        "Pick a take to watch it here; then keep, share, download or reuse it.", elem_id="take-details"
    )
    with gr.Group(visible=False) as finish_box:
        finish_key = KeyBox(
            label="This run was made with your own key: paste it again to fetch its video",
            type="password",
            max_length=MAX_KEY_CHARS,
            placeholder="Used for this run only, then forgotten.",
        )
        finish_go = gr.Button("Finish this run", variant="primary")
    # -- the picked take: reuse, keep, share, download (ui_takes.py), one compact
    # row of small buttons; each says in the note below what to do first when
    # nothing is picked, and waits for a pick to land before it acts on it.
    with gr.Row(elem_id="take-actions"):
        small = dict(size="sm", scale=0, min_width=0)
        again = gr.Button(USE_THESE, **small)
        reroll = gr.Button(NEW_SEED, **small)
        past_continue = gr.Button(CONTINUE, **small)
        keep = gr.Button(KEEP, **small)
        download = gr.Button(DOWNLOAD, **small)
        share = gr.Button(SHARE, **small)
        withdraw = gr.Button(WITHDRAW, **small)
    take_buttons = [keep, download, share, withdraw, again, reroll, past_continue]  # Keep first: ui_takes
    take_note = gr.Markdown(elem_id="take-note", elem_classes="action-note")
    share_link = gr.Textbox(
        label="Link to this take", interactive=False, buttons=["copy"], elem_id="share-link", visible=False
    )
    take_zip = gr.File(label="This take, as a zip", visible=False, interactive=False, elem_id="take-zip")
    return dict(past_video=past_video, past_details=past_details, finish_box=finish_box, finish_key=finish_key,
                finish_go=finish_go, again=again, reroll=reroll, past_continue=past_continue, keep=keep,
                download=download, share=share, withdraw=withdraw, take_buttons=take_buttons, take_note=take_note,
                share_link=share_link, take_zip=take_zip)


def _compare_and_zip() -> dict[str, Any]:
    """Takes side by side, and a take made again from its zip (ui_takes.py)."""
    with gr.Row(equal_height=True, elem_id="compare-row"):
        compare_pick = gr.CheckboxGroup(label="Compare… (choose 2 to 4 takes)", choices=[], scale=4)
        compare_go = gr.Button("Compare", size="sm", scale=0, min_width=110, elem_id="compare-go")
    compare_view = gr.HTML(elem_id="compare", js_on_load=COMPARE_JS)
    with gr.Accordion("Make it again from a downloaded take", open=False):
        take_file = gr.File(label="A take's .zip", file_types=[".zip"], type="filepath")
        make_again = gr.Button("Make it again")
        zip_note = gr.Markdown(elem_classes="action-note", elem_id="zip-note")
    return dict(compare_pick=compare_pick, compare_go=compare_go, compare_view=compare_view,
                take_file=take_file, make_again=make_again, zip_note=zip_note)
