"""A run's progress as agents and API clients hear it: `gr.Progress` updates from the run's
progress (studio/progress.py), several runs (variations, a film's shots) summed into one line,
and a queued call's status updates put back into words for MCP.

Separate from the MCP server's class (gradio_compat/mcp.py) and the tool names (agents.py):
this is what a handler reports as it goes, which gradio_client's status updates carry too.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from skyreels_demo.status import Stage
from skyreels_demo.studio.progress import Progress, progress_of

log = logging.getLogger(__name__)


class StageReport:
    """Tells a `gr.Progress` each stage of a run, once per change of words, never going back."""

    def __init__(self, progress: gr.Progress | None, prefix: str = "") -> None:
        self.progress = progress
        self.prefix = prefix
        self._last: tuple[float, str] | None = None

    def __call__(self, now: Progress | None) -> None:
        if now is None or self.progress is None:
            return
        fraction = max(now.fraction, self._last[0] if self._last else 0.0)
        text = self.prefix + now.text
        if self._last is not None and self._last[1] == text:
            return
        self._last = (fraction, text)
        try:
            self.progress(fraction, desc=text)
        except Exception:  # a report must never end a run
            log.debug("a progress report failed", exc_info=True)


def variations_stage(updates: dict[int, Any], count: int) -> Progress:
    """One line for several variations at once: how many are done, and the busiest one's stage."""
    finished = sum(1 for update in updates.values() if update.finished)
    fractions = []
    for number in range(1, count + 1):
        update = updates.get(number)
        if update is None:
            fractions.append(0.0)
        elif update.finished:
            fractions.append(1.0)
        else:
            now = progress_of(update.event) if update.event is not None else None
            fractions.append(now.fraction if now else 0.0)
    live = [u for u in updates.values() if not u.finished and u.event is not None]
    now = progress_of(live[0].event) if live else None
    tail = f"; variation {live[0].number}: {now.text}" if now is not None else ""
    stage = now.stage if now is not None else (Stage.DONE if finished == count else Stage.PREPARE)
    return Progress(stage, sum(fractions) / max(1, count), f"{finished} of {count} variations finished{tail}")


def film_stage(update: Any) -> Progress | None:
    """One line for a film (films.FilmUpdate): the shot and its stage, with the film's share done.

    Each shot is one part of the film and the cut half of one, so a 3-shot film is at 2/7 when
    its second shot starts and at 6/7 while it is cut."""
    film = update.film
    shots = max(1, len(film.shots))
    total = shots + 0.5
    if update.shot is None:
        if update.video_path is not None:
            return Progress(Stage.DONE, 1.0, f"The film is cut: {shots} shots in one video")
        return None
    where = f"Shot {update.shot + 1} of {shots}"
    if update.error is not None:
        return Progress(Stage.PREPARE, update.shot / total, f"{where}: {update.error.sentence}")
    if update.video_path is not None:
        done = update.shot + 1
        if done == shots:
            return Progress(Stage.DONE, shots / total, f"{where} saved; cutting the film: {shots} shots into one video")
        return Progress(Stage.DONE, done / total, f"{where} saved")
    now = progress_of(update.event) if update.event is not None else None
    if now is None:
        return None
    return Progress(now.stage, (update.shot + min(now.fraction, 0.99)) / total, f"{where}: {now.text}")


def progress_words(update: Any) -> str | None:
    """An update of a queued call in words: the stage the app reported, or the queue place."""
    from gradio_client.utils import Status

    if update.code in (Status.JOINING_QUEUE, Status.STARTING):
        return "Joined the app's queue"
    if update.code is Status.IN_QUEUE:
        place = (update.rank or 0) + 1
        words = f"Waiting in the app's queue: place {place} of {max(place, update.queue_size or 0)}"
        if update.eta is not None:
            words += f", about {max(1, round(update.eta))} s"
        return words
    if update.code is Status.PROGRESS:
        for unit in update.progress_data or []:
            if unit.desc:
                return str(unit.desc)
    return None  # "Processing" on every yield says nothing


def progress_fraction(update: Any) -> float | None:
    for unit in getattr(update, "progress_data", None) or []:
        if isinstance(unit.progress, (int, float)):
            return float(unit.progress)
    return None
