"""The command line: `python -m skyreels_demo generate | resume | runs | sweep | local-api`.

Status goes to stderr, results to stdout, and the exit code says how it ended:
0 done, 2 bad input (nothing was sent), 3 API or auth error, 4 the task failed,
5 gave up waiting (the task is recorded: resume it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence, TextIO

from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput, Stopped, StudioError
from skyreels_demo.studio.events import Done, Event, Processing, Queued, Submitted
from skyreels_demo.models import SKYREELS_V1, TIERS, ModelSpec
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.run_request import RunRequest, check_seed
from skyreels_demo.store.records import Run
from skyreels_demo.status import RunStatus
from skyreels_demo.studio.studio import Studio
from skyreels_demo.times import DAY_S, HOUR_S, MINUTE_S

EXIT_OK, EXIT_BAD_INPUT, EXIT_API, EXIT_TASK_FAILED, EXIT_GAVE_UP = 0, 2, 3, 4, 5
PREVIEW_NOTICE = (
    "No WAVESPEED_API_KEY is set: running on the built-in offline preview (a camera move over "
    "your image, not SkyReels output). Set WAVESPEED_API_KEY to make real videos."
)


class StatusLines:
    """Events as status lines: every new stage, and a heartbeat while waiting."""

    def __init__(self, out: TextIO, every_s: float = 5.0) -> None:
        self.out = out
        self.every_s = every_s
        self._last_kind: type | None = None
        self._last_at = 0.0
        self._live = out.isatty()

    def show(self, event: Event) -> None:
        waiting = isinstance(event, (Queued, Processing))
        now = time.monotonic()
        if waiting and self._live:
            # On a terminal, one line that counts up in place.
            self.out.write(f"\r\033[K[{event.elapsed_s:5.1f}s] {event.message}")
            self.out.flush()
            self._last_kind = type(event)
            return
        if waiting and type(event) is self._last_kind and now - self._last_at < self.every_s:
            return
        if self._live and self._last_kind in (Queued, Processing):
            self.out.write("\n")
        self.out.write(f"[{event.elapsed_s:5.1f}s] {event.message}\n")
        self.out.flush()
        self._last_kind, self._last_at = type(event), now

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


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
    result: dict = {"task_id": None, "status": "failed", "seed": None, "video_path": None,
                    "video_url": None, "timings": {}}
    extra = {} if extra is None else extra
    stop = threading.Event()
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
                if isinstance(event, Submitted):
                    result.update(task_id=event.task_id, seed=event.seed, status="submitted")
                if isinstance(event, Done):
                    result.update(
                        status="completed",
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
        result.update(status=_status_for(exc), error=exc.sentence)
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


# -- takes: `generate --from FILE.zip` and `export` (takes.py) --


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


def _status_for(exc: StudioError) -> str:
    return {2: "refused", 3: "error", 4: "failed", 5: "waiting"}.get(exc.exit_code, "error")


def _resume(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    preview = OfflinePreview(settings, args.model)
    studio = Studio(settings, args.model, start_preview=preview)
    worst = EXIT_OK
    count = 0
    try:
        if not args.task_id:
            from skyreels_demo.studio.films import carry_on_all

            # A lost submit's task found again is finished below like any other (a shot's by its film).
            for run in studio.recover_lost():
                count += 1
                if run.task_id is None:
                    status.say(f"run {run.id}: {run.error_message or run.note}")
                else:
                    status.say(f"run {run.id}: its lost submit's task {run.task_id} was found again")
            for film, end in carry_on_all(studio):
                count += 1
                if end.error is not None:
                    status.say(f"{film.id}: {end.error.sentence}")
                    worst = max(worst, end.error.exit_code)
                else:
                    status.say(f"{film.id}: cut -> {end.film.film_path}")
                    print(end.film.film_path)
        for run, end in studio.resume(args.task_id, deadline_s=args.timeout):
            count += 1
            if isinstance(end, StudioError):
                status.say(f"{run.task_id}: {end.sentence}")
                worst = max(worst, end.exit_code)
            else:
                status.say(f"{run.task_id}: {end.status}" + (f" -> {end.video_path}" if end.video_path else ""))
                if end.video_path:
                    print(end.video_path)
                elif end.status == RunStatus.FAILED:
                    worst = max(worst, EXIT_TASK_FAILED)
    finally:
        studio.close()
        preview.stop()
    if count == 0:
        status.say("Nothing to resume: every recorded run is finished.")
    return worst


def _age(seconds: float) -> str:
    for unit, size in (("d", DAY_S), ("h", HOUR_S), ("m", MINUTE_S)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def format_runs(runs: Sequence[Run], now: float | None = None) -> str:
    now = now or time.time()
    lines = [f"{'status':<10} {'age':>4} {'seed':>10}  {'task id':<32}  prompt / video"]
    for run in runs:
        prompt = run.prompt if len(run.prompt) <= 50 else run.prompt[:49] + "…"
        prompt = ("★ " if run.kept else "") + prompt  # a take kept in History
        lines.append(
            f"{run.status:<10} {_age(now - run.created_at):>4} {run.seed:>10}  {run.task_id or '-':<32}  {prompt}"
        )
        if run.video_path:
            lines.append(f"{'':<60}{run.video_path}")
        elif run.note or run.error_message:
            lines.append(f"{'':<60}{run.note or run.error_message}")
    return "\n".join(lines)


def _runs(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.store.runs import RunStore

    store = RunStore(settings.runs_db)
    runs = store.recent(model=args.model.name, limit=args.limit, words=" ".join(args.find or ()), kept=args.kept)
    if args.json:
        noted = [{**run.__dict__, "note": run.note or _recovered(store, run)} for run in runs]
        print(json.dumps(noted, default=str))
    elif runs:
        print(format_runs(runs))
    elif (args.find or args.kept) and store.recent(model=args.model.name, limit=1):
        asked = " and ".join(part for part in (
            f"every word of {' '.join(args.find)!r}" if args.find else "", "kept" if args.kept else "") if part)
        status.say(f"No run matched ({asked}) in {settings.data_dir}: `runs` lists them all.")
    else:
        status.say(f"No runs yet in {settings.data_dir}.")
    return EXIT_OK


def _recovered(store, run: Run) -> str:
    """What History says of a run whose lost submit's task was found again, else ""."""
    from skyreels_demo.store.records import RECOVERED_NOTE, was_recovered

    return RECOVERED_NOTE if run.task_id and was_recovered(store.statuses(run.id)) else ""


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


def _balance(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.wavespeed.client import WaveSpeedClient

    if not settings.has_key:
        raise BadInput("No WAVESPEED_API_KEY is set, so there is no balance to check: set it first.")
    with WaveSpeedClient(settings) as client:
        balance = client.balance()
    if args.json:
        print(json.dumps({"balance": balance.amount, "currency": balance.currency}))
    else:
        print(f"{balance.amount:.2f} {balance.currency}")
    return EXIT_OK


def _local_api(args: argparse.Namespace, settings: Settings, status: StatusLines) -> int:
    from skyreels_demo.local_api import Limits, TaskTiming, serve

    url = f"http://{args.host}:{args.port}"
    status.say(
        f"Serving the offline WaveSpeed backend on {url}; {'only the key given' if args.key else 'any key'} works. "
        f"This app and its command line: WAVESPEED_BASE_URL={url}. The official SDK (which reads no such "
        f'variable): wavespeed.Client(api_key="...", base_url="{url}").'
    )
    serve(
        args.port,
        host=args.host,
        api_key=args.key,
        models=(args.model,),
        timing=TaskTiming(queue_s=args.queue_seconds, processing_s=args.processing_seconds),
        limits=Limits.of(TIERS[args.tier]) if args.tier else None,
    )
    return EXIT_OK


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser(model: ModelSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skyreels_demo",
        description=f"{model.title} on WaveSpeedAI, from the command line.",
        formatter_class=_Help,
    )
    parser.set_defaults(model=model)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=_Help, **kwargs)

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

    res = add("resume", help="finish runs that were submitted but not saved, and carry films on")
    res.add_argument("task_id", nargs="?", help="one task id (default: every unfinished run)")
    res.add_argument("--timeout", type=float, help="give up waiting after this many seconds (default: the settings' overall deadline)")
    res.set_defaults(handler=_resume)

    lst = add("runs", help="list recorded runs")
    lst.add_argument("--limit", type=int, default=30, help="list at most this many, newest first")
    lst.add_argument("--find", nargs="+", metavar="WORD", help="only runs whose prompt has every one of these words")
    lst.add_argument("--kept", action="store_true", help="only takes kept in History (★)")
    lst.add_argument("--json", action="store_true", help="print them as one JSON list")
    lst.set_defaults(handler=_runs)

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

    # -- takes: a run as a zip that `generate --from` makes again (takes.py) --
    exp = add("export", help="write a take (video, prepared image, take.json) as a zip")
    exp.add_argument("run", metavar="RUN_OR_TASK_ID", help="a run id or task id, as `runs` lists them")
    exp.add_argument("--out", required=True, metavar="FILE.zip", help="where to write the zip")
    exp.set_defaults(handler=_export)

    bal = add("balance", help="the key's WaveSpeed credit")
    bal.add_argument("--json", action="store_true", help='print {"balance": <number>, "currency": "USD"}')
    bal.set_defaults(handler=_balance)

    api = add("local-api", help="serve the built-in WaveSpeed-compatible backend")
    api.add_argument("--port", type=int, default=8765, help="the port to listen on")
    api.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    api.add_argument("--key", help="accept only this key (default: any non-empty key)")
    api.add_argument("--queue-seconds", type=float, default=Settings.preview_timing[0],
                     help="how long each task waits in the queue")
    api.add_argument("--processing-seconds", type=float, default=Settings.preview_timing[1],
                     help="how long each task then processes")
    api.add_argument("--tier", choices=sorted(TIERS), help="keep this account tier's limits, answering 429 past them (default: none)")
    api.set_defaults(handler=_local_api)
    return parser


def main(argv: Sequence[str] | None = None, model: ModelSpec = SKYREELS_V1) -> int:
    """The command line for `model`'s videos (SkyReels V1 unless a caller wires another)."""
    args = build_parser(model).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    status = StatusLines(sys.stderr)
    try:
        settings = Settings.from_env()
        return args.handler(args, settings, status)
    except StudioError as exc:
        status.say(f"error: {exc.sentence}")
        return exc.exit_code
    except ValueError as exc:  # a malformed environment variable
        status.say(f"error: {exc}")
        return EXIT_BAD_INPUT
