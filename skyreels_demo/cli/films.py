"""`film` and `films`: a director's film from the command line. `film` makes one (2 to 6 shots,
1 to 4 takes each, a shot continuing from the pick before or cutting to a picture); `films`
lists them, `films pick` picks another take (and re-makes what follows, with --remake), and
`films export` writes the film for an editor (film_export.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable, Iterator

from skyreels_demo.cli.lines import EXIT_OK, PREVIEW_NOTICE, StatusLines
from skyreels_demo.cli.many import agree_to_spend
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import FilmStatus
from skyreels_demo.store.records import Film
from skyreels_demo.studio.events import Processing, Queued
from skyreels_demo.studio.film_shots import FilmUpdate
from skyreels_demo.studio.film_takes import MAX_TAKES, film_state, stale_from
from skyreels_demo.studio.films import carry_on, check_shots, make_film, pick, plans_of, remake_price
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest, check_seed
from skyreels_demo.studio.studio import Studio


def register(add: Callable[..., argparse.ArgumentParser], model: ModelSpec) -> None:
    """The `film` and `films` commands."""
    flm = add("film", help="2 to 6 shots, each from the last frame of the one before, cut into one film")
    flm.add_argument("--image", required=True, help="the first shot's picture: a file path")
    flm.add_argument("--shot", action="append", help="one shot's prompt (give 2 to 6, in order)")
    flm.add_argument("--seed", default="-1", help=f"the first shot's seed, -1 (random) to {model.seed_max}; the others follow it")
    flm.add_argument("--takes", type=int, default=1, help=f"takes of each shot, 1 to {MAX_TAKES}; the first to finish is picked")
    flm.add_argument("--cut", action="append", default=[], metavar="SHOT[=PICTURE]",
                     help="shot SHOT (from 2) starts from the film's first picture again, or from PICTURE, not the shot before")
    flm.add_argument("--fit", choices=("crop", "pad"), default="crop",
                     help="crop to the model's frame or fit the whole picture with a border")
    flm.add_argument("--yes", action="store_true", help="do not ask before spending (see SKYREELS_CONFIRM_ABOVE_USD)")
    flm.add_argument("--json", action="store_true", help="one JSON object on stdout at the end")
    flm.set_defaults(handler=_film)
    fls = add("films", help="list films; `films pick` and `films export` act on one")
    fls.add_argument("--limit", type=int, default=30, help="list at most this many, newest first")
    fls.add_argument("--json", action="store_true", help="print them as one JSON list")
    fls.set_defaults(handler=_films)
    actions = fls.add_subparsers(dest="action", metavar="{pick,export}", help="act on one film (default: list them)")
    pck = actions.add_parser("pick", help="pick another take of a shot; --remake makes what follows from it")
    pck.add_argument("film", metavar="FILM_ID", help="a film's id, as `films` lists them")
    pck.add_argument("--shot", type=int, required=True, help="the shot, from 1")
    pck.add_argument("--take", type=int, required=True, help="the take, from 1")
    pck.add_argument("--remake", action="store_true", help="re-make the shots after it from the new pick (this spends)")
    pck.add_argument("--yes", action="store_true", help="do not ask before spending (see SKYREELS_CONFIRM_ABOVE_USD)")
    pck.add_argument("--json", action="store_true", help="one JSON object on stdout at the end")
    pck.set_defaults(handler=_pick)
    exp = actions.add_parser("export", help="the film for an editor: the cut, each take, OTIO, EDL and FCP XML timelines")
    exp.add_argument("film", metavar="FILM_ID", help="a film's id, as `films` lists them")
    exp.add_argument("--out", required=True, metavar="FILE.zip", help="where to write the zip")
    exp.set_defaults(handler=_export_film)


def _film(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    path = Path(args.image).expanduser()
    if not path.is_file():
        raise BadInput(f"There is no image file at {args.image}: check the path and try again.")
    preview = OfflinePreview(settings, args.model)
    studio = Studio(settings, args.model, start_preview=preview)
    try:
        planned = check_shots(_shots(args), studio, args.takes)  # bad shots are refused before the question
        if not settings.has_key:
            status.say(PREVIEW_NOTICE)
        if not agree_to_spend(len(planned) * args.takes, settings, studio, args.yes, status):
            raise BadInput("The film was not started, so nothing was spent.")
        updates = make_film(studio, RunRequest("", str(path), fit=args.fit), planned, args.takes)
        film = _follow(updates, status)
        print(json.dumps(_film_summary(studio, film)) if args.json else film.film_path)
        return EXIT_OK
    finally:
        studio.close()
        preview.stop()


def _shots(args: argparse.Namespace) -> list[dict]:
    """The shots as `make_film` takes them: prompts, seeds following the first, and the cuts."""
    prompts = args.shot or []
    # Checked as generate's --seed is (the same sentence); the others follow it, wrapping at the top.
    first = check_seed(args.seed, args.model.seed_range)
    seeds = [-1] * len(prompts) if first == -1 else args.model.following_seeds(first, len(prompts))
    shots = [{"prompt": prompt, "seed": seed} for prompt, seed in zip(prompts, seeds)]
    for given in args.cut:
        number, _, picture = given.partition("=")
        if not number.strip().isdigit() or not 2 <= int(number) <= len(shots):
            raise BadInput(f"--cut names a shot from 2 to {len(shots)} (then =PICTURE if it has its own), not {given!r}.")
        if picture and not Path(picture).expanduser().is_file():
            raise BadInput(f"There is no image file at {picture} for shot {number}: check the path and try again.")
        shot = shots[int(number) - 1]
        shot.update(start="own", image=str(Path(picture).expanduser())) if picture else shot.update(start="first")
    return shots


def _follow(updates: Iterator[FilmUpdate], status: StatusLines) -> Film:
    """Say each step of a film's walk; the film at its end (its error raised)."""
    last = None
    for update in updates:
        last = update
        if update.event is None or not isinstance(update.event, (Queued, Processing)):
            status.say(update.message)
    assert last is not None
    if last.error is not None:
        raise last.error
    return last.film


def _film_summary(studio: Studio, film: Film) -> dict:
    from skyreels_demo.studio.frames import frames_in

    states = film_state(plans_of(film), studio.store.shots_of(film.id), studio.model)
    frames = frames_in(film.film_path) if film.has_film else 0
    return {
        "film_id": film.id,
        "status": str(film.status),
        "film_path": film.film_path,
        "frames": frames,
        "duration_s": frames / studio.model.fps if studio.model.fps else 0.0,
        "shots": [
            {
                "shot": state.index + 1,
                "starts": "cut" if state.plan.is_cut and state.index else "continuous" if state.index else "picture",
                "take": state.take_number,
                "takes": [take.seed if take else None for take in state.takes],
                "task_id": state.picked.task_id if state.picked else None,
                "seed": state.picked.seed if state.picked else None,
                "video_path": state.picked.video_path if state.picked else None,
                "follows_old_frame": state.stale,
            }
            for state in states
        ],
    }


def _films(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.store.runs import RunStore

    store = RunStore(settings.runs_db)
    rows = []
    for film in store.films(limit=args.limit):
        states = film_state(plans_of(film), store.shots_of(film.id), args.model)
        rows.append({
            "film_id": film.id,
            "status": str(film.status),
            "shots_done": sum(1 for state in states if state.picked is not None),
            "shots_total": len(film.shots),
            "takes": max((state.plan.takes for state in states), default=1),
            "follows_old_frame_from": (lambda k: None if k is None else k + 1)(stale_from(states)),
            "film_path": film.film_path,
            "error": film.error_message,
        })
    if args.json:
        print(json.dumps(rows))
    elif rows:
        for row in rows:
            print(f"{row['status']:<8} {row['shots_done']}/{row['shots_total']} shots  {row['film_id']}  "
                  f"{row['film_path'] or row['error'] or ''}")
    else:
        status.say(f"No films yet in {settings.data_dir}.")
    return EXIT_OK


def _pick(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    preview = OfflinePreview(settings, args.model)
    studio = Studio(settings, args.model, start_preview=preview)
    try:
        film = pick(studio, _film_named(studio, args.film), args.shot - 1, args.take)
        status.say(f"Shot {args.shot}: take {args.take} picked.")
        after = stale_from(film_state(plans_of(film), studio.store.shots_of(film.id), studio.model))
        if after is not None and not args.remake:
            _, price = remake_price(studio, film, after)
            status.say(f"Shot {after + 1} on follows an old frame: re-make it with --remake ({price}).")
        elif after is not None:
            videos, _ = remake_price(studio, film, after)
            if not agree_to_spend(videos, settings, studio, args.yes, status):
                raise BadInput("Nothing was re-made, so nothing was spent.")
            film = _follow(carry_on(studio, film, remake=True), status)
        elif film.status == FilmStatus.DONE:
            status.say(f"Cut again: {film.film_path}")
        print(json.dumps(_film_summary(studio, film)) if args.json else (film.film_path or film.id))
        return EXIT_OK
    finally:
        studio.close()
        preview.stop()


def _export_film(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.store.runs import RunStore
    from skyreels_demo.studio.film_export import export_film, film_for_editor

    store = RunStore(settings.runs_db)
    try:
        try:
            film = store.film(args.film)
        except KeyError:
            raise BadInput(f"There is no film {args.film!r} here: `films` lists them.") from None
        out = export_film(film_for_editor(store, film, args.model), Path(args.out).expanduser(), within=settings.data_dir)
    finally:
        store.close()
    status.say(f"Exported the film to {out}: film.mp4, each shot's take, film.otio, film.edl and film.xml.")
    print(out)
    return EXIT_OK


def _film_named(studio: Studio, film_id: str) -> Film:
    try:
        return studio.store.film(film_id)
    except KeyError:
        raise BadInput(f"There is no film {film_id!r} here: `films` lists them.") from None
