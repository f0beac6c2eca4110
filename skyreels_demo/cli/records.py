"""`resume`, `runs`, `balance` and `local-api`: the records kept (finished after a crash, listed),
the key's credit, and the built-in backend served on its own."""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Sequence

from skyreels_demo.cli.lines import EXIT_OK, EXIT_TASK_FAILED, StatusLines
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput, StudioError
from skyreels_demo.models import TIERS, ModelSpec
from skyreels_demo.status import RunStatus
from skyreels_demo.store.records import Run
from skyreels_demo.studio.preview import OfflinePreview
from skyreels_demo.studio.studio import Studio
from skyreels_demo.times import DAY_S, HOUR_S, MINUTE_S


def register(add: Callable[..., argparse.ArgumentParser], model: ModelSpec) -> None:
    """The `resume`, `runs`, `balance` and `local-api` commands."""
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
