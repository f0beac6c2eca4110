"""Films: shots made in turn, each from the last frame of the one before (or a cut to a picture),
several takes a shot if asked, the picked takes cut into one.

A film is a record of its own (store/films.py) naming 2 to 6 shots in order, each with its plan
(film_takes.ShotPlan: prompt, seed, 1 to 4 takes, how it starts, the picked take). Each take
is an ordinary run (film_shots.py), a shot's takes made at once (shot_takes.py). When every
shot has a pick that follows the shot before, the picks are cut into one video (cut.py).

`carry_on` is the one path a film takes, first time or not: it keeps the takes already made,
finishes a take submitted before (never submitting it twice), makes what is missing, picks,
and cuts. It stops, sending nothing, at a shot that follows an old frame (another take was
picked before it, or the shot before was made anew) unless asked to re-make from there. So
`resume` after a crash, "make this shot again", and "re-make from here" are all `carry_on`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from skyreels_demo import images
from skyreels_demo.errors import BadInput, QuotaExceeded, Stopped, StudioError
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import Film, KeySource, Mode, Run
from skyreels_demo.studio.caps import limits_for, room_left
from skyreels_demo.studio.cut import cut_film
from skyreels_demo.studio.film_shots import FilmUpdate
from skyreels_demo.studio.film_takes import (
    ShotPlan, ShotState, Start, check_takes, film_state, is_made, stale_from, takes_to_make,
)
from skyreels_demo.studio.run_request import RunRequest, check_prompt, choose_seed, image_source
from skyreels_demo.studio.shot_takes import make_takes
from skyreels_demo.studio.steps import keep_image
from skyreels_demo.studio.studio import Studio
from skyreels_demo.studio.visitors import LOCAL, Requester

log = logging.getLogger(__name__)

MIN_SHOTS, MAX_SHOTS = 2, 6


# --- the plan ----------------------------------------------------------------------------------


def check_shots(shots: Sequence[Any], studio: Studio, takes: Any = 1) -> list[dict]:
    """The shots as they will be made: prompts checked, seeds made concrete (so a resumed film
    makes the same shots), `takes` (1 to 4) each. `shots` are prompts, (prompt, seed) pairs, or
    dicts with `prompt`, `seed` and `start`: "continuous" (from the shot before's last frame,
    the default), "first" (a cut to the film's first picture) or "own" (a cut to `image`)."""
    count = check_takes(takes)
    rows = [_as_row(shot) for shot in shots]
    if not MIN_SHOTS <= len(rows) <= MAX_SHOTS:
        raise BadInput(f"A film has {MIN_SHOTS} to {MAX_SHOTS} shots; this one has {len(rows)}.")
    checked = []
    for number, row in enumerate(rows, start=1):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadInput(f"Shot {number} has no prompt: describe what happens in it, or remove it.")
        try:
            text = check_prompt(prompt, studio.model)
        except BadInput as exc:
            raise BadInput(f"Shot {number}: {exc.sentence}") from None
        start = _start_of(row, number)
        checked.append({"prompt": text, "seed": choose_seed(row.get("seed", -1), studio.model), "takes": count,
                        "start": str(start), "image": row.get("image") if start == Start.OWN else None})
    return checked


def _as_row(shot: Any) -> dict:
    if isinstance(shot, dict):
        return shot
    if isinstance(shot, (tuple, list)) and len(shot) == 2:
        return {"prompt": shot[0], "seed": shot[1]}
    return {"prompt": shot, "seed": -1}


def _start_of(row: dict, number: int) -> Start:
    try:
        start = Start(str(row.get("start") or Start.CONTINUOUS).lower())
    except ValueError:
        raise BadInput(f"Shot {number} starts continuous, first or own, not {row.get('start')!r}.") from None
    if number == 1:
        return Start.FIRST  # the film's first picture, always
    if start == Start.OWN and not row.get("image"):
        raise BadInput(f"Shot {number} is a cut to a picture of its own: add its picture.")
    return start


def film_price(studio: Studio, shots: int, takes: int = 1) -> str:
    """What a film (or what is left of it to make) costs before anything is spent, in words."""
    videos = shots * takes
    each = f"{shots} shots" + (f" × {takes} takes" if takes > 1 else "")
    if studio.access.default_mode == Mode.PREVIEW:
        return f"{each} · offline preview: free, made on this machine."
    price = studio.prices.owner(studio.model)  # WaveSpeed's, for the owner's key (pricing.py)
    return f"{each} · about ${videos * price:.2f} ({videos} videos at ${price:.2f})."


def remake_price(studio: Studio, film: Film, start: int) -> tuple[int, str]:
    """How many videos re-making `film` from shot `start` (from 0) submits, and its price in words."""
    plans = plans_of(film)
    videos = takes_to_make(film_state(plans, studio.store.shots_of(film.id), studio.model), plans, start)
    if studio.access.default_mode == Mode.PREVIEW:
        return videos, f"{videos} new takes · offline preview: free."
    price = studio.prices.owner(studio.model)
    return videos, f"{videos} new takes · about ${videos * price:.2f}."


def plans_of(film: Film) -> list[ShotPlan]:
    return [ShotPlan.of(raw, index) for index, raw in enumerate(film.shots)]


def make_film(studio: Studio, request: RunRequest, shots: Sequence[Any], takes: Any = 1) -> Iterator[FilmUpdate]:
    """A new film from `request.image` and 2 to 6 shots of `takes` takes each, made in turn and
    the picks cut into one video.

    Everything is checked (the image, every prompt and picture, the caps for every take) before
    the first is sent. Then as `carry_on`.
    """
    planned = check_shots(shots, studio, takes)
    start = image_source(request.image, request.fit, studio.model, allow_loopback=studio.settings.allow_loopback_images)
    if not isinstance(start, images.PreparedImage):
        raise BadInput("A film starts from a picture file: upload it rather than giving its address.")
    own = {index: _own_picture(studio, shot, index) for index, shot in enumerate(planned) if shot["image"]}
    key_source = _room_for(studio, request, sum(shot["takes"] for shot in planned))
    for index, picture in own.items():  # kept once the caps let the film go
        planned[index]["image"] = str(keep_image(studio.settings.images_dir, picture))
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
    log.info("film %s: %d shots, %d takes each", film.id, len(planned), planned[0]["takes"])
    yield from carry_on(studio, film, request, start=start)


def _own_picture(studio: Studio, shot: dict, index: int) -> images.PreparedImage:
    """A cut shot's own picture, prepared (and refused with the shot's number if it cannot be)."""
    try:
        picture = image_source(shot["image"], "crop", studio.model, allow_loopback=studio.settings.allow_loopback_images)
    except BadInput as exc:
        raise BadInput(f"Shot {index + 1}'s picture: {exc.sentence}") from None
    if not isinstance(picture, images.PreparedImage):
        raise BadInput(f"Shot {index + 1}'s picture must be a file: upload it rather than giving its address.")
    return picture


def _room_for(studio: Studio, request: RunRequest, shots: int) -> KeySource:
    """Whose key pays for the film, once its caps have room for every take; else `QuotaExceeded`."""
    backend = studio.access.backend_for(request.api_key)
    try:
        room = room_left(studio.store, limits_for(studio.settings, backend, request.requester))
    finally:
        if backend.is_visitors:
            backend.client.close()
    if room is not None and room < shots:
        smaller = "make a smaller film (fewer shots or takes), " if room >= MIN_SHOTS else ""
        raise QuotaExceeded(
            f"This film needs {shots} videos, but only {room} more fit in your allowance right now: "
            f"{smaller}paste your own WaveSpeed key, or wait a while."
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
    prompt: str | None = None,
    start: images.PreparedImage | None = None,
    remake: bool = False,
) -> Iterator[FilmUpdate]:
    """Take a film to its cut: keep the takes already made, finish one submitted before (never
    sending it twice), make what is missing, pick, then cut the picks.

    `request` carries who asks, their key and the stop switch (by default: the owner's key or
    the preview, as `resume` runs). `again`: a shot (from 0) to make anew, with `seed` and
    `prompt` (None: as they were); its old takes stay in History. A shot that follows an old
    frame stops the walk (the film is `changed`) unless `remake`: then it is made from the new
    frame. `start`: a new film's starting picture, not kept yet (its first shot keeps it).
    """
    request = request or RunRequest("", None, requester=_requester_of(film))
    film, plans = _making(studio, film, again, seed, prompt)
    picks: list[Run] = []
    for index in range(len(plans)):
        state = film_state(plans, studio.store.shots_of(film.id), studio.model)[index]
        if state.stale and not remake:
            film = studio.store.update_film(film.id, status=FilmStatus.CHANGED, error_message=None)
            yield FilmUpdate(film, index, follows_old=True)
            return
        if is_made(state.picked) and not state.stale and not state.missing:
            picks.append(state.picked)
            yield FilmUpdate(film, index, video_path=Path(state.picked.video_path), take=state.take_number)
            continue
        outcome: dict[int, Run | StudioError] = {}
        yield from make_takes(studio, film, state, request, _picture(film, state, start), outcome)
        film = studio.store.film(film.id)
        try:
            pick, number = _pick_after(state, outcome)
        except StudioError as exc:
            status = FilmStatus.STOPPED if isinstance(exc, Stopped) else FilmStatus.FAILED
            film = studio.store.update_film(film.id, status=status, error_message=exc.sentence)
            yield FilmUpdate(film, index, error=exc)
            return
        plans[index] = replace(plans[index], picked=pick.id)
        film = studio.store.update_film(film.id, shots_json=_dumps(plans))
        picks.append(pick)
        yield FilmUpdate(film, index, video_path=Path(pick.video_path), take=number)
    yield _cut(studio, film, picks, [not plan.is_cut for plan in plans])


def pick(studio: Studio, film: Film, shot: int, take: int) -> Film:
    """Pick take `take` (from 1) of shot `shot` (from 0) among its current takes. Nothing is sent:
    if every shot still follows its picked frame the picks are cut again at once; otherwise the
    film is `changed`, and the shots after this one follow an old frame until re-made."""
    plans = plans_of(film)
    if not 0 <= shot < len(plans):
        raise BadInput(f"This film has shots 1 to {len(plans)}: there is no shot {shot + 1}.")
    state = film_state(plans, studio.store.shots_of(film.id), studio.model)[shot]
    if not 1 <= take <= len(state.takes):
        raise BadInput(f"Shot {shot + 1} has takes 1 to {len(state.takes)}: there is no take {take}.")
    chosen = state.takes[take - 1]
    if not is_made(chosen):
        raise BadInput(f"Take {take} of shot {shot + 1} has no video yet: make it first, or pick another.")
    plans[shot] = replace(plans[shot], picked=chosen.id)
    film = studio.store.update_film(film.id, shots_json=_dumps(plans))
    states = film_state(plans, studio.store.shots_of(film.id), studio.model)
    if stale_from(states) is not None:
        return studio.store.update_film(film.id, status=FilmStatus.CHANGED, error_message=None)
    if all(is_made(s.picked) for s in states):
        return _cut(studio, film, [s.picked for s in states], [not p.is_cut for p in plans]).film
    return film


def _picture(film: Film, state: ShotState, start: images.PreparedImage | None) -> Any:
    """The picture a shot's new takes start from when they do not continue: the film's first
    (the new film's, not kept yet, or its kept one: None) or the shot's own."""
    if state.plan.start == Start.OWN:
        if not state.plan.image or not Path(state.plan.image).is_file():
            raise StudioError(f"Shot {state.index + 1}'s own picture is no longer kept: make the film again.")
        return state.plan.image
    return start if state.source is None else None


def _pick_after(state: ShotState, outcome: dict[int, Run | StudioError]) -> tuple[Run, int]:
    """The shot's pick once its takes ended: the director's, if it is still one of them, else
    the first to finish; a `StudioError` when no take made a video (a stop before any other)."""
    made = {number: run for number, run in outcome.items() if isinstance(run, Run) and is_made(run)}
    if state.picked is not None and not state.stale:
        for number, run in made.items():
            if run.id == state.picked.id:
                return run, number
    if made:
        number = min(made, key=lambda n: (made[n].finished_at or made[n].updated_at, n))
        return made[number], number
    errors = [e for e in outcome.values() if isinstance(e, StudioError)]
    stopped = [e for e in errors if isinstance(e, Stopped)]
    raise (stopped or errors or [StudioError("No take of this shot made a video: make it again.")])[0]


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


def _making(
    studio: Studio, film: Film, again: int | None, seed: int | float | str | None, prompt: str | None
) -> tuple[Film, list[ShotPlan]]:
    """The film's record set to making, and its plans, shot `again` planned anew (its new seed
    or prompt, and no pick: the first of its new takes to finish) when asked."""
    plans = plans_of(film)
    if again is not None:
        if not 0 <= again < len(plans):
            raise BadInput(f"This film has shots 1 to {len(plans)}: there is no shot {again + 1}.")
        changed = plans[again]
        if seed is not None:
            changed = replace(changed, seed=choose_seed(seed, studio.model))
        if prompt is not None and prompt.strip():
            changed = replace(changed, prompt=check_prompt(prompt, studio.model))
        plans[again] = replace(changed, picked=None)
        film = studio.store.update_film(film.id, shots_json=_dumps(plans))
    return studio.store.update_film(film.id, status=FilmStatus.MAKING, error_message=None), plans


def _dumps(plans: Sequence[ShotPlan]) -> str:
    return json.dumps([plan.as_dict() for plan in plans])


def _cut(studio: Studio, film: Film, made: list[Run], continues: list[bool]) -> FilmUpdate:
    """The picked takes cut into the film's one video, and the film recorded as done.

    The first cut is `<film id>.mp4`; a cut of other picks is named by them, so a page already
    playing the old cut is handed a new address rather than its cached copy, and the old cut
    is removed once the new one is recorded (a film keeps one cut on disk)."""
    first = studio.settings.films_dir / f"{film.id}.mp4"
    picks = hashlib.sha256(" ".join(run.id for run in made).encode()).hexdigest()[:10]
    dest = first if not film.film_path else first.with_name(f"{film.id}-{picks}.mp4")
    cut = cut_film([Path(run.video_path) for run in made], dest, studio.model.fps, continues)
    log.info("film %s cut: %d frames (%s) in %.2f s", film.id, cut.frames, cut.method, cut.seconds)
    old = film.film_path
    film = studio.store.update_film(film.id, status=FilmStatus.DONE, film_path=str(dest), error_message=None)
    if old and Path(old) != dest and Path(old).parent == studio.settings.films_dir:
        Path(old).unlink(missing_ok=True)
    return FilmUpdate(film, None, video_path=dest)


def _requester_of(film: Film) -> Requester:
    return Requester(film.requester or LOCAL, signed_in=film.requester.startswith("hf:"))
