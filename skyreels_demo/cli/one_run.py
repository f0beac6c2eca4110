"""`generate` and `continue`: one run shown as status lines, with its video's path (or one JSON
object, `--json`) on stdout at the end. `generate --from FILE.zip` makes a take again."""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

from skyreels_demo.cli.lines import EXIT_OK, PREVIEW_NOTICE, StatusLines
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput, Stopped, StudioError
from skyreels_demo.models import ModelSpec
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.events import Done, Submitted
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest
from skyreels_demo.studio.studio import Studio


def register(add: Callable[..., argparse.ArgumentParser], model: ModelSpec) -> None:
    """The `generate` and `continue` commands."""
    gen = add("generate", help="make one video")
    gen.add_argument("--prompt", help="what should happen in the video")
    gen.add_argument("--image", help="a still image: a file path or an http(s) URL")
    gen.add_argument("--seed", help=f"-1 (random, the default) to {model.seed_max}; the seed used is printed (with --from: the take's own)")
    gen.add_argument("--timeout", type=float, help="give up waiting after this many seconds (default: the settings' overall deadline)")
    gen.add_argument("--fit", choices=("crop", "pad"), default="crop",
                     help="crop to the model's frame (default) or fit the whole picture with a border")
    gen.add_argument("--no-fps-prefix", action="store_true", help=f"do not start the prompt with {model.prompt_prefix.strip()!r}")
    gen.add_argument("--json", action="store_true", help="print one JSON object on stdout at the end")
    # A take made again: its prompt, seed, framing, prefix and the same prepared image bytes.
    gen.add_argument("--from", dest="from_take", metavar="FILE.zip",
                     help="make a take again from its export (or a take.json beside its image.jpg)")
    gen.set_defaults(handler=_generate)
    con = add("continue", help="a new shot from a frame (the last by default) of a run's video")
    con.add_argument("run", metavar="RUN_OR_TASK_ID", help="a run id or task id, as `runs` lists them")
    con.add_argument("--prompt", required=True, help="what happens next")
    con.add_argument("--seed", default="-1", help=f"the new shot's seed: -1 (random) to {model.seed_max}")
    con.add_argument("--frame", type=int, help="which frame to continue from, counting from 0 (default: the last)")
    con.add_argument("--timeout", type=float, help="give up waiting after this many seconds (default: the settings' overall deadline)")
    con.add_argument("--json", action="store_true", help="one JSON object on stdout, as generate's, with continued_from")
    con.set_defaults(handler=_continue)


def _generate(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    take = _take_to_make_again(args)
    if take is None and (not args.prompt or not args.image):
        raise BadInput("Give --prompt and --image (or --from a take's .zip to make it again).")
    if take is not None:
        return _one_run(
            args, settings, status,
            lambda studio, request: studio.generate(take.request(deadline_s=request.deadline_s, stop=request.stop)),
        )
    image: str = args.image
    if not image.lower().startswith(("http://", "https://")):
        path = Path(image).expanduser()
        if not path.is_file():
            raise BadInput(f"There is no image file at {image}: check the path and try again.")
        image = str(path)
    return _one_run(args, settings, status, lambda studio, request: studio.generate(request.but(image=image)))


def _continue(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.studio.frames import continue_run

    if args.frame is not None and args.frame < 0:
        raise BadInput("--frame counts from 0: give 0 or more.")
    extra: dict = {}

    def events(studio: Studio, request: RunRequest):
        for event in continue_run(studio, request, args.run, frame=args.frame):
            if isinstance(event, Submitted):
                source = studio.store.get(studio.store.get(event.run_id).continued_from)
                extra["continued_from"] = source.task_id
            yield event

    return _one_run(args, settings, status, events, extra)


def _one_run(args: argparse.Namespace, settings: Settings, status: StatusLines, events, extra: dict | None = None) -> int:
    """One run from `events(studio, request)`, shown as status lines, with its JSON at the end."""
    if args.timeout is not None and args.timeout <= 0:
        raise BadInput("--timeout must be a positive number of seconds.")
    if not settings.has_key:
        status.say(PREVIEW_NOTICE)
    preview = OfflinePreview(settings, args.model)
    studio = Studio(settings, args.model, start_preview=preview)
    result: dict = {"task_id": None, "status": RunStatus.REFUSED, "seed": None, "video_path": None,
                    "video_url": None, "timings": {}}
    extra = {} if extra is None else extra
    stop = threading.Event()
    run_id: str | None = None
    try:
        try:
            request = RunRequest(
                args.prompt,
                None,
                args.seed,
                fit=getattr(args, "fit", "crop"),
                fps_prefix=not getattr(args, "no_fps_prefix", False),
                deadline_s=args.timeout,
                stop=stop,
            )
            for event in events(studio, request):
                status.show(event)
                run_id = getattr(event, "run_id", None) or run_id
                if isinstance(event, Submitted):
                    result.update(task_id=event.task_id, seed=event.seed, status=RunStatus.SUBMITTED)
                if isinstance(event, Done):
                    result.update(
                        status=RunStatus.DONE,
                        video_path=str(event.video_path),
                        # The offline preview's server ends with this process: its address would
                        # be dead, so the saved file is named instead.
                        video_url=event.run.output_url if settings.has_key else Path(event.video_path).resolve().as_uri(),
                        timings={k: round(v, 3) for k, v in event.timings.items()},
                        nsfw=event.nsfw,
                    )
        except KeyboardInterrupt:
            raise Stopped(
                "Stopped waiting. The task still runs and is paid for: run "
                "`python -m skyreels_demo resume` later to save its video.",
                task_id=result["task_id"],
            ) from None
    except StudioError as exc:
        result.update(status=_recorded_status(studio, run_id, exc), error=exc.sentence)
        if getattr(exc, "task_id", None):
            result["task_id"] = exc.task_id
        if args.json:
            print(json.dumps({**result, **extra}))
        raise
    finally:
        studio.close()
        preview.stop()
    if args.json:
        print(json.dumps({**result, **extra}))
    else:
        print(result["video_path"])
    return EXIT_OK


def _take_to_make_again(args: argparse.Namespace):
    """The take `--from` names, read and checked before anything is sent; None without it."""
    if not args.from_take:
        return None
    if args.prompt or args.image:
        raise BadInput("--from makes a take again with its own prompt and image: leave out --prompt and --image.")
    from skyreels_demo.studio.takes import read_take

    take = read_take(args.from_take, args.model)
    # The take's seed, unless one is given (the same take with another seed).
    return take if args.seed is None else replace(take, seed=args.seed)


def _recorded_status(studio: Studio, run_id: str | None, exc: StudioError) -> RunStatus:
    """The run's own word as History has it (status.py), so the JSON and `runs` agree: a run
    still waiting is `queued` or `processing` (resume it), one whose submit was lost is
    `unconfirmed`; input refused before anything was recorded is `refused`."""
    task_id = getattr(exc, "task_id", None)
    run = studio.store.get(run_id) if run_id else studio.store.by_task(task_id) if task_id else None
    return run.status if run is not None else RunStatus.REFUSED
