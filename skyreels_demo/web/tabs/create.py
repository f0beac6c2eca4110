"""The Create tab: a picture and a prompt on the left (with the seed, framing, variations and an
own key folded away), the run's status, video and its continuation on the right."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from skyreels_demo.config import Settings
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.keys import MAX_KEY_CHARS
from skyreels_demo.studio.prompts import MAX_IDEA_CHARS
from skyreels_demo.studio.variations import MAX_VARIATIONS, MIN_VARIATIONS
from skyreels_demo.web import agents
from skyreels_demo.web.components import ImageInput, KeyBox
from skyreels_demo.web.status_board import KEY_PAGE, idle_status
from skyreels_demo.web.ui_assist import AssistHandlers
from skyreels_demo.web.ui_notes import CONTINUE
from skyreels_demo.web.ui_polish import SeedInput

ASSETS = Path(__file__).resolve().parents[3] / "assets"
EXAMPLES = [
    (
        "astronaut.png",
        "An astronaut in a white flight suit smiles warmly at the camera, then turns her head "
        "slightly as the flag behind her stirs; soft studio light, film look.",
    ),
    (
        "chelsea.png",
        "A tabby cat slowly blinks, twitches its ears and turns to look past the camera; warm "
        "afternoon light, shallow depth of field.",
    ),
    (
        "coffee.png",
        "Steam curls up from a cup of coffee on a saucer as a hand reaches in to lift it; "
        "the camera pushes in slowly, cosy cafe light.",
    ),
]
PLACEHOLDER = (
    "Describe who is in the picture and how they move, e.g. "
    "\"A woman in a red coat turns to the camera and smiles as snow falls around her.\""
)


@dataclass(frozen=True)
class CreateTab:
    """Create's components, as the wiring reaches them."""

    # the form
    image: ImageInput
    prep_notes: gr.Markdown
    prompt: gr.Textbox
    go: gr.Button
    halt: gr.Button
    price: gr.Markdown
    examples: gr.Examples
    idea: gr.Textbox
    suggest: gr.Button
    seed: SeedInput
    randomize: gr.Checkbox
    fit: gr.Radio
    fps_prefix: gr.Checkbox
    prepared: gr.Image
    count: agents.VariationCount
    vary: gr.Button
    api_key: KeyBox
    key_check: gr.Markdown
    # the result
    status: gr.HTML
    video: gr.Video
    result_summary: gr.Markdown
    continue_go: gr.Button
    continue_note: gr.Markdown
    continue_frame: gr.Number
    expectations: gr.Markdown
    variations_grid: gr.Gallery
    variations_status: gr.HTML
    compare_variations: gr.Button
    variations_note: gr.Markdown


def create_tab(settings: Settings, model: ModelSpec, assist: AssistHandlers) -> CreateTab:
    """The Create tab, drawn: the form beside the result."""
    with gr.Tab("Create", id="create"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                form = {**_picture_and_prompt(model, assist), **_seed_and_options(model), **_own_key(settings)}
            with gr.Column(scale=1, min_width=320):
                result = _result(model)
    return CreateTab(**form, **result)


def _picture_and_prompt(model: ModelSpec, assist: AssistHandlers) -> dict[str, Any]:
    """The picture, the prompt, Generate and Stop, the price, the examples and the prompt writer."""
    image = ImageInput(
        label="Image",
        sources=["upload", "clipboard", "webcam"],
        type="filepath",
        height=210,
        elem_id="input-image",
    )
    prep_notes = gr.Markdown(elem_classes="prep-notes")
    prompt = gr.Textbox(
        label="Prompt", lines=3, max_lines=8, placeholder=PLACEHOLDER,
        max_length=model.max_prompt_chars, elem_id="prompt",
    )
    with gr.Row(equal_height=True):
        go = gr.Button("Generate", variant="primary", scale=3)
        halt = gr.Button("Stop", variant="stop", scale=1, min_width=90)  # beside Generate, even on a phone
    price = gr.Markdown(assist.price_now(), elem_classes="prep-notes", elem_id="price")
    # On the first screen, under Generate: a stranger's quickest start.
    examples = gr.Examples(
        examples=[[str(ASSETS / name), text] for name, text in EXAMPLES if (ASSETS / name).exists()],
        inputs=[image, prompt],
        label="Examples (click one, then Generate)",
        cache_examples=False,
    )
    with gr.Row(equal_height=True):
        idea = gr.Textbox(
            label="Optional idea for the prompt writer",  # its accessible name
            show_label=False,
            container=False,
            placeholder='Optional idea: "she laughs", "slow dolly in"',
            max_length=MAX_IDEA_CHARS,
            scale=3,
        )
        suggest = gr.Button("Write a prompt from my image", size="sm", scale=2)
    return dict(image=image, prep_notes=prep_notes, prompt=prompt, go=go, halt=halt, price=price,
                examples=examples, idea=idea, suggest=suggest)


def _seed_and_options(model: ModelSpec) -> dict[str, Any]:
    """The seed and its Randomize box, then framing and several seeds at once, folded away."""
    with gr.Row(equal_height=True):
        seed = SeedInput(
            value=-1,
            label="Seed (-1 = random)",
            precision=0,
            minimum=-1,
            maximum=model.seed_max,
            scale=3,
            min_width=120,  # room for "Randomize seed" beside it on a phone
        )
        randomize = gr.Checkbox(
            value=True, label="Randomize seed", scale=1, min_width=150, container=False, elem_id="randomize-seed"
        )
    with gr.Accordion("Framing and prompt options", open=False):
        fit = gr.Radio(
            choices=[("Crop to the frame", "crop"), ("Fit the whole picture", "pad")],
            value="crop",
            label="Framing",
        )
        fps_prefix = gr.Checkbox(
            value=True,
            label=f'Start the prompt with "{model.prompt_prefix}" (recommended by SkyReels)',
        )
        prepared = gr.Image(
            label="What the model will see", interactive=False, height=200
        )
    with gr.Accordion("Several seeds at once", open=False):
        with gr.Row(equal_height=True):
            count = agents.VariationCount(
                choices=list(range(MIN_VARIATIONS, MAX_VARIATIONS + 1)),
                value=3,
                label="Variations",
                scale=2,
            )
            vary = gr.Button("Make variations", scale=1)
    return dict(seed=seed, randomize=randomize, fit=fit, fps_prefix=fps_prefix, prepared=prepared, count=count, vary=vary)


def _own_key(settings: Settings) -> dict[str, Any]:
    """A visitor's own WaveSpeed key, folded away (optional when the app has a key of its own)."""
    with gr.Accordion(
        "Your own WaveSpeed key" + (" (optional)" if settings.has_key else ""),
        open=False,
    ):
        api_key = KeyBox(
            label="WaveSpeed API key",
            type="password",
            max_length=MAX_KEY_CHARS,  # refused at the door beyond this
            placeholder="Used for your runs only; never stored or shown.",
            info=f"Get one at {KEY_PAGE}. A key you paste here has no cap.",
        )
        key_check = gr.Markdown(elem_id="key-check")
    return dict(api_key=api_key, key_check=key_check)


def _result(model: ModelSpec) -> dict[str, Any]:
    """The status, the video and its summary, Continue this shot, and the variations' grid."""
    status = gr.HTML(idle_status(), label="Status", elem_id="status")
    video = gr.Video(
        label="Video",
        autoplay=True,
        loop=True,
        buttons=["download"],
        interactive=False,
        elem_id="result-video",
    )
    result_summary = gr.Markdown(label="Summary: seed, task id and timings", elem_id="summary")
    continue_go = gr.Button(CONTINUE, size="sm", elem_id="continue-shot")
    continue_note = gr.Markdown(elem_id="continue-note", elem_classes="action-note")
    with gr.Accordion("Continue from another frame", open=False):
        continue_frame = gr.Number(
            value=-1,
            label=f"Frame to continue from (0 to {max(model.frame_count - 1, 0)}; -1 = the last)",
            precision=0,
            minimum=-1,
            maximum=max(model.frame_count - 1, 0),
        )
    expectations = gr.Markdown(elem_classes="prep-notes")
    variations_grid = gr.Gallery(
        label="Variations (pick one to play it above)",
        columns=2,
        height="auto",
        object_fit="contain",
        allow_preview=False,
        elem_id="variations",
        visible=False,
        interactive=False,  # the app's videos, to pick from: no upload area
    )
    variations_status = gr.HTML(label="How each variation went", elem_id="variations-status")
    compare_variations = gr.Button("Compare these side by side", size="sm", visible=False)
    variations_note = gr.Markdown(elem_classes="action-note", elem_id="variations-note")
    return dict(status=status, video=video, result_summary=result_summary, continue_go=continue_go,
                continue_note=continue_note, continue_frame=continue_frame, expectations=expectations,
                variations_grid=variations_grid, variations_status=variations_status,
                compare_variations=compare_variations, variations_note=variations_note)
