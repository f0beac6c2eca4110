"""The page's wiring: which handler each button, box and page load calls, with what, into which
components, and in which of Gradio's queues. One function per tab or concern, called in this
order by page.build_page (the order is the events' order in Gradio's config); the layout it
wires is drawn by tabs/ and page_parts.py, the handlers live in ui_*.py."""

from __future__ import annotations

from typing import Any, Protocol

import gradio as gr

from skyreels_demo.config import Settings
from skyreels_demo.web import agents, ui_polish
from skyreels_demo.web.page_input import new_visitor
from skyreels_demo.models import ModelSpec
from skyreels_demo.web.page_parts import Page
from skyreels_demo.web.ui_assist import AssistHandlers
from skyreels_demo.web.ui_films import FilmHandlers
from skyreels_demo.web.ui_history import HistoryHandlers
from skyreels_demo.web.ui_runs import RunHandlers
from skyreels_demo.web.ui_takes import TakeHandlers

class StudioApp(Protocol):
    """What the wiring reaches of the app that builds the page (page.StudioApp): its settings,
    model and handlers. A protocol, so the wiring names nothing of the module that imports it."""

    settings: Settings
    model: ModelSpec
    runs: RunHandlers
    assist: AssistHandlers
    history: HistoryHandlers
    films: FilmHandlers
    takes: TakeHandlers

REFUSALS_AT_ONCE = 20  # runs past a full line, let in to be refused at once with the line's sentence


def line_concurrency(settings: Settings) -> int:
    """Runs let past Gradio's queue into our line: every place the line has, its slots, and room
    for a burst beyond them, which the line refuses at once ("The line is full right now…")
    rather than Gradio holding it in a queue of its own, out of the line's count."""
    return settings.queue_size + settings.max_concurrent_tasks + REFUSALS_AT_ONCE


def run_options(settings: Settings, page: Page) -> dict[str, Any]:
    """Every path that submits shares one queue, "generate", let through as far as our own line
    (line.py), which shows each waiting run its place and holds no thread while it waits."""
    create = page.create
    return dict(
        outputs=[create.status, create.video, create.result_summary],
        concurrency_limit=line_concurrency(settings),
        concurrency_id="generate",
        # The status board is the progress: no timer or "Error" badge drawn over its words.
        show_progress="hidden",
    )


def history_options(app: StudioApp, page: Page) -> dict[str, Any]:
    """History's gallery, found by words and kept (ui_takes.py), as every refresh of it asks."""
    history = page.history
    return dict(
        fn=app.takes.history,
        inputs=[page.visitor, history.find_words, history.kept_only, history.compare_pick],
        outputs=[history.gallery, history.history_ids, history.compare_pick],
        queue=False,
        api_visibility="private",
    )


def wire_picture_and_seed(app: StudioApp, page: Page) -> None:
    """Create's picture as the model will see it, the seed and its Randomize box, and a status
    that never describes a refusal of inputs that have since changed."""
    create, seed_max = page.create, app.model.seed_max
    gr.on(
        triggers=[create.image.change, create.fit.change],
        fn=app.assist.show_prepared,
        inputs=[create.image, create.fit],
        outputs=[create.prepared, create.prep_notes],
        # Queued and few at once: preparing a large picture takes memory and CPU.
        concurrency_limit=2,
        concurrency_id="prepare",
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )
    # Ticked: -1, a new seed every run; unticked: a seed to keep. A seed typed or reused unticks it.
    # Both in the page, with no round trip: a late answer to one click could undo the next (a
    # quick untick and tick left the box unticked on a loaded machine).
    create.randomize.input(
        None, [create.randomize, create.seed], create.seed, queue=False, show_progress="hidden", api_visibility="private",
        js=ui_polish.randomize_js(seed_max),
    )
    create.seed.change(None, create.seed, create.randomize, queue=False, show_progress="hidden",
                       api_visibility="private", js=ui_polish.SEED_IS_RANDOM_JS)
    # The status never describes a refusal of inputs that have since changed.
    gr.on(
        triggers=[create.image.change, create.prompt.change, create.seed.change, create.fit.change],
        fn=None, js=ui_polish.clear_refusal_js(), inputs=[create.status], outputs=[create.status],
        api_visibility="private",
    )


def wire_runs(app: StudioApp, page: Page) -> gr.events.Dependency:
    """/generate, Create's Generate and History's "Run again with a new seed": one run each.
    Returns Generate's event, after which History is refreshed."""
    create, history, options = page.create, page.history, run_options(app.settings, page)
    page_inputs = [create.prompt, create.image, create.seed, create.fps_prefix, create.fit, create.api_key, page.visitor]
    # MCP tools are named after their function (agents.py): the API names stay /generate etc.
    page.api.generate.click(
        agents.tool(app.runs.generate, "generate"),
        inputs=[create.prompt, create.image, create.seed, create.fps_prefix, create.fit, create.api_key],
        api_name="generate",
        **options,
    )
    # A new run replaces the status at once, in the browser, before the server's first answer.
    fresh = dict(fn=None, js=ui_polish.fresh_status_js(), outputs=[create.status], api_visibility="private")
    run_event = create.go.click(**fresh).then(
        app.runs.generate_in_page, inputs=page_inputs, api_visibility="private", **options
    )
    run_event.then(fn=None, js=ui_polish.after_run_js(), api_visibility="private")
    # Nothing picked: the note says so and the chain ends at require_pick (no run, no error shown).
    history.reroll.click(
        app.history.reuse_with_new_seed, [history.chosen, page.visitor],
        [create.prompt, create.image, create.seed, page.tabs, create.status, history.take_note],
        api_visibility="private",
    ).then(fn=None, js=ui_polish.note_in_view_js("take-note"), api_visibility="private").then(
        # Queued: an unqueued event that raises answers HTTP 500.
        app.history.require_pick, [history.chosen, page.visitor], None, show_progress="hidden", api_visibility="private"
    ).success(
        **fresh
    ).then(app.runs.generate_in_page, inputs=page_inputs, api_visibility="private", **options)
    return run_event


def wire_variations(app: StudioApp, page: Page) -> None:
    """/generate_variations and Create's "Make variations"; a variation picked plays above."""
    create = page.create
    variation_options = dict(
        outputs=[create.variations_grid, create.variations_status],
        concurrency_limit=line_concurrency(app.settings),
        concurrency_id="generate",
        show_progress="minimal",
    )
    page.api.variations.click(
        agents.tool(app.runs.generate_variations, "generate_variations"),
        inputs=[create.prompt, create.image, create.count, create.seed, create.fps_prefix, create.fit, create.api_key],
        api_name="generate_variations",
        **variation_options,
    )
    create.vary.click(
        app.runs.generate_variations_in_page,
        inputs=[create.prompt, create.image, create.count, create.seed, create.fps_prefix, create.fit, create.api_key,
                page.visitor],
        js=ui_polish.reveal_js("variations"),
        api_visibility="private",
        **variation_options,
    )
    create.variations_grid.select(
        app.runs.keep_variation, None, [create.video, create.result_summary], queue=False, api_visibility="private"
    )


def wire_assist(app: StudioApp, page: Page) -> None:
    """The prompt writer, the key check, Stop, and an example brought into view."""
    create, assist = page.create, app.assist
    create.suggest.click(
        agents.tool(assist.suggest_prompt, "suggest_prompt"),
        inputs=[create.image, create.idea, create.api_key],
        outputs=[create.prompt],
        api_name="suggest_prompt",
        concurrency_limit=2,
        concurrency_id="suggest",
    ).then(fn=None, js=ui_polish.untagged_prompt_js(), inputs=[create.prompt], outputs=[create.prompt],
           api_visibility="private")
    gr.on(
        triggers=[create.api_key.blur, create.api_key.submit],
        fn=None, js=ui_polish.checking_key_js(), inputs=[create.api_key], outputs=[create.key_check],
        api_visibility="private",
    )
    gr.on(
        triggers=[create.api_key.blur, create.api_key.submit],
        fn=assist.check_key,
        inputs=[create.api_key],
        outputs=[create.key_check, create.price],
        concurrency_limit=2,
        concurrency_id="key-check",
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )
    # On a phone Stop sits far above the status: bring the status (and its "Stopped") into view.
    create.halt.click(app.runs.stop, None, None, js=ui_polish.reveal_js("status"), queue=False, api_visibility="private")
    if create.examples is not None:
        create.examples.load_input_event.then(fn=None, js=ui_polish.reveal_inputs_js(), api_visibility="private")


def wire_history(app: StudioApp, page: Page, run_event: gr.events.Dependency) -> None:
    """History refreshed after a run, on its tab and by Refresh; a take picked, finished with a
    pasted key, or its settings put back in Create."""
    history, create, private = page.history, page.create, dict(api_visibility="private")
    run_event.then(**history_options(app, page))
    gr.on(triggers=[history.tab.select, history.refresh.click], **history_options(app, page))
    # A pick goes through the queue; the take's buttons wait for it to land (their row busy at
    # once in the browser, a press meanwhile held and made once `picked` has answered, whether
    # the pick worked or not), so a quick visitor never shares, downloads or withdraws the take
    # picked before, or none, and no press is lost.
    history.gallery.select(fn=None, js=ui_polish.take_buttons_wait_js(), **private)
    history.gallery.select(
        app.history.pick,
        [history.history_ids, page.visitor],
        [history.past_video, history.past_details, history.chosen, history.finish_box],
        **private,
    ).then(
        app.takes.picked, [history.chosen, page.visitor],
        [*history.take_buttons, history.share_link, history.take_zip, history.take_note],
        queue=False, show_progress="hidden", **private,
    ).then(fn=None, js=ui_polish.take_buttons_ready_js(), **private).then(
        fn=None, js=ui_polish.whole_video_js("history-video"), **private
    )
    history.finish_go.click(
        app.history.finish_with_key,
        [history.chosen, history.finish_key, page.visitor],
        [history.past_video, history.past_details, history.finish_key],
        concurrency_limit=app.settings.max_concurrent_tasks,
        concurrency_id="finish",
        **private,
    )
    history.again.click(
        app.history.reuse, [history.chosen, page.visitor],
        [create.prompt, create.image, create.seed, page.tabs, create.status, history.take_note], **private
    ).then(fn=None, js=ui_polish.reveal_form_js("take-note"), inputs=[history.take_note], **private)


def wire_continue(app: StudioApp, page: Page) -> None:
    """Longer than one take: "Continue this shot" in Create and in History, and /continue_shot.
    Pressed too early, a note beside the button says what to do first; the picture and prompt
    are left as they are."""
    create, history, private = page.create, page.history, dict(api_visibility="private")
    create.continue_go.click(
        app.runs.frame_to_continue, [create.video, create.continue_frame, page.visitor],
        [create.image, create.prompt, create.continue_note],
        concurrency_limit=2, concurrency_id="prepare", show_progress="hidden", **private,
    ).then(fn=None, js=ui_polish.continued_js("continue-note"), inputs=[create.continue_note], **private)
    create.video.change(lambda: "", None, create.continue_note, queue=False, show_progress="hidden", **private)
    history.past_continue.click(
        app.runs.continue_take, [history.chosen, create.continue_frame, page.visitor],
        [create.video, create.image, create.prompt, page.tabs, history.take_note],
        concurrency_limit=2, concurrency_id="prepare", show_progress="hidden", **private,
    ).then(fn=None, js=ui_polish.continued_js("take-note"), inputs=[history.take_note], **private)
    page.api.continue_shot.click(
        agents.tool(app.runs.continue_shot, "continue_shot"),
        inputs=[page.api.continue_video, create.prompt, create.seed, create.fps_prefix, create.fit, create.api_key],
        api_name="continue_shot",
        **run_options(app.settings, page),
    )


def wire_film(app: StudioApp, page: Page) -> None:
    """/make_film and the Film tab: the film made, a shot made again, re-made from a new frame,
    Stop; then its takes picked and the film exported (wire_film_takes), the price as written."""
    film, create, films, private = page.film, page.create, app.films, dict(api_visibility="private")
    film_options = film_queue(app.settings)
    page.api.film.click(
        agents.tool(films.make_film, "make_film"),
        inputs=[create.image, page.api.shots, create.seed, create.api_key, page.api.takes],
        outputs=[film.video, film.status], api_name="make_film", **film_options,
    )
    # The shots as they are made in view (on a phone the status is below the button), then the
    # cut film, whole and playing.
    in_view = dict(js=ui_polish.reveal_js("film-status"), **private, **film_options)
    film.go.click(
        films.make_film_in_page,
        inputs=[film.image, create.fit, create.api_key, page.visitor, film.takes, *film.storyboard],
        outputs=film.shown, **in_view,
    ).then(fn=None, js=ui_polish.film_cut_js(), **private)
    film.again_go.click(
        films.make_shot_again,
        [film.film_id, film.again_shot, film.again_seed, film.again_prompt, create.api_key, page.visitor],
        film.shown, **in_view,
    ).then(fn=None, js=ui_polish.film_cut_js(), **private)
    film.remake_go.click(
        films.remake, [film.film_id, create.api_key, page.visitor], film.shown, **in_view,
    ).then(fn=None, js=ui_polish.film_cut_js(), **private)
    film.halt.click(app.runs.stop, None, None, queue=False, **private)
    quick = dict(queue=False, show_progress="hidden", **private)
    # One event draws the storyboard as it is written (its price, its rows, how each shot
    # starts): three on the same boxes' change made a film's page fire them over and over.
    gr.on(
        triggers=[film.takes.change, *(box.change for box in film.shot_prompts)], fn=films.storyboard_drawn,
        inputs=[film.takes, *film.shot_prompts], outputs=film.drawn, **quick,
    )
    for shot in film.shot_rows:
        if shot.start is not None and shot.picture is not None:
            # A cut to a picture of its own asks for the picture, beside the shot.
            shot.start.change(own_picture_shown, shot.start, shot.picture, **quick)


def own_picture_shown(start: str) -> dict:
    return gr.update(visible=start == "own")


def film_queue(settings: Settings) -> dict[str, Any]:
    """A queue of its own: Gradio gives events of one concurrency id the lowest limit among
    them, and the films' would otherwise hold every run's to the task cap, before our line.
    The timeline is the progress, and a place in Gradio's queue is said there (ui_polish.py):
    no timer or spinner drawn over either."""
    return dict(concurrency_limit=settings.max_concurrent_tasks, concurrency_id="film", show_progress="hidden")


def wire_film_takes(app: StudioApp, page: Page) -> None:
    """A made film: another take picked (nothing sent; the film cut again, or the shots after
    it marked), and its zip for an editor, downloaded in one click."""
    film, films, private = page.film, app.films, dict(api_visibility="private")
    film.pick_go.click(
        films.pick_take, [film.film_id, film.pick_shot, film.pick_take, page.visitor], film.shown,
        concurrency_limit=2, concurrency_id="film-pick", show_progress="hidden", **private,
    ).then(fn=None, js=ui_polish.reveal_js("film-status"), **private)
    film.shots.select(films.take_chosen, None, [film.pick_shot, film.pick_take], queue=False, show_progress="hidden",
                      **private)
    film.export_go.click(
        films.export, [film.film_id, page.visitor], [film.export_file],
        concurrency_limit=2, concurrency_id="takes", **private,
    ).then(fn=None, js=ui_polish.download_zip_js("film-export-file"), **private)


def wire_takes(app: StudioApp, page: Page) -> None:
    """Takes: find, keep, share, download, compare, make again, the shared view (ui_takes.py)."""
    history, create, takes, private = page.history, page.create, app.takes, dict(api_visibility="private")
    # A search sent while the last one is still on its way runs after it (Gradio's default drops
    # it): a quick visitor's second search is the one the gallery shows.
    gr.on(triggers=[history.find_words.submit, history.kept_only.change], trigger_mode="always_last",
          **history_options(app, page))
    # Every answer is said in the note under the buttons (an unqueued event's gr.Info would
    # reach only the server's log), and none leaves an error over an input.
    said = dict(fn=None, js=ui_polish.note_in_view_js("take-note"), **private)
    picked = [history.chosen, page.visitor]
    history.keep.click(takes.keep, [*picked, history.find_words, history.kept_only, history.compare_pick],
                       [history.keep, history.gallery, history.history_ids, history.compare_pick, history.take_note],
                       queue=False, **private).then(**said)
    history.share.click(takes.share, picked, [history.share_link, history.take_note], queue=False, **private).then(**said)
    history.withdraw.click(takes.withdraw, picked, [history.share_link, history.take_note], queue=False,
                           **private).then(**said)
    history.download.click(takes.download, picked, [history.take_zip, history.take_note], concurrency_limit=2,
                           concurrency_id="takes", **private).then(**said).then(
        fn=None, js=ui_polish.download_zip_js(), **private)
    history.compare_go.click(takes.compare, [history.compare_pick, page.visitor], [history.compare_view], queue=False,
                             **private).then(fn=None, js=ui_polish.reveal_said_js("compare"), **private)
    gr.on(triggers=[create.vary.click], fn=lambda: (gr.update(visible=True), ""),
          outputs=[create.compare_variations, create.variations_note], queue=False, **private)
    create.compare_variations.click(
        takes.compare_variations, [create.variations_grid, page.visitor],
        [history.compare_view, page.tabs, create.variations_note], queue=False, **private,
    ).then(fn=None, js=ui_polish.reveal_said_js("compare"), **private).then(
        fn=None, js=ui_polish.note_in_view_js("variations-note"), **private
    )
    # Create filled from a take: the form brought into view, and the status says what to do next.
    create_fields = [create.prompt, create.image, create.seed, create.fit, create.fps_prefix, page.tabs, create.status]
    history.make_again.click(takes.make_again, [history.take_file], [*create_fields, history.zip_note],
                             concurrency_limit=2, concurrency_id="takes", **private).then(
        fn=None, js=ui_polish.reveal_form_js("zip-note"), inputs=[history.zip_note], **private
    )
    shared = page.shared
    shared.like_it.click(takes.make_one_like_it, [shared.token], [*create_fields, shared.like_note], queue=False,
                         **private).then(
        fn=None, js=ui_polish.reveal_form_js("like-note"), inputs=[shared.like_note], **private
    )


def wire_page_load(app: StudioApp, page: Page, demo: gr.Blocks) -> None:
    """As the page opens: a shared take's view, this browser's History id, what to expect, the price."""
    shared, private = page.shared, dict(api_visibility="private")
    demo.load(app.takes.open_shared, None, [shared.view, shared.take, shared.token, shared.like_it], queue=False,
              **private)
    demo.load(new_visitor, [page.visitor], [page.visitor], queue=False, **private)
    # A line of text filled in as the page opens: never dimmed by a loading state meanwhile.
    demo.load(app.assist.expectations, None, page.create.expectations, queue=False, show_progress="hidden", **private)
    # The price as WaveSpeed answers it now (kept, asked again now and then: pricing.py).
    demo.load(app.assist.price_now, None, page.create.price, queue=False, show_progress="hidden", **private)
