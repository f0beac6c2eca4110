"""A shot's takes made at once: each missing take is its own run (film_shots.take_shot), on a
thread of its own, all from the same starting picture; their updates arrive as they happen.

A take already made is kept; one submitted before is finished, never sent twice; a failed one
is made again. One take failing ends only that take: the shot goes on with the others. The
person's stop ends every take's wait (tasks already sent still finish and are saved to
History); so does a listener leaving.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace
from typing import Any, Iterator

from skyreels_demo.errors import StudioError
from skyreels_demo.store.records import Film, Run
from skyreels_demo.studio.film_shots import FilmUpdate, take_shot
from skyreels_demo.studio.film_takes import ShotState, is_made
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on our side with this take: make it again, and report it if it keeps happening."


def make_takes(
    studio: Studio,
    film: Film,
    state: ShotState,
    request: RunRequest,
    picture: Any,
    outcome: dict[int, Run | StudioError],
) -> Iterator[FilmUpdate]:
    """Make `state`'s missing takes from `picture` (None: the film's own first picture), yielding
    each take's updates; `outcome` ends up with each take's run or the error that ended it."""
    seeds = state.plan.seeds(studio.model)
    todo = []
    for number, (seed, take) in enumerate(zip(seeds, state.takes), start=1):
        if is_made(take):
            outcome[number] = take
        else:
            todo.append((number, seed, take))
    if not todo:
        return
    updates: queue.Queue[FilmUpdate | int] = queue.Queue()
    halt = request.stop if request.stop is not None else threading.Event()
    request = request.but(stop=halt)

    def run(number: int, seed: int, latest: Run | None) -> None:
        shot = {"prompt": state.plan.prompt, "seed": seed}
        try:
            steps = take_shot(studio, film, state.index, shot, request, latest=latest, before=state.source, start=picture)
            while True:
                try:
                    update = next(steps)
                except StopIteration as end:
                    outcome[number] = end.value[0]
                    return
                updates.put(replace(update, take=number))
        except StudioError as exc:
            outcome[number] = exc
        except Exception:  # one take's surprise must not end the others
            log.exception("take %d of shot %d of film %s failed unexpectedly", number, state.index + 1, film.id)
            outcome[number] = StudioError(UNEXPECTED)
        finally:
            updates.put(number)

    workers = [
        threading.Thread(target=run, args=job, name=f"film-{film.id[-6:]}-shot{state.index + 1}-take{job[0]}", daemon=True)
        for job in todo
    ]
    running = len(workers)
    try:
        for worker in workers:
            worker.start()
        while running:
            update = updates.get()
            if isinstance(update, int):
                running -= 1
            else:
                yield update
    finally:
        if running:
            halt.set()  # nobody is listening: stop waiting; paid tasks are finished unseen
