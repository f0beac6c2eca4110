"""The Film tab: a storyboard of shots, each from the last frame of the one before or a cut to a
picture, with 1 to 4 takes each; the takes appear side by side as they are made, one picked a
shot, then the cut film, ready for an editor; any take can be picked, any shot made again."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.film_takes import MAX_TAKES, MIN_TAKES, Start
from skyreels_demo.studio.films import MAX_SHOTS, MIN_SHOTS
from skyreels_demo.web.components import ImageInput
from skyreels_demo.web.status_board import status_line
from skyreels_demo.web.ui_films import FilmHandlers

# How a shot after the first starts, in the storyboard's words.
START_CHOICES = [
    ("Continues", str(Start.CONTINUOUS)),
    ("Cut: first picture", str(Start.FIRST)),
    ("Cut: own picture", str(Start.OWN)),
]


@dataclass(frozen=True)
class ShotRow:
    """One shot of the storyboard: shown once the shot before is written."""

    row: gr.Column
    prompt: gr.Textbox
    seed: gr.Number
    start: gr.Dropdown | None  # None for the first shot: it starts on the film's picture
    picture: gr.Image | None  # its own picture, shown when it cuts to one


@dataclass(frozen=True)
class FilmTab:
    """The Film tab's components, as the wiring reaches them."""

    film_id: gr.State
    image: ImageInput
    takes: gr.Radio
    shot_rows: list[ShotRow]
    price: gr.Markdown
    go: gr.Button
    halt: gr.Button
    status: gr.HTML
    shots: gr.Gallery
    video: gr.Video
    export_go: gr.Button
    export_file: gr.File
    after: gr.Row  # a made film's takes: pick one
    pick_shot: gr.Number
    pick_take: gr.Number
    pick_go: gr.Button
    remake_go: gr.Button
    again_shot: gr.Number
    again_seed: gr.Number
    again_prompt: gr.Textbox
    again_go: gr.Button

    @property
    def shot_prompts(self) -> list[gr.Textbox]:
        return [shot.prompt for shot in self.shot_rows]

    @property
    def shown(self) -> list[gr.components.Component]:
        """What a film's handlers draw, in film_board.FilmView.for_page's order."""
        return [self.video, self.status, self.shots, self.film_id, self.after, self.remake_go, self.export_go,
                self.export_file]

    @property
    def drawn(self) -> list[gr.components.Component]:
        """What the storyboard's own event draws, in FilmHandlers.storyboard_drawn's order."""
        return [self.price, *(shot.row for shot in self.shot_rows[MIN_SHOTS:]),
                *(shot.start for shot in self.shot_rows[1:])]

    @property
    def storyboard(self) -> list[gr.components.Component]:
        """Every shot's inputs in the order FilmHandlers.make_film_in_page reads them."""
        return [
            *self.shot_prompts,
            *(shot.seed for shot in self.shot_rows),
            *(shot.start for shot in self.shot_rows if shot.start is not None),
            *(shot.picture for shot in self.shot_rows if shot.picture is not None),
        ]


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
                shot_rows = [_shot_row(number, model) for number in range(1, MAX_SHOTS + 1)]
                price = gr.Markdown(films.price(), elem_id="film-price")
                with gr.Row(equal_height=True):
                    go = gr.Button("Make the film", variant="primary", scale=3)
                    halt = gr.Button("Stop", variant="stop", scale=1)
                # Under the button, so that it stays on a phone's first screen; the price above
                # says shots × takes as soon as it is chosen. Each take has its own seed (the
                # shot's, then the ones after it); one is picked a shot.
                takes = gr.Radio(
                    choices=list(range(MIN_TAKES, MAX_TAKES + 1)), value=MIN_TAKES, label="Takes per shot",
                    elem_id="film-takes",
                )
            with gr.Column(scale=1, min_width=320):
                status = gr.HTML(
                    status_line("Each shot appears here as it is made."), label="Each shot, as it is made",
                    elem_id="film-status",
                )
                # Beside what it re-makes and its price (said in the status just above).
                remake_go = gr.Button("Re-make from here", variant="primary", visible=False, elem_id="film-remake")
                shots = gr.Gallery(
                    label="Each shot's takes", columns=3, height="auto", object_fit="contain",
                    allow_preview=False, elem_id="film-timeline", interactive=False, visible=False,
                )
                with gr.Row(equal_height=True, visible=False, elem_id="film-pick") as after:
                    pick_shot = gr.Number(value=1, label="Shot", precision=0, minimum=1, maximum=MAX_SHOTS, min_width=80)
                    pick_take = gr.Number(value=1, label="Take", precision=0, minimum=MIN_TAKES, maximum=MAX_TAKES,
                                          min_width=80)
                    # Wide enough for its words on one line; on a phone it wraps under the boxes.
                    pick_go = gr.Button("Pick this take", min_width=170)
                video = gr.Video(
                    label="The film", interactive=False, buttons=["download"], elem_id="film-video",
                    autoplay=True, loop=True,
                )
                export_go = gr.Button("Export for an editor", visible=False, elem_id="film-export")
                export_file = gr.File(label="The film for an editor (zip)", visible=False, interactive=False,
                                      elem_id="film-export-file")
                again = _make_again(model)
    return FilmTab(film_id=film_id, image=image, takes=takes, shot_rows=shot_rows, price=price, go=go, halt=halt,
                   status=status, shots=shots, video=video, export_go=export_go, export_file=export_file,
                   after=after, pick_shot=pick_shot, pick_take=pick_take, pick_go=pick_go, remake_go=remake_go,
                   **again)


def _make_again(model: ModelSpec) -> dict[str, gr.components.Component]:
    """One shot made again with a new seed or prompt: its takes anew; the shots after it are
    then marked as following an old frame, not re-made until asked."""
    with gr.Accordion("Make a shot again", open=False):
        with gr.Row(equal_height=True):
            again_shot = gr.Number(value=1, label="Shot", precision=0, minimum=1, maximum=MAX_SHOTS, min_width=80)
            again_seed = gr.Number(value=-2, label="Seed (-2 = the same, -1 = random)", precision=0, minimum=-2,
                                   maximum=model.seed_max, min_width=160)
        again_prompt = gr.Textbox(label="New prompt (empty: the same)", lines=1, max_lines=3,
                                  max_length=model.max_prompt_chars)
        again_go = gr.Button("Make this shot again (the shots after it are marked, not re-made)")
    return dict(again_shot=again_shot, again_seed=again_seed, again_prompt=again_prompt, again_go=again_go)


def _shot_row(number: int, model: ModelSpec) -> ShotRow:
    """One shot of the storyboard: its prompt, its seed, and (after the first) how it starts."""
    # Shots past the second appear as the one before is written (ui_films.rows_shown).
    with gr.Column(visible=number <= MIN_SHOTS, elem_classes="film-shot") as row:
        with gr.Row(equal_height=True):
            prompt = gr.Textbox(
                label=f"Shot {number}", lines=1, max_lines=3,
                max_length=model.max_prompt_chars, scale=4, min_width=180,
                placeholder="What happens in this shot" if number > 1 else "The first shot, from the picture",
            )
            seed = gr.Number(value=-1, label="Seed", precision=0, minimum=-1, maximum=model.seed_max,
                             scale=1, min_width=90)
            # Shown once the shot is written (ui_films.starts_shown): a phone's first screen keeps
            # the two shots and the button.
            start = None if number == 1 else gr.Dropdown(
                choices=START_CHOICES, value=str(Start.CONTINUOUS), label=f"Shot {number} starts",
                scale=2, min_width=120, visible=False,
            )
        picture = None if number == 1 else ImageInput(
            label=f"Shot {number}'s own picture", sources=["upload", "clipboard"], type="filepath", height=110,
            visible=False,
        )
    return ShotRow(row=row, prompt=prompt, seed=seed, start=start, picture=picture)
