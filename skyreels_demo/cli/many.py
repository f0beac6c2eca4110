"""`film`, `films`, `sweep` and `export`: many runs at once (a film's shots, a sweep's cells) and
a take written as a zip; each asks before spending more than SKYREELS_CONFIRM_ABOVE_USD."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from skyreels_demo.cli.lines import EXIT_OK, EXIT_TASK_FAILED, PREVIEW_NOTICE, StatusLines
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.events import Processing, Queued
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest, check_seed
from skyreels_demo.studio.studio import Studio


def register(add: Callable[..., argparse.ArgumentParser], model: ModelSpec) -> None:
    """The `film`, `films`, `sweep` and `export` commands."""
    flm = add("film", help="2 to 6 shots, each from the last frame of the one before, cut into one film")
    flm.add_argument("--image", required=True, help="the first shot's picture: a file path")
    flm.add_argument("--shot", action="append", help="one shot's prompt (give 2 to 6, in order)")
    flm.add_argument("--seed", default="-1", help=f"the first shot's seed, -1 (random) to {model.seed_max}; the others follow it")
    flm.add_argument("--fit", choices=("crop", "pad"), default="crop",
                     help="crop to the model's frame or fit the whole picture with a border")
    flm.add_argument("--yes", action="store_true", help="do not ask before spending (see SKYREELS_CONFIRM_ABOVE_USD)")
    flm.add_argument("--json", action="store_true", help="one JSON object on stdout at the end")
    flm.set_defaults(handler=_film)
    fls = add("films", help="list films")
    fls.add_argument("--limit", type=int, default=30, help="list at most this many, newest first")
    fls.add_argument("--json", action="store_true", help="print them as one JSON list")
    fls.set_defaults(handler=_films)
    swp = add("sweep", help="many prompts x seeds over one image, with a report")
    swp.add_argument("--image", required=True, help="the one still image every cell starts from: a file path")
    swp.add_argument("--prompts", required=True, help="a text file with one prompt a line")
    swp.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, e.g. 1,2,3 or 1-4")
    swp.add_argument("--concurrency", type=int, default=3, help="how many of the sweep's tasks run at once")
    swp.add_argument("--fit", choices=("crop", "pad"), default="crop",
                     help="crop to the model's frame or fit the whole picture with a border")
    swp.add_argument("--out", help="where to write the report (default: the data directory)")
    swp.add_argument("--yes", action="store_true", help="do not ask before spending (see SKYREELS_CONFIRM_ABOVE_USD)")
    swp.set_defaults(handler=_sweep)
    exp = add("export", help="write a take (video, prepared image, take.json) as a zip")
    exp.add_argument("run", metavar="RUN_OR_TASK_ID", help="a run id or task id, as `runs` lists them")
    exp.add_argument("--out", required=True, metavar="FILE.zip", help="where to write the zip")
    exp.set_defaults(handler=_export)


def _film(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.studio.films import check_shots, make_film

    path = Path(args.image).expanduser()
    if not path.is_file():
        raise BadInput(f"There is no image file at {args.image}: check the path and try again.")
    preview = OfflinePreview(settings, args.model)
    studio = Studio(settings, args.model, start_preview=preview)
    try:
        # Checked as generate's --seed is (the same sentence); the others follow it, wrapping at the top.
        first = check_seed(args.seed, args.model.seed_range)
        count = len(args.shot or [])
        seeds = [-1] * count if first == -1 else args.model.following_seeds(first, count)
        shots = list(zip(args.shot or [], seeds))
        planned = check_shots(shots, studio)  # bad shots are refused before the question
        if not settings.has_key:
            status.say(PREVIEW_NOTICE)
        if not _agree_to_spend(len(planned), settings, studio, args.yes, status):
            raise BadInput("The film was not started, so nothing was spent.")
        last = None
        for update in make_film(studio, RunRequest("", str(path), fit=args.fit), [(s["prompt"], s["seed"]) for s in planned]):
            last = update
            if update.event is None or not isinstance(update.event, (Queued, Processing)):
                status.say(update.message)
        assert last is not None
        film = last.film
        if last.error is not None:
            raise last.error
        print(json.dumps(_film_summary(studio, film)) if args.json else film.film_path)
        return EXIT_OK
    finally:
        studio.close()
        preview.stop()


def _film_summary(studio: Studio, film) -> dict:
    from skyreels_demo.studio.frames import frames_in

    shots = [run for run in studio.store.shots_of(film.id) if run.status == RunStatus.DONE]
    frames = frames_in(film.film_path) if film.has_film else 0
    return {
        "film_id": film.id,
        "film_path": film.film_path,
        "frames": frames,
        "duration_s": frames / studio.model.fps if studio.model.fps else 0.0,
        "shots": [{"task_id": run.task_id, "seed": run.seed, "video_path": run.video_path} for run in shots],
    }


def _films(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.store.runs import RunStore

    store = RunStore(settings.runs_db)
    rows = []
    for film in store.films(limit=args.limit):
        done = {run.shot for run in store.shots_of(film.id) if run.status == RunStatus.DONE and run.has_video}
        rows.append({
            "film_id": film.id,
            "status": str(film.status),
            "shots_done": len(done),
            "shots_total": len(film.shots),
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


def _export(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.store.runs import RunStore
    from skyreels_demo.studio.takes import export_take, find_run

    store = RunStore(settings.runs_db)
    try:
        out = export_take(find_run(store, args.run), args.model, Path(args.out).expanduser())
    finally:
        store.close()
    status.say(f"Exported the take to {out}: `generate --from {out}` makes it again.")
    print(out)
    return EXIT_OK


def _sweep(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.studio.sweeps import parse_seeds, read_prompts, run_sweep

    prompts = read_prompts(Path(args.prompts))
    seeds = parse_seeds(args.seeds, args.model)
    if not settings.has_key:
        status.say(PREVIEW_NOTICE)
    # The sweep's own limit decides how many of its tasks run at once.
    preview = OfflinePreview(settings, args.model)
    studio = Studio(
        replace(settings, max_concurrent_tasks=max(1, args.concurrency)), args.model, start_preview=preview
    )
    try:
        report = run_sweep(
            studio,
            RunRequest("", args.image, fit=args.fit),
            prompts=prompts,
            seeds=seeds,
            concurrency=args.concurrency,
            out_dir=Path(args.out) if args.out else None,
            progress=status.out,
            confirm=lambda new: _agree_to_spend(new, settings, studio, args.yes, status),
        )
    finally:
        studio.close()
        preview.stop()
    status.say(f"Report: {report.html_path}")
    print(report.html_path)
    return EXIT_OK if report.failed == 0 else EXIT_TASK_FAILED


def _agree_to_spend(videos: int, settings: Settings, studio: Studio, yes: bool, status: StatusLines) -> bool:
    """Say what a sweep or a film costs (at WaveSpeed's price for the key); ask before spending
    more than the setting allows."""
    if not settings.has_key:
        status.say(f"{videos} new offline previews: free, made on this machine.")
        return True
    cost = videos * studio.prices.owner(studio.model)
    status.say(f"{videos} new videos, about ${cost:.2f} on your WaveSpeed key.")
    if yes or cost <= settings.confirm_above_usd:
        return True
    if sys.stdin.isatty():
        status.out.write(f"Spend about ${cost:.2f}? [y/N] ")
        status.out.flush()
    stdin_answer = sys.stdin.readline()
    if not stdin_answer:  # no one to ask
        status.say(f"Not started: it costs more than ${settings.confirm_above_usd:.2f}; run it again with --yes to go ahead.")
        return False
    return stdin_answer.strip().lower() in {"y", "yes"}
