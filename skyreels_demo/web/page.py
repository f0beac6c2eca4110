"""The Gradio app: layout first, then wiring; handlers only render `Studio` events.

No HTTP here. A visitor's own key lives only in this process's memory for the length of a run:
never in the page's config, Gradio's session state (KeyBox), the browser (run history is off),
the run store or a log line.
Who a visitor is for caps is decided here from what the server sees (a signed-in account, else
the client's address: visitors.py), never from a value the page sends; the page's private id
only groups a browser's History.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import GradioRootModel
from pydantic import model_serializer

from skyreels_demo import images
from skyreels_demo.web import agents
from skyreels_demo.images import remote as remote_images
from skyreels_demo.studio.account import BalanceWatch
from skyreels_demo.config import Settings, refused_public_url
from skyreels_demo.models import SKYREELS_V1, ModelSpec
from skyreels_demo.web.page_input import new_visitor
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.prompts import MAX_IDEA_CHARS
from skyreels_demo.web.status_board import KEY_PAGE, PRUNED_PICTURE, banner, idle_status, status_line
from skyreels_demo.studio.studio import Studio
from skyreels_demo.web.theme import studio_theme
from skyreels_demo.web import ui_polish
from skyreels_demo.web.ui_polish import SeedInput
from skyreels_demo.web.ui_assist import AssistHandlers
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.studio.films import MAX_SHOTS, MIN_SHOTS
from skyreels_demo.web.ui_films import FilmHandlers
from skyreels_demo.web.ui_history import HistoryHandlers
from skyreels_demo.web.ui_runs import RunHandlers
from skyreels_demo.web.ui_takes import COMPARE_JS, KEEP, TakeHandlers, share_routes
from skyreels_demo.web.share_card import card_routes
from skyreels_demo.studio.variations import MAX_VARIATIONS, MIN_VARIATIONS
from skyreels_demo.studio.visitors import LOCAL, Requester, identify
from skyreels_demo.studio.keys import MAX_KEY_CHARS, install_key_mask
from skyreels_demo.studio.watching import few_memory_arenas
from skyreels_demo.web.connections import ConnectionLimits
from skyreels_demo.web.server import Server, build_server_app, ready_note
from skyreels_demo.studio.hub import WebhookHub

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
CSS_PATH = Path(__file__).with_name("ui.css")
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


class ImageInput(gr.Image):
    """An image box whose handler gets the uploaded file as it is.

    gr.Image would open (and sometimes convert) the file itself and answer a broken one with its
    own technical message; here `images.prepare` decides what is a picture, and says why not.

    An API or MCP client may name the picture by its web address instead. Gradio would download
    that itself before `preprocess` (Blocks.preprocess_data -> processing_utils.
    async_move_files_to_cache -> this block's async_move_resource_to_block_cache ->
    async_ssrf_protected_download), with no size cap, before any cap is checked and on the pool
    the server and Gradio share; so the address is kept as it is there, and handed to the
    handler as a `remote_images.ImageAddress`, which the studio fetches by our rules only once
    the run's caps have let it go (Studio.fetch_admitted), on a small pool of its own.
    """

    is_template = True  # drawn by gr.Image's own front end

    async def async_move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if images.is_remote_url(url_or_file_path):
            return str(url_or_file_path)  # not downloaded by Gradio: the studio fetches it, admitted
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if images.is_remote_url(url_or_file_path):
            return str(url_or_file_path)  # an example's address: the browser shows it
        return super().move_resource_to_block_cache(url_or_file_path)

    def preprocess(self, payload):
        if payload is not None and images.is_remote_url(payload.path):
            return remote_images.ImageAddress(payload.path)  # nothing fetched here
        if payload is None or (payload.url and payload.url.startswith("data:")):
            return super().preprocess(payload)
        return str(payload.path)


class _KeyPayload(GradioRootModel):
    """What a key box sends: the handler gets it (`root`); what Gradio keeps of it is nothing."""

    root: Any = None

    @model_serializer
    def _kept(self) -> None:
        return None

    def __repr__(self) -> str:
        return "_KeyPayload(hidden)"

    __str__ = __repr__


class KeyBox(gr.Textbox):
    """A password box for a WaveSpeed key that Gradio's session state never keeps.

    Gradio keeps the last value of every input of every event in the page's session
    (Blocks.preprocess_data -> SessionState._update_value_in_config, until the session is
    evicted, never when a page closes): a pasted key sat there after its run, once per event that
    took it. Gradio keeps what the box's `data_model` dumps, and hands `preprocess` the model
    itself: this box's model dumps to nothing, so the handler gets the key and the session keeps
    None. Its API, its page and its limits are a gr.Textbox's.
    """

    is_template = True  # drawn by gr.Textbox's own front end
    data_model = _KeyPayload

    def preprocess(self, payload: Any) -> str | None:
        value = payload.root if isinstance(payload, _KeyPayload) else payload
        return value if isinstance(value, str) else None


class StudioApp:
    """One app process: the studio of one video model, its page's handlers, and the Blocks."""

    def __init__(
        self,
        settings: Settings | None = None,
        studio: Studio | None = None,
        webhooks: WebhookHub | None = None,
        model: ModelSpec = SKYREELS_V1,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.model = studio.model if studio is not None else model
        self.preview = OfflinePreview(self.settings, self.model)
        self.studio = studio or Studio(self.settings, self.model, start_preview=self.preview, webhooks=webhooks)
        served = list(self.settings.served_dirs)
        for folder in served:
            folder.mkdir(parents=True, exist_ok=True)
        # Gradio serves videos, images, films, continue frames and take zips from where they are
        # kept: one copy each, never a copy per render. Only these folders (names unguessable)
        # are served, not the run store; and the one picture History shows for a run whose files
        # were pruned.
        gr.set_static_paths([*served, PRUNED_PICTURE])
        context = PageContext(self.settings, self.studio, self.requester)
        self.runs = RunHandlers(context)
        self.assist = AssistHandlers(context)
        self.history = HistoryHandlers(context)
        self.films = FilmHandlers(context)
        self.takes = TakeHandlers(context)
        self.share_routes = share_routes(context)  # /takes/<token>, served beside the page
        self.card_routes = card_routes(context)  # the page's link cards, a take's poster (share_card.py)

    def requester(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Requester:
        """Who is asking, as the server decides it (visitors.py); never what a client sends."""
        if not self.settings.shared:
            return Requester(LOCAL)
        client = getattr(request, "client", None)
        return identify(
            username=getattr(profile, "username", None) if profile is not None else None,
            peer=getattr(client, "host", None),
            headers=dict(request.headers) if request is not None and request.headers is not None else {},
            proxy_hops=self.settings.proxy_hops,
        )

    def build(self) -> gr.Blocks:
        return build_page(self)


def build_page(app: StudioApp) -> gr.Blocks:
    """The page: layout first, top to bottom as it is drawn, then the wiring."""
    settings, model = app.settings, app.model
    runs, assist, history, film, takes = app.runs, app.assist, app.history, app.films, app.takes
    seed_max = model.seed_max
    sign_in = settings.sign_in
    with gr.Blocks(
        title="SkyReels V1 Studio",
        analytics_enabled=False,
        # Uploads and other files Gradio keeps for a page go after an hour, checked every 10 min.
        delete_cache=(600, 3600),
    ) as demo:
        visitor = gr.BrowserState(None, storage_key="skyreels-visitor", secret=browser_secret(settings))
        with gr.Row(elem_classes="studio-top"):
            gr.HTML(
                "<div class='studio-header'><h1>SkyReels V1 Studio</h1><p>A still image and a "
                f"prompt become a {model.duration_s:.0f}-second film-style clip, made by "
                f"{model.title} on WaveSpeedAI.</p></div>"
            )
            if sign_in:
                gr.LoginButton(size="sm", scale=0, min_width=180)
        gr.HTML(banner(settings, model, app.studio.prices.owner(model)))  # asked of WaveSpeed at start-up
        # -- a shared take, opened by its link (?take=<token>): read-only (ui_takes.py) --
        shared_token = gr.State("")
        with gr.Column(visible=False, elem_id="shared-view") as shared_view:
            shared_take = gr.HTML()
            like_it = gr.Button("Make one like it", variant="primary", visible=False)
            like_note = gr.Markdown(elem_classes="action-note", elem_id="like-note")
        with gr.Tabs() as tabs:
            with gr.Tab("Create", id="create"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=320):
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
                        with gr.Row(equal_height=True):
                            seed = SeedInput(
                                value=-1,
                                label="Seed (-1 = random)",
                                precision=0,
                                minimum=-1,
                                maximum=seed_max,
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
                    with gr.Column(scale=1, min_width=320):
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
                        continue_go = gr.Button("Continue this shot", size="sm", elem_id="continue-shot")
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
            with gr.Tab("History", id="history") as history_tab:
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
                            again = gr.Button("Use these settings", **small)
                            reroll = gr.Button("Run again with a new seed", **small)
                            past_continue = gr.Button("Continue this shot", **small)
                            keep = gr.Button(KEEP, **small)
                            download = gr.Button("Download this take", **small)
                            share = gr.Button("Share this take", **small)
                            withdraw = gr.Button("Withdraw the link", **small)
                        take_buttons = [keep, download, share, withdraw, again, reroll, past_continue]  # Keep first: ui_takes
                        take_note = gr.Markdown(elem_id="take-note", elem_classes="action-note")
                        share_link = gr.Textbox(
                            label="Link to this take", interactive=False, buttons=["copy"], elem_id="share-link", visible=False
                        )
                        take_zip = gr.File(label="This take, as a zip", visible=False, interactive=False, elem_id="take-zip")
                # -- takes side by side, and a take made again from its zip (ui_takes.py) --
                with gr.Row(equal_height=True, elem_id="compare-row"):
                    compare_pick = gr.CheckboxGroup(label="Compare… (choose 2 to 4 takes)", choices=[], scale=4)
                    compare_go = gr.Button("Compare", size="sm", scale=0, min_width=110, elem_id="compare-go")
                compare_view = gr.HTML(elem_id="compare", js_on_load=COMPARE_JS)
                with gr.Accordion("Make it again from a downloaded take", open=False):
                    take_file = gr.File(label="A take's .zip", file_types=[".zip"], type="filepath")
                    make_again = gr.Button("Make it again")
                    zip_note = gr.Markdown(elem_classes="action-note", elem_id="zip-note")
            # --- the Film tab: a storyboard of shots, each from the last frame of the one before ---
            with gr.Tab("Film", id="film"):
                film_id = gr.State("")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=320):
                        film_image = ImageInput(
                            label="The first shot's picture", sources=["upload", "clipboard"], type="filepath", height=150,
                            elem_id="film-image",
                        )
                        shot_prompts, shot_seeds, shot_rows = [], [], []

                        def shot_row(number: int) -> None:
                            # Shots past the second appear as the one before is written (ui_films.rows_shown).
                            with gr.Row(equal_height=True, visible=number <= MIN_SHOTS) as row:
                                shot_rows.append(row)
                                shot_prompts.append(
                                    gr.Textbox(
                                        label=f"Shot {number}", lines=1, max_lines=3,
                                        max_length=model.max_prompt_chars, scale=4,
                                        placeholder="What happens in this shot" if number > 1 else "The first shot, from the picture",
                                    )
                                )
                                shot_seeds.append(
                                    gr.Number(value=-1, label="Seed", precision=0, minimum=-1, maximum=seed_max,
                                              scale=1, min_width=90)
                                )

                        for number in range(1, MAX_SHOTS + 1):
                            shot_row(number)
                        film_price_line = gr.Markdown(film.price(), elem_id="film-price")
                        with gr.Row(equal_height=True):
                            film_go = gr.Button("Make the film", variant="primary", scale=3)
                            film_halt = gr.Button("Stop", variant="stop", scale=1)
                    with gr.Column(scale=1, min_width=320):
                        film_status = gr.HTML(
                            status_line("Each shot appears here as it is made."), label="Each shot, as it is made",
                            elem_id="film-status",
                        )
                        film_shots = gr.Gallery(
                            label="Shots so far", columns=3, height="auto", object_fit="contain",
                            allow_preview=False, elem_id="film-timeline", interactive=False, visible=False,
                        )
                        film_video = gr.Video(
                            label="The film", interactive=False, buttons=["download"], elem_id="film-video",
                            autoplay=True, loop=True,
                        )
                        with gr.Accordion("Make a shot again", open=False):
                            with gr.Row(equal_height=True):
                                again_shot = gr.Number(value=1, label="Shot", precision=0, minimum=1, maximum=MAX_SHOTS)
                                again_seed = gr.Number(value=-2, label="Seed (-2 = the same, -1 = random)", precision=0, minimum=-2, maximum=seed_max)
                            again_go = gr.Button("Make this shot again, then the rest")
        # API only: /generate takes prompt, image and seed; everything else has a default.
        api_generate = gr.Button(visible=False)
        api_variations = gr.Button(visible=False)
        api_continue = gr.Button(visible=False)
        api_film = gr.Button(visible=False)
        api_continue_video = gr.Video(label="The clip to continue (an MP4)", visible=False)
        # Up to six shots of a prompt's length each, a line each: what /make_film takes, at the door too.
        api_shots = gr.Textbox(
            label="Shots, one prompt per line", visible=False, lines=6, max_length=MAX_SHOTS * (model.max_prompt_chars + 1)
        )

        # wiring
        gr.on(
            triggers=[image.change, fit.change],
            fn=assist.show_prepared,
            inputs=[image, fit],
            outputs=[prepared, prep_notes],
            # Queued and few at once: preparing a large picture takes memory and CPU.
            concurrency_limit=2,
            concurrency_id="prepare",
            trigger_mode="always_last",
            show_progress="hidden",
            api_visibility="private",
        )
        # Ticked: -1, a new seed every run; unticked: a seed to keep. A seed typed or reused unticks it.
        randomize.input(
            lambda checked, value: ui_polish.randomized(checked, value, seed_max),
            [randomize, seed], seed, queue=False, show_progress="hidden", api_visibility="private",
        )
        seed.change(lambda value: value == -1, seed, randomize, queue=False, show_progress="hidden", api_visibility="private")
        # The status never describes a refusal of inputs that have since changed.
        gr.on(
            triggers=[image.change, prompt.change, seed.change, fit.change],
            fn=None, js=ui_polish.clear_refusal_js(), inputs=[status], outputs=[status], api_visibility="private",
        )
        # Every path that submits shares one queue, "generate", let through as far as our own line
        # (line.py), which shows each waiting run its place and holds no thread while it waits.
        run_options = dict(
            outputs=[status, video, result_summary],
            concurrency_limit=line_concurrency(settings),
            concurrency_id="generate",
            # The status board is the progress: no timer or "Error" badge drawn over its words.
            show_progress="hidden",
        )
        page_inputs = [prompt, image, seed, fps_prefix, fit, api_key, visitor]
        # MCP tools are named after their function (agents.py): the API names stay /generate etc.
        api_generate.click(
            agents.tool(runs.generate, "generate"),
            inputs=[prompt, image, seed, fps_prefix, fit, api_key],
            api_name="generate",
            **run_options,
        )
        # A new run replaces the status at once, in the browser, before the server's first answer.
        fresh = dict(fn=None, js=ui_polish.fresh_status_js(), outputs=[status], api_visibility="private")
        run_event = go.click(**fresh).then(
            runs.generate_in_page, inputs=page_inputs, api_visibility="private", **run_options
        )
        run_event.then(fn=None, js=ui_polish.after_run_js(), api_visibility="private")
        # Nothing picked: the note says so and the chain ends at require_pick (no run, no error shown).
        reroll.click(
            history.reuse_with_new_seed, [chosen, visitor], [prompt, image, seed, tabs, status, take_note],
            api_visibility="private",
        ).then(fn=None, js=ui_polish.note_in_view_js("take-note"), api_visibility="private").then(
            # Queued: an unqueued event that raises answers HTTP 500.
            history.require_pick, [chosen, visitor], None, show_progress="hidden", api_visibility="private"
        ).success(
            **fresh
        ).then(runs.generate_in_page, inputs=page_inputs, api_visibility="private", **run_options)
        variation_options = dict(
            outputs=[variations_grid, variations_status],
            concurrency_limit=line_concurrency(settings),
            concurrency_id="generate",
            show_progress="minimal",
        )
        api_variations.click(
            agents.tool(runs.generate_variations, "generate_variations"),
            inputs=[prompt, image, count, seed, fps_prefix, fit, api_key],
            api_name="generate_variations",
            **variation_options,
        )
        vary.click(
            runs.generate_variations_in_page,
            inputs=[prompt, image, count, seed, fps_prefix, fit, api_key, visitor],
            js=ui_polish.reveal_js("variations"),
            api_visibility="private",
            **variation_options,
        )
        variations_grid.select(
            runs.keep_variation, None, [video, result_summary], queue=False, api_visibility="private"
        )
        suggest.click(
            agents.tool(assist.suggest_prompt, "suggest_prompt"),
            inputs=[image, idea, api_key],
            outputs=[prompt],
            api_name="suggest_prompt",
            concurrency_limit=2,
            concurrency_id="suggest",
        ).then(fn=None, js=ui_polish.untagged_prompt_js(), inputs=[prompt], outputs=[prompt], api_visibility="private")
        gr.on(
            triggers=[api_key.blur, api_key.submit],
            fn=None, js=ui_polish.checking_key_js(), inputs=[api_key], outputs=[key_check], api_visibility="private",
        )
        gr.on(
            triggers=[api_key.blur, api_key.submit],
            fn=assist.check_key,
            inputs=[api_key],
            outputs=[key_check, price],
            concurrency_limit=2,
            concurrency_id="key-check",
            trigger_mode="always_last",
            show_progress="hidden",
            api_visibility="private",
        )
        # On a phone Stop sits far above the status: bring the status (and its "Stopped") into view.
        halt.click(runs.stop, None, None, js=ui_polish.reveal_js("status"), queue=False, api_visibility="private")
        if examples is not None:
            examples.load_input_event.then(fn=None, js=ui_polish.reveal_inputs_js(), api_visibility="private")
        history_options = dict(
            fn=takes.history,  # History's gallery, found by words and kept (ui_takes.py)
            inputs=[visitor, find_words, kept_only, compare_pick],
            outputs=[gallery, history_ids, compare_pick],
            queue=False,
            api_visibility="private",
        )
        run_event.then(**history_options)
        gr.on(triggers=[history_tab.select, refresh.click], **history_options)
        # A pick goes through the queue; the take's buttons wait for it to land (disabled at once in
        # the browser, enabled again once `picked` has answered, whether the pick worked or not),
        # so a quick visitor never shares, downloads or withdraws the take picked before, or none.
        gallery.select(fn=None, js=ui_polish.take_buttons_wait_js(), api_visibility="private")
        gallery.select(
            history.pick,
            [history_ids, visitor],
            [past_video, past_details, chosen, finish_box],
            api_visibility="private",
        ).then(
            takes.picked, [chosen, visitor], [*take_buttons, share_link, take_zip, take_note],
            queue=False, show_progress="hidden", api_visibility="private",
        ).then(fn=None, js=ui_polish.take_buttons_ready_js(), api_visibility="private").then(
            fn=None, js=ui_polish.whole_video_js("history-video"), api_visibility="private"
        )
        finish_go.click(
            history.finish_with_key,
            [chosen, finish_key, visitor],
            [past_video, past_details, finish_key],
            concurrency_limit=settings.max_concurrent_tasks,
            concurrency_id="finish",
            api_visibility="private",
        )
        again.click(
            history.reuse, [chosen, visitor], [prompt, image, seed, tabs, status, take_note], api_visibility="private"
        ).then(fn=None, js=ui_polish.reveal_form_js("take-note"), inputs=[take_note], api_visibility="private")
        # Longer than one take: continue a shot, and films. Pressed too early, a note beside the
        # button says what to do first; the picture and prompt are left as they are.
        continue_go.click(
            runs.frame_to_continue, [video, continue_frame, visitor], [image, prompt, continue_note],
            api_visibility="private", concurrency_limit=2, concurrency_id="prepare", show_progress="hidden",
        ).then(fn=None, js=ui_polish.continued_js("continue-note"), inputs=[continue_note], api_visibility="private")
        video.change(lambda: "", None, continue_note, queue=False, show_progress="hidden", api_visibility="private")
        past_continue.click(
            runs.continue_take, [chosen, continue_frame, visitor], [video, image, prompt, tabs, take_note],
            api_visibility="private", concurrency_limit=2, concurrency_id="prepare", show_progress="hidden",
        ).then(fn=None, js=ui_polish.continued_js("take-note"), inputs=[take_note], api_visibility="private")
        api_continue.click(
            agents.tool(runs.continue_shot, "continue_shot"),
            inputs=[api_continue_video, prompt, seed, fps_prefix, fit, api_key],
            api_name="continue_shot",
            **run_options,
        )
        # A queue of its own: Gradio gives events of one concurrency id the lowest limit among
        # them, and the films' would otherwise hold every run's to the task cap, before our line.
        # The timeline is the progress, and a place in Gradio's queue is said there (ui_polish.py):
        # no timer or spinner drawn over either.
        film_options = dict(concurrency_limit=settings.max_concurrent_tasks, concurrency_id="film", show_progress="hidden")
        api_film.click(
            agents.tool(film.make_film, "make_film"), inputs=[image, api_shots, seed, api_key], outputs=[film_video, film_status],
            api_name="make_film", **film_options,
        )
        # The shots as they are made in view (on a phone the status is below the button), then the
        # cut film, whole and playing.
        film_go.click(
            film.make_film_in_page,
            inputs=[film_image, fit, api_key, visitor, *shot_prompts, *shot_seeds],
            outputs=[film_video, film_status, film_shots, film_id],
            js=ui_polish.reveal_js("film-status"),
            api_visibility="private",
            **film_options,
        ).then(fn=None, js=ui_polish.film_cut_js(), api_visibility="private")
        again_go.click(
            film.make_shot_again, [film_id, again_shot, again_seed, api_key, visitor],
            [film_video, film_status, film_shots, film_id], js=ui_polish.reveal_js("film-status"),
            api_visibility="private", **film_options,
        ).then(fn=None, js=ui_polish.film_cut_js(), api_visibility="private")
        film_halt.click(runs.stop, None, None, queue=False, api_visibility="private")
        gr.on(
            triggers=[box.change for box in shot_prompts], fn=film.price, inputs=shot_prompts,
            outputs=film_price_line, queue=False, api_visibility="private", show_progress="hidden",
        )
        gr.on(
            triggers=[box.change for box in shot_prompts], fn=film.rows_shown, inputs=shot_prompts,
            outputs=shot_rows[MIN_SHOTS:], queue=False, api_visibility="private", show_progress="hidden",
        )
        # -- takes: find, keep, share, download, compare, make again, the shared view (ui_takes.py) --
        private = dict(api_visibility="private")
        gr.on(triggers=[find_words.submit, kept_only.change], **history_options)
        # Every answer is said in the note under the buttons (an unqueued event's gr.Info would
        # reach only the server's log), and none leaves an error over an input.
        said = dict(fn=None, js=ui_polish.note_in_view_js("take-note"), **private)
        keep.click(takes.keep, [chosen, visitor, find_words, kept_only, compare_pick],
                   [keep, gallery, history_ids, compare_pick, take_note], queue=False, **private).then(**said)
        share.click(takes.share, [chosen, visitor], [share_link, take_note], queue=False, **private).then(**said)
        withdraw.click(takes.withdraw, [chosen, visitor], [share_link, take_note], queue=False, **private).then(**said)
        download.click(takes.download, [chosen, visitor], [take_zip, take_note], concurrency_limit=2,
                       concurrency_id="takes", **private).then(**said).then(fn=None, js=ui_polish.download_zip_js(), **private)
        compare_go.click(takes.compare, [compare_pick, visitor], [compare_view], queue=False, **private).then(
            fn=None, js=ui_polish.reveal_said_js("compare"), **private
        )
        gr.on(triggers=[vary.click], fn=lambda: (gr.update(visible=True), ""), outputs=[compare_variations, variations_note],
              queue=False, **private)
        compare_variations.click(takes.compare_variations, [variations_grid, visitor], [compare_view, tabs, variations_note],
                                 queue=False, **private).then(fn=None, js=ui_polish.reveal_said_js("compare"), **private).then(
            fn=None, js=ui_polish.note_in_view_js("variations-note"), **private
        )
        # Create filled from a take: the form brought into view, and the status says what to do next.
        create_fields = [prompt, image, seed, fit, fps_prefix, tabs, status]
        make_again.click(takes.make_again, [take_file], [*create_fields, zip_note], concurrency_limit=2,
                         concurrency_id="takes", **private).then(
            fn=None, js=ui_polish.reveal_form_js("zip-note"), inputs=[zip_note], **private
        )
        like_it.click(takes.make_one_like_it, [shared_token], [*create_fields, like_note], queue=False, **private).then(
            fn=None, js=ui_polish.reveal_form_js("like-note"), inputs=[like_note], **private
        )
        demo.load(takes.open_shared, None, [shared_view, shared_take, shared_token, like_it], queue=False, **private)
        demo.load(new_visitor, [visitor], [visitor], queue=False, api_visibility="private")
        # A line of text filled in as the page opens: never dimmed by a loading state meanwhile.
        demo.load(assist.expectations, None, expectations, queue=False, api_visibility="private", show_progress="hidden")
        # The price as WaveSpeed answers it now (kept, asked again now and then: pricing.py).
        demo.load(assist.price_now, None, price, queue=False, api_visibility="private", show_progress="hidden")
    # api_open=False: every call goes through the queue and its limits, never around them (/run).
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrent_tasks, api_open=False)
    return demo


def browser_secret(settings: Settings) -> str:
    """The key that encrypts each browser's History id: made once, kept in the data directory,
    so History survives a restart (Gradio would pick a new random one every start)."""
    path = settings.browser_secret_path
    try:
        return path.read_text(encoding="utf-8").strip() or _write_secret(path)
    except FileNotFoundError:
        return _write_secret(path)


def _write_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()  # another process made it first
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(value)
    return value


def mount_options(settings: Settings, run_s: float = 60.0) -> dict[str, Any]:
    """How Gradio is mounted: no run history in the browser, no SSR, our theme, CSS and scripts
    (`run_s`: what a run usually takes, for a place in Gradio's own queue: ui_polish.py)."""
    return dict(
        run_history=False,
        ssr_mode=False,
        footer_links=["api"],
        theme=studio_theme(),
        css=CSS_PATH.read_text(encoding="utf-8"),
        head=ui_polish.ACCESSIBLE_MARKUP_HEAD
        + ui_polish.queue_place_head(run_s, settings.max_concurrent_tasks, settings.queue_size, settings.submits_per_minute),
        # Our handlers raise gr.Error with a sentence; anything else must not show its raw text.
        show_error=False,
        # Refused at the door: no upload larger than the app would prepare.
        max_file_size=images.MAX_BYTES,
        # Videos and images are served in place from these (gr.Video also asks for permission).
        allowed_paths=[*(str(folder) for folder in settings.served_dirs), str(PRUNED_PICTURE)],
    )


REFUSALS_AT_ONCE = 20  # runs past a full line, let in to be refused at once with the line's sentence


def line_concurrency(settings: Settings) -> int:
    """Runs let past Gradio's queue into our line: every place the line has, its slots, and room
    for a burst beyond them, which the line refuses at once ("The line is full right now…")
    rather than Gradio holding it in a queue of its own, out of the line's count."""
    return settings.queue_size + settings.max_concurrent_tasks + REFUSALS_AT_ONCE


def events_at_once(blocks: gr.Blocks, default_limit: int) -> int:
    """Gradio's cap on events in progress at once (its queue's max_thread_count, named for
    threads though a run waiting in our line holds none): every concurrency group's own limit,
    so that no event waits in Gradio's queue while its own group has room."""
    groups: dict[str, int] = {}
    for fn in blocks.fns.values():
        if not fn.queue:
            continue
        limit = default_limit if fn.concurrency_limit == "default" else fn.concurrency_limit
        limit = QUICK_EVENT_THREADS if limit is None else limit
        groups[fn.concurrency_id] = min(groups.get(fn.concurrency_id, limit), limit)
    return sum(groups.values())


QUICK_EVENT_THREADS = 4  # uploads, previews, History, files: steps of milliseconds


def worker_threads(settings: Settings) -> int:
    """The worker threads the server and Gradio share (server.py): uploads, files and Gradio's
    sync handlers. Runs and films take theirs elsewhere (line.py: a few for a crowd arriving,
    one per run past its turn), and one waiting in line holds none. What may hold one of these
    for long is capped at the task cap (History's "Finish with my key") or at 2 (a key check, a
    prompt suggestion, a frame to continue from): room for the finishes, as many again for those
    others, and a few quick events, so that a crowd's burst of uploads cannot grow the pool to
    anyio's default 40. At worst, quick events wait their turn behind a key
    check or a suggestion (seconds); none of them waits on another."""
    return 2 * settings.max_concurrent_tasks + QUICK_EVENT_THREADS


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    few_memory_arenas()  # before any worker thread starts: a waiting crowd stays small (line.py)
    install_key_mask()
    settings = Settings.from_env()
    refused = refused_public_url()
    if refused:
        log.warning(refused)  # runs poll instead: settings.public_url is None
    hub = WebhookHub(public_url=settings.public_url)
    app = StudioApp(settings, webhooks=hub, model=SKYREELS_V1)
    closed = app.studio.store.close_abandoned()
    if closed:
        log.info("closed %d runs that a previous process left before their submit", closed)
    app.studio.keep_within_budget()  # the first call prunes at once
    app.studio.start_follower()  # finish runs left over from before a restart
    # The owner hears (in the log) when credit runs low, counted in videos at WaveSpeed's price.
    BalanceWatch(app.settings, app.model, price=lambda: app.studio.prices.owner(app.model)).start()
    blocks = app.build()
    # Gradio's own 40 means "the serving loop's shared limiter" (Blocks.create_limiter), so its
    # steps and the server's (uploads, files) share the one pool build_server_app sizes.
    blocks.max_threads = 40
    blocks._queue.max_thread_count = events_at_once(blocks, settings.max_concurrent_tasks)
    served, gate = build_server_app(
        blocks, settings, hub, mount_options(settings, app.studio.slot_s()), routes=[app.share_routes, app.card_routes], threads=worker_threads(settings)
    )
    server = Server(
        served, gate, blocks, on_tick=app.studio.keep_within_budget, connections=ConnectionLimits.from_settings(settings),
        note=ready_note(settings, SKYREELS_V1.title, SKYREELS_V1.price_usd),
    ).start()
    # WaveSpeed's webhooks arrive at the same server; the offline preview's over loopback.
    hub.local_url = server.url.rstrip("/")
    server.wait()
