"""The Film tab: a storyboard of shots, each from the last frame of the one before; the shots
appear on a timeline as they are made, then the cut film, and any shot can be made again."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.films import MAX_SHOTS, MIN_SHOTS
from skyreels_demo.web.components import ImageInput
from skyreels_demo.web.status_board import status_line
from skyreels_demo.web.ui_films import FilmHandlers


@dataclass(frozen=True)
class FilmTab:
    """The Film tab's components, as the wiring reaches them."""

    film_id: gr.State
    image: ImageInput
    shot_prompts: list[gr.Textbox]
    shot_seeds: list[gr.Number]
    shot_rows: list[gr.Row]
    price: gr.Markdown
    go: gr.Button
    halt: gr.Button
    status: gr.HTML
    shots: gr.Gallery
    video: gr.Video
    again_shot: gr.Number
    again_seed: gr.Number
    again_go: gr.Button


def film_tab(model: ModelSpec, films: FilmHandlers) -> FilmTab:
    """The Film tab, drawn: the storyboard beside the timeline and the film."""
    with gr.Tab("Film", id="film"):
        film_id = gr.State("")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                image = ImageInput(
                    label="The first shot's picture", sources=["upload", "clipboard"], type="filepath", height=150,
                    elem_id="film-image",
                )
                shot_prompts, shot_seeds, shot_rows = [], [], []
                for number in range(1, MAX_SHOTS + 1):
                    row, prompt, seed = _shot_row(number, model)
                    shot_rows.append(row)
                    shot_prompts.append(prompt)
                    shot_seeds.append(seed)
                price = gr.Markdown(films.price(), elem_id="film-price")
                with gr.Row(equal_height=True):
                    go = gr.Button("Make the film", variant="primary", scale=3)
                    halt = gr.Button("Stop", variant="stop", scale=1)
            with gr.Column(scale=1, min_width=320):
                status = gr.HTML(
                    status_line("Each shot appears here as it is made."), label="Each shot, as it is made",
                    elem_id="film-status",
                )
                shots = gr.Gallery(
                    label="Shots so far", columns=3, height="auto", object_fit="contain",
                    allow_preview=False, elem_id="film-timeline", interactive=False, visible=False,
                )
                video = gr.Video(
                    label="The film", interactive=False, buttons=["download"], elem_id="film-video",
                    autoplay=True, loop=True,
                )
                with gr.Accordion("Make a shot again", open=False):
                    with gr.Row(equal_height=True):
                        again_shot = gr.Number(value=1, label="Shot", precision=0, minimum=1, maximum=MAX_SHOTS)
                        again_seed = gr.Number(value=-2, label="Seed (-2 = the same, -1 = random)", precision=0, minimum=-2, maximum=model.seed_max)
                    again_go = gr.Button("Make this shot again, then the rest")
    return FilmTab(film_id=film_id, image=image, shot_prompts=shot_prompts, shot_seeds=shot_seeds, shot_rows=shot_rows,
                   price=price, go=go, halt=halt, status=status, shots=shots, video=video,
                   again_shot=again_shot, again_seed=again_seed, again_go=again_go)


def _shot_row(number: int, model: ModelSpec) -> tuple[gr.Row, gr.Textbox, gr.Number]:
    """One shot of the storyboard: its prompt and its seed."""
    # Shots past the second appear as the one before is written (ui_films.rows_shown).
    with gr.Row(equal_height=True, visible=number <= MIN_SHOTS) as row:
        prompt = gr.Textbox(
            label=f"Shot {number}", lines=1, max_lines=3,
            max_length=model.max_prompt_chars, scale=4,
            placeholder="What happens in this shot" if number > 1 else "The first shot, from the picture",
        )
        seed = gr.Number(value=-1, label="Seed", precision=0, minimum=-1, maximum=model.seed_max,
                         scale=1, min_width=90)
    return row, prompt, seed
