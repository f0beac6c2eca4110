"""History: a browser's own runs (everyone's, on a laptop), picked, reused, or finished with
the key a restart forgot."""

from __future__ import annotations

import random
from pathlib import Path

import gradio as gr

from skyreels_demo.errors import StudioError
from skyreels_demo.studio.keys import in_use
from skyreels_demo.web.page_input import own_run, text, visitor_id
from skyreels_demo.store.records import Run
from skyreels_demo.web.status_board import caption, details, picture_of, shown, status_line
from skyreels_demo.web.ui_context import PageContext
from skyreels_demo.web.ui_notes import NEW_SEED, USE_THESE, note, pick_a_take

HISTORY_SIZE = 40


class HistoryHandlers:
    """History's handlers: a browser's own runs, picked, reused, or finished with a pasted key."""

    def __init__(self, context: PageContext) -> None:
        self.settings = context.settings
        self.studio = context.studio
        self.model = context.studio.model

    def history(self, visitor: str | None, request: gr.Request):
        runs = [run for run in self.visible_runs(visitor) if shown(run)]
        items = [(picture_of(run), caption(run, self.model)) for run in runs]
        return items, [run.id for run in runs]

    def pick(self, run_ids: list[str], visitor: str | None, request: gr.Request, evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else -1
        run = self._own(run_ids[index], visitor) if isinstance(run_ids, list) and 0 <= index < len(run_ids) else None
        if run is None:
            return None, "", "", gr.update(visible=False)
        video = run.video_path if run.has_video else None
        needs_key = run.is_unfinished_task and self.studio.access.client_for_run(run) is None
        return video, details(run, self.studio.store.statuses(run.id), self.model), run.id, gr.update(visible=needs_key)

    def finish_with_key(self, run_id: str, api_key: str | None, visitor: str | None, request: gr.Request):
        """Finish a visitor's own-key run that a restart cut off, with the key pasted again."""
        run = self._own(run_id, visitor)
        if run is None:
            raise gr.Error("Pick a run in the history first.", print_exception=False)
        if not run.is_unfinished_task:
            return (run.video_path if run.has_video else None), details(run, self.studio.store.statuses(run.id), self.model), ""
        try:
            with in_use(text(api_key)):  # masked in the log while used, then forgotten (keys.py)
                client = self.studio.access.client_with_key(run, text(api_key))
                try:
                    run = self.studio.finisher.finish(run, client=client)
                finally:
                    client.close()  # the key is forgotten with it
        except StudioError as exc:
            raise gr.Error(exc.sentence, print_exception=False) from None
        return (run.video_path if run.has_video else None), details(run, self.studio.store.statuses(run.id), self.model), ""

    def reuse(self, run_id: str, visitor: str | None, request: gr.Request, new_seed: bool = False):
        """"Use these settings": Create holds the picked take's prompt, picture and seed.

        (prompt, image, seed, tabs, status, note): with nothing picked, Create is left alone and
        the note beside History's buttons says what to do first."""
        run = self._own(run_id, visitor)
        if run is None:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), note(pick_a_take(NEW_SEED if new_seed else USE_THESE))
        image = run.image_path if run.image_path and Path(run.image_path).exists() else None
        seed = random.randint(0, self.model.seed_max) if new_seed else run.seed
        said = gr.update() if new_seed else status_line(
            "Create holds the take's prompt, picture and seed: press Generate to make it again, or change something first."
        )
        return self.model.without_prefix(run.prompt), image, seed, gr.Tabs(selected="create"), said, ""

    def reuse_with_new_seed(self, run_id: str, visitor: str | None, request: gr.Request):
        return self.reuse(run_id, visitor, request, new_seed=True)

    def require_pick(self, run_id: str, visitor: str | None, request: gr.Request) -> None:
        """Ends a chain of events (its next step runs on success) when nothing is picked; the
        note already says why, so the error is shown nowhere and has no outputs to mark."""
        if self._own(run_id, visitor) is None:
            raise gr.Error(pick_a_take(NEW_SEED), visible=False, print_exception=False)

    def visible_runs(self, visitor: str | None, *, words: str = "", kept: bool = False) -> list[Run]:
        """This browser's runs (everyone's, on a laptop), newest first; `words` and `kept` as
        `RunStore.recent` takes them (History's search and its kept-only switch, ui_takes.py)."""
        found = dict(model=self.model.name, limit=HISTORY_SIZE, words=words, kept=kept)
        if not self.settings.shared:
            # Locally, one person sees everything.
            return self.studio.store.recent(**found)
        visitor = visitor_id(visitor)
        if not visitor:
            return []
        return self.studio.store.recent(visitor=visitor, **found)

    def _own(self, run_id: object, visitor: str | None) -> Run | None:
        return own_run(self.studio.store, self.settings.shared, run_id, visitor)
