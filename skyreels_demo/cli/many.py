"""`sweep` and `export`: a sweep's many cells, asking before spending more than
SKYREELS_CONFIRM_ABOVE_USD (films ask the same way: films.py), and a take written as a zip."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from skyreels_demo.cli.lines import EXIT_OK, EXIT_TASK_FAILED, PREVIEW_NOTICE, StatusLines
from skyreels_demo.config import Settings
from skyreels_demo.models import ModelSpec
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio


def register(add: Callable[..., argparse.ArgumentParser], model: ModelSpec) -> None:
    """The `sweep` and `export` commands."""
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
            confirm=lambda new: agree_to_spend(new, settings, studio, args.yes, status),
        )
    finally:
        studio.close()
        preview.stop()
    status.say(f"Report: {report.html_path}")
    print(report.html_path)
    return EXIT_OK if report.failed == 0 else EXIT_TASK_FAILED


def agree_to_spend(videos: int, settings: Settings, studio: Studio, yes: bool, status: StatusLines) -> bool:
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
