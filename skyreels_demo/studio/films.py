"""Films: shots made in turn, each from the last frame of the one before, and cut into one.

A film is a record of its own (store/films.py) naming 2 to 6 shots in order; each shot is an
ordinary run whose image is the previous shot's last frame (film_shots.py). When every shot is
done the film is cut into one video (cut.py). Here: the film's plan (its shots checked, its
price, room in the caps for all of it), its walk through the shots, and its record's status.

`carry_on` is the one path a film takes, first time or not: it skips the shots already made,
finishes a shot whose task was submitted before (never submitting it twice), makes the rest,
and cuts. So `resume` after a crash, and "make this shot again" after a failure, are both
`carry_on`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

from skyreels_demo import images
from skyreels_demo.errors import BadInput, QuotaExceeded, Stopped, StudioError
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import Film, KeySource, Mode, Run
from skyreels_demo.studio.caps import limits_for, room_left
from skyreels_demo.studio.cut import cut_film
from skyreels_demo.studio.film_shots import FilmUpdate, is_made, latest_take, take_shot
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import LOCAL, Requester

log = logging.getLogger(__name__)

MIN_SHOTS, MAX_SHOTS = 2, 6


# --- the plan ----------------------------------------------------------------------------------


def check_shots(shots: Sequence[Any], studio: Studio) -> list[dict]:
    """The shots as they will be made: prompts checked, seeds made concrete (so a resumed film
    makes the same shots). `shots` are (prompt, seed) pairs or prompts."""
    pairs = [tuple(shot) if isinstance(shot, (tuple, list)) and len(shot) == 2 else (shot, -1) for shot in shots]
    if not MIN_SHOTS <= len(pairs) <= MAX_SHOTS:
        raise BadInput(f"A film has {MIN_SHOTS} to {MAX_SHOTS} shots; this one has {len(pairs)}.")
    checked = []
    for number, (prompt, seed) in enumerate(pairs, start=1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadInput(f"Shot {number} has no prompt: describe what happens in it, or remove it.")
        try:
            text = check_prompt(prompt, studio.model)
        except BadInput as exc:
            raise BadInput(f"Shot {number}: {exc.sentence}") from None
        checked.append({"prompt": text, "seed": choose_seed(seed, studio.model)})
    return checked


def film_price(studio: Studio, shots: int) -> str:
    """What a film costs before anything is spent, in words."""
    if studio.access.default_mode == Mode.PREVIEW:
        return f"{shots} shots · offline preview: free, made on this machine."
    price = studio.prices.owner(studio.model)  # WaveSpeed's, for the owner's key (pricing.py)
    return f"{shots} shots · about ${shots * price:.2f} ({shots} videos at ${price:.2f})."


def make_film(studio: Studio, request: RunRequest, shots: Sequence[Any]) -> Iterator[FilmUpdate]:
    """A new film from `request.image` and 2 to 6 shots, made in turn and cut into one video.

    Everything is checked (the image, every prompt, the caps for every shot) before the first
    shot is sent. Then as `carry_on`.
    """
    planned = check_shots(shots, studio)
    start = image_source(request.image, request.fit, studio.model, allow_loopback=studio.settings.allow_loopback_images)
    if not isinstance(start, images.PreparedImage):
        raise BadInput("A film starts from a picture file: upload it rather than giving its address.")
    key_source = _room_for(studio, request, len(planned))
    # The starting picture is kept by its first shot, once uploaded: a film refused at that
    # upload (a made-up key, say) keeps nothing on disk.
    film = studio.store.create_film(
        model=studio.model.name,
        shots=planned,
        key_source=key_source,
        image_path=None,
        fit=request.fit,
        fps_prefix=request.fps_prefix,
        visitor=request.visitor,
        requester=request.requester.key,
    )
    log.info("film %s: %d shots", film.id, len(planned))
    yield from carry_on(studio, film, request, start=start)


def _room_for(studio: Studio, request: RunRequest, shots: int) -> KeySource:
    """Whose key pays for the film, once its caps have room for every shot; else `QuotaExceeded`."""
    backend = studio.access.backend_for(request.api_key)
    try:
        room = room_left(studio.store, limits_for(studio.settings, backend, request.requester))
    finally:
        if backend.is_visitors:
            backend.client.close()
    if room is not None and room < shots:
        raise QuotaExceeded(
            f"This film needs {shots} videos, but only {room} more fit in your allowance right "
            f"now: make a film of {room} shot{'s' if room != 1 else ''}, paste your own WaveSpeed key, or wait a while."
            if room >= MIN_SHOTS
            else f"This film needs {shots} videos, but only {room} more fit in your allowance right now: "
            "paste your own WaveSpeed key, or wait a while."
        )
    return backend.key_source


# --- the walk through the shots ------------------------------------------------------------------


def carry_on(
    studio: Studio,
    film: Film,
    request: RunRequest | None = None,
    *,
    again: int | None = None,
    seed: int | float | str | None = None,
    start: images.PreparedImage | None = None,
) -> Iterator[FilmUpdate]:
    """Take a film to its cut: skip the shots already made, finish one whose task was submitted
    before (never sending it twice), make the rest in turn, then cut.

    `request` carries who asks, their key and the stop switch (by default: the owner's key or
    the preview, as `resume` runs). `again`: a shot to make again (a failed one, or one whose
    take was not liked), with `seed` (None: the same seed); the shots after it follow from it.
    `start`: a new film's starting picture, not kept yet (its first shot keeps it).
    """
    request = request or RunRequest("", None, requester=_requester_of(film))
    film, planned = _making(studio, film, again, seed)
    made: list[Run] = []
    for index, shot in enumerate(planned):
        redo = again is not None and index >= again
        latest = None if redo else latest_take(studio, film.id, index)
        if is_made(latest):
            made.append(latest)
            yield FilmUpdate(film, index, video_path=Path(latest.video_path))
            continue
        try:
            run, film = yield from take_shot(
                studio, film, index, shot, request, latest=latest, before=made[-1] if made else None, start=start
            )
        except StudioError as exc:
            status = FilmStatus.STOPPED if isinstance(exc, Stopped) else FilmStatus.FAILED
            film = studio.store.update_film(film.id, status=status, error_message=exc.sentence)
            yield FilmUpdate(film, index, error=exc)
            return
        made.append(run)
        yield FilmUpdate(film, index, video_path=Path(run.video_path))
    yield _cut(studio, film, made)


def carry_on_all(studio: Studio) -> Iterator[tuple[Film, FilmUpdate]]:
    """Every film a process left unfinished (`resume`), carried on; the key that pays must be here."""
    for film in studio.store.films(status=FilmStatus.MAKING, limit=1000):
        if film.model != studio.model.name:
            continue
        last = None
        for update in carry_on(studio, film):
            last = update
        if last is not None:
            yield film, last


# --- the film's record ---------------------------------------------------------------------------


def _making(studio: Studio, film: Film, again: int | None, seed: int | float | str | None) -> tuple[Film, list[dict]]:
    """The film's record set to making, and its shots, with shot `again`'s new seed when one is
    asked for."""
    planned = film.shots
    if again is not None:
        if not 0 <= again < len(planned):
            raise BadInput(f"This film has shots 1 to {len(planned)}: there is no shot {again + 1}.")
        if seed is not None:
            planned[again]["seed"] = choose_seed(seed, studio.model)
        film = studio.store.update_film(film.id, shots_json=json.dumps(planned))
    return studio.store.update_film(film.id, status=FilmStatus.MAKING, error_message=None), planned


def _cut(studio: Studio, film: Film, made: list[Run]) -> FilmUpdate:
    """The shots' videos cut into the film's one video, and the film recorded as done."""
    dest = studio.settings.films_dir / f"{film.id}.mp4"
    cut = cut_film([Path(run.video_path) for run in made], dest, studio.model.fps)
    log.info("film %s cut: %d frames (%s) in %.2f s", film.id, cut.frames, cut.method, cut.seconds)
    film = studio.store.update_film(film.id, status=FilmStatus.DONE, film_path=str(dest), error_message=None)
    return FilmUpdate(film, None, video_path=dest)


def _requester_of(film: Film) -> Requester:
    return Requester(film.requester or LOCAL, signed_in=film.requester.startswith("hf:"))
