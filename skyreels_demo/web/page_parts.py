"""The page's parts outside its tabs (the header, a shared take's read-only view, the API's hidden
inputs) and `Page`, which holds every part the wiring reaches: separate from page.py so that the
wiring (page_wiring.py) can name them without importing the app that builds them."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from skyreels_demo.config import Settings
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.films import MAX_SHOTS
from skyreels_demo.web.status_board import banner
from skyreels_demo.web.tabs.create import CreateTab
from skyreels_demo.web.tabs.film import FilmTab
from skyreels_demo.web.tabs.history import HistoryTab


@dataclass(frozen=True)
class SharedView:
    """A shared take, opened by its link (?take=<token>): read-only (ui_takes.py)."""

    token: gr.State
    view: gr.Column
    take: gr.HTML
    like_it: gr.Button
    like_note: gr.Markdown


@dataclass(frozen=True)
class ApiInputs:
    """What only the API and MCP reach: a hidden button per endpoint and the inputs the page lacks."""

    generate: gr.Button
    variations: gr.Button
    continue_shot: gr.Button
    film: gr.Button
    continue_video: gr.Video
    shots: gr.Textbox
    takes: gr.Number


@dataclass(frozen=True)
class Page:
    """Every part of the page the wiring reaches."""

    visitor: gr.BrowserState  # this browser's private History id
    tabs: gr.Tabs
    shared: SharedView
    create: CreateTab
    history: HistoryTab
    film: FilmTab
    api: ApiInputs


def header(settings: Settings, model: ModelSpec, owner_price: float) -> None:
    """The title and what the app does, the sign-in button on a Space that has it, the banner."""
    with gr.Row(elem_classes="studio-top"):
        gr.HTML(
            "<div class='studio-header'><h1>SkyReels V1 Studio</h1><p>A still image and a "
            f"prompt become a {model.duration_s:.0f}-second film-style clip, made by "
            f"{model.title} on WaveSpeedAI.</p></div>"
        )
        if settings.sign_in:
            gr.LoginButton(size="sm", scale=0, min_width=180)
    gr.HTML(banner(settings, model, owner_price))


def shared_view() -> SharedView:
    """A shared take's view, hidden until a link opens it (ui_takes.py)."""
    token = gr.State("")
    with gr.Column(visible=False, elem_id="shared-view") as view:
        take = gr.HTML()
        like_it = gr.Button("Make one like it", variant="primary", visible=False)
        like_note = gr.Markdown(elem_classes="action-note", elem_id="like-note")
    return SharedView(token=token, view=view, take=take, like_it=like_it, like_note=like_note)


def api_inputs(model: ModelSpec) -> ApiInputs:
    """API only: /generate takes prompt, image and seed; everything else has a default."""
    generate = gr.Button(visible=False)
    variations = gr.Button(visible=False)
    continue_shot = gr.Button(visible=False)
    film = gr.Button(visible=False)
    continue_video = gr.Video(label="The clip to continue (an MP4)", visible=False)
    # Up to six shots of a prompt's length each, a line each: what /make_film takes, at the door too.
    shots = gr.Textbox(
        label="Shots, one prompt per line", visible=False, lines=6, max_length=MAX_SHOTS * (model.max_prompt_chars + 1)
    )
    # Optional (1 when not given), last: a call with /make_film's first four inputs still works.
    takes = gr.Number(value=1, label="Takes per shot (1 to 4)", visible=False)
    return ApiInputs(generate=generate, variations=variations, continue_shot=continue_shot, film=film,
                     continue_video=continue_video, shots=shots, takes=takes)
