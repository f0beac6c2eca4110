"""One shot of a film: which take it has, finishing a take sent before, or making a new one.

Each shot is an ordinary run (`Studio.generate`) recorded with the film's id and its place; a
shot made again is one more run at the same place, and the latest counts (`latest_take`). A
shot starts from the film's picture (the first) or from the previous shot's last frame. Apart
from films.py, which takes a film through its shots and records how it ends, so that how one
shot is made can change (several takes of a shot, say) without touching the film's walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

from skyreels_demo import images
from skyreels_demo.errors import StudioError
from skyreels_demo.status import RunStatus
from skyreels_demo.store.records import Film, Run
from skyreels_demo.studio.events import Done, Event
from skyreels_demo.studio.frames import starting_frame
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio


@dataclass(frozen=True)
class FilmUpdate:
    """What a film is doing now: a shot's latest event, a shot's end, or the film's end."""

    film: Film
    shot: int | None = None  # from 0; None for the film as a whole
    event: Event | None = None
    video_path: Path | None = None  # a shot's saved video, or the cut film
    error: StudioError | None = None
    take: int | None = None  # which take of the shot, from 1 (None: the shot as a whole)
    follows_old: bool = False  # the shot follows an old frame: the walk stopped before it

    @property
    def message(self) -> str:
        where = f"Shot {self.shot + 1} of {len(self.film.shots)}: " if self.shot is not None else ""
        if self.take is not None and self.shot is not None and int(self.film.shots[self.shot].get("takes") or 1) > 1:
            where = f"Shot {self.shot + 1} of {len(self.film.shots)}, take {self.take}: "
        if self.error is not None:
            return where + self.error.sentence
        if self.follows_old:
            return where + "follows an old frame: re-make the film from here, or pick back the take it followed."
        if self.event is not None:
            return where + self.event.message
        if self.shot is None and self.video_path is not None:
            return f"The film is cut: {len(self.film.shots)} shots in one video."
        if self.video_path is not None:
            return where + f"saved ({self.video_path})"
        return where + "waiting to start…"


def latest_take(studio: Studio, film_id: str, index: int) -> Run | None:
    """The run made last for a film's shot, if any: the one that counts."""
    tries = [run for run in studio.store.shots_of(film_id) if run.shot == index]
    return tries[-1] if tries else None


def is_made(take: Run | None) -> bool:
    """Whether a shot's take is done, with its video still kept."""
    return take is not None and take.status == RunStatus.DONE and take.has_video


def take_shot(
    studio: Studio,
    film: Film,
    index: int,
    shot: dict,
    request: RunRequest,
    *,
    latest: Run | None,
    before: Run | None,
    start: images.PreparedImage | None = None,
) -> Generator[FilmUpdate, None, tuple[Run, Film]]:
    """The shot's video, from its `latest` take (None: make a new one): a take submitted before
    is finished, never sent twice; one WaveSpeed may have made is not guessed at; anything else
    is made anew from the picture the shot starts on. Returns its run and the film as it is now
    (its first shot keeps the film's starting picture); a `StudioError` when there is no video."""
    if latest is not None and latest.is_unfinished_task:
        # Submitted before (a crash, a closed tab): finish it, never submit it again.
        with studio.watching(latest.id):
            run = studio.finisher.finish(latest, stop=request.stop)
        if run.status != RunStatus.DONE:
            raise StudioError(run.error_message or "This shot did not make a video: make it again.")
        return run, film
    if latest is not None and latest.status == RunStatus.UNCONFIRMED:
        raise StudioError(
            "WaveSpeed may have made this shot; it is not known: check your WaveSpeed history, "
            "then make the shot again if it is not there."
        )
    try:
        run = yield from _new_take(studio, film, index, shot, request, before, start)
    finally:
        if index == 0:
            film = _starting_picture_kept(studio, film)
    return run, film


def _new_take(
    studio: Studio, film: Film, index: int, shot: dict, request: RunRequest, before: Run | None,
    start: images.PreparedImage | None = None,
) -> Generator[FilmUpdate, None, Run]:
    """One shot as an ordinary run; yields its updates, returns its run."""
    if before is None:
        if start is not None:
            image: Any = start
        elif film.image_path and Path(film.image_path).is_file():
            image = film.image_path
        else:
            raise StudioError("The film's starting picture is no longer kept: start the film again.")
        continued = None
    else:
        image, continued = starting_frame(studio, before, before.video_path), before.id
    shot_request = request.but(
        prompt=shot["prompt"],
        seed=shot["seed"],
        image=image,
        fit=film.fit,
        fps_prefix=bool(film.fps_prefix),
        film_id=film.id,
        shot=index,
        continued_from=continued,
        visitor=film.visitor,
    )
    done: Done | None = None
    for event in studio.generate(shot_request):
        yield FilmUpdate(film, index, event=event)
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done.run


def _starting_picture_kept(studio: Studio, film: Film) -> Film:
    """The film names the picture its first shot kept (once uploaded), for shots made again."""
    first = latest_take(studio, film.id, 0)
    if first is None or not first.image_path or first.image_path == film.image_path:
        return film
    if not Path(first.image_path).is_file():
        return film
    return studio.store.update_film(film.id, image_path=first.image_path)
