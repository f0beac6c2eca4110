"""A film as the Film tab shows it: a line a shot (how it starts, each take and the pick, which
shots follow an old frame and what re-making them costs) and every shot's takes side by side,
read from the film's records and the live updates of the takes being made.

Separate from ui_films.py (the handlers) because this only reads and words: nothing here sends,
picks or cuts, so a pick, a make and a re-make all draw the film the same way.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Mapping

import gradio as gr

from skyreels_demo.errors import Stopped
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import Film
from skyreels_demo.studio.film_shots import FilmUpdate
from skyreels_demo.studio.film_takes import ShotState, Start, film_state, is_made, stale_from
from skyreels_demo.studio.films import plans_of, remake_price
from skyreels_demo.studio.studio import Studio
from skyreels_demo.web.status_board import event_words, status_line, status_lines

_FILM_WORDS = {
    FilmStatus.MAKING: "being made, a shot at a time",
    FilmStatus.DONE: "cut",
    FilmStatus.FAILED: "a shot did not come out",
    FilmStatus.STOPPED: "stopped",
    FilmStatus.CHANGED: "changed: a shot follows an old frame",
}
# Live updates of the takes being made, by (shot from 0, take from 1; 0: the shot as a whole).
Live = Mapping[tuple[int, int], FilmUpdate]


@dataclass(frozen=True)
class FilmView:
    """What the page shows of a film now."""

    status: str  # the timeline in words (HTML)
    video: str | None = None  # the cut film, once there is one
    takes: list[tuple[str, str]] = field(default_factory=list)  # (a take's video, its caption)
    columns: int = 3
    film_id: str = ""
    changed: bool = False  # a shot follows an old frame: "Re-make from here" is offered
    cut: bool = False  # every pick is cut into the film: the export is offered

    def for_page(self) -> tuple[Any, ...]:
        """The Film tab's outputs, in FilmTab.shown's order."""
        return (
            self.video,
            self.status,
            gr.update(value=self.takes, visible=bool(self.takes), columns=self.columns),
            self.film_id,
            gr.update(visible=bool(self.film_id)),
            gr.update(visible=self.changed),
            gr.update(visible=self.cut),
            gr.update(value=None, visible=False),  # an export made before is of another state
        )


def checking() -> FilmView:
    return FilmView(status_line("Checking the storyboard…"))


def view_of(studio: Studio, film: Film, live: Live | None = None, latest: FilmUpdate | None = None) -> FilmView:
    """The film as its records have it now, with the takes still being made as `live` says."""
    live = live or {}
    states = film_state(plans_of(film), studio.store.shots_of(film.id), studio.model)
    takes = max((state.plan.takes for state in states), default=1)
    count = f"{len(states)} shots" + (f" × {takes} takes" if takes > 1 else "")
    words = _FILM_WORDS.get(film.status, str(film.status))
    lines = [f"<strong>Your film</strong> · {count} · {html.escape(words)}"]
    lines += [_shot_line(state, live, state.plan.seeds(studio.model)) for state in states]
    stale = stale_from(states)
    cut = film.status == FilmStatus.DONE and film.has_film
    if stale is not None:
        _videos, price = remake_price(studio, film, stale)
        lines.append(
            f"<strong>Shot {stale + 1} follows an old frame</strong>, and so may the shots after it. "
            f"Re-make from here: {html.escape(price)} Or pick back the take it followed."
        )
    elif cut:
        lines.append("<strong>The film is cut:</strong> every shot in one video, below.")
    elif latest is not None and latest.error is not None and not isinstance(latest.error, Stopped) and latest.shot is not None:
        lines.append(f"Make shot {latest.shot + 1} again (same or new seed) below; the shots before it are kept.")
    return FilmView(
        status=status_lines(lines),
        video=film.film_path if cut else None,
        takes=_gallery(states),
        columns=takes if takes > 1 else 3,
        film_id=film.id,
        changed=stale is not None,
        cut=cut,
    )


def _start_words(state: ShotState) -> str:
    if state.index == 0:
        return "from the picture"
    return {
        Start.CONTINUOUS: f"continues from shot {state.index}",
        Start.FIRST: "cut to the first picture",
        Start.OWN: "cut to its own picture",
    }[state.plan.start]


def _shot_line(state: ShotState, live: Live, seeds: list[int]) -> str:
    """One shot: its mark, how it starts, its seed(s), its prompt, and each take's state."""
    plan, number = state.plan, state.index + 1
    whole = live.get((state.index, 0))
    parts = [_take_words(state, take, live) for take in range(1, plan.takes + 1)]
    making = any((state.index, take) in live for take in range(1, plan.takes + 1))
    if state.stale:
        mark, words = "⚠", "follows an old frame"
    elif whole is not None and whole.error is not None:
        mark, words = "✕", html.escape(whole.error.sentence)
    elif is_made(state.picked) and not state.missing:
        mark, words = "✓", "made" if plan.takes == 1 else "; ".join(parts)
    elif making or is_made(state.picked):
        mark, words = "●", "; ".join(parts)
    else:
        mark, words = "○", "waiting for the shot before" if state.index else "waiting to start"
    seed = f"seed {plan.seed}" if plan.takes == 1 else "seeds " + ", ".join(str(s) for s in seeds)
    prompt = plan.prompt if len(plan.prompt) <= 60 else plan.prompt[:59] + "…"
    return (f"{mark} <strong>Shot {number}</strong> · {_start_words(state)} · {seed} · "
            f"{html.escape(prompt)} — {words}")


def _take_words(state: ShotState, take: int, live: Live) -> str:
    run = state.takes[take - 1] if take <= len(state.takes) else None
    name = f"take {take}" if state.plan.takes > 1 else "the take"
    if is_made(run):
        picked = state.picked is not None and run is not None and run.id == state.picked.id
        return f"{name} ✓" + (" ★ picked" if picked else "")
    update = live.get((state.index, take))
    if update is None:
        return f"{name}: waiting"
    if update.error is not None:
        return f"{name}: ✕ {html.escape(update.error.sentence)}"
    return f"{name}: {event_words(update.event, 'starting…')}"


def _gallery(states: list[ShotState]) -> list[tuple[str, str]]:
    """Every made take, shot by shot in take order (a row a shot when the columns are the takes)."""
    shown = []
    for state in states:
        number = state.index + 1
        for take, run in enumerate(state.takes, start=1):
            if is_made(run):
                picked = state.picked is not None and run.id == state.picked.id
                shown.append((run.video_path, f"Shot {number} · take {take} · seed {run.seed}" + (" ★ picked" if picked else "")))
        if state.picked is not None and state.take_number is None and is_made(state.picked):
            shown.append((state.picked.video_path, f"Shot {number} · seed {state.picked.seed} ★ picked · follows an old frame"))
    return shown
