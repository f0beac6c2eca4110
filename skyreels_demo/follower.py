"""Finishing runs nobody watches: stopped, abandoned, or left from before a restart.

`finish` follows one stored, paid-for run to its end and saves its video; `resume` does that
for one task or every unfinished run (the command line's `resume`); `Follower` is the app's
background thread that does it with a bounded crew of pollers.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Iterator

from .client import WaveSpeedClient
from .errors import ApiError, BadInput, Stopped, StudioError, TaskFailed
from .runs import DONE, LOST, PROCESSING, Run
from .tasks import TaskState

if TYPE_CHECKING:
    from .studio import Studio

log = logging.getLogger(__name__)

# WaveSpeed deletes predictions after 7 days; a run older than that cannot be fetched.
API_RETENTION_S = 7 * 24 * 3600


def finish(
    studio: "Studio",
    run: Run,
    *,
    deadline_s: float | None = None,
    stop: threading.Event | None = None,
    client: WaveSpeedClient | None = None,
) -> Run:
    """Follow one stored, unfinished run to its end and save its video.

    `client`: the one to follow it with (a visitor's key, handed back for this run only);
    by default the one `Access` has for it.
    """
    client = client or studio.access.client_for_run(run)
    if client is None:
        raise ApiError(
            f"Run {run.id} needs the API key that started it: set WAVESPEED_API_KEY "
            "(and WAVESPEED_BASE_URL) to the ones it used, then resume again."
        )
    try:
        task = None
        updates = client.follow(
            run.task_id,
            schedule=studio.schedule_for(run.mode),
            deadline_s=deadline_s,
            stop=stop,
            submitted_ago_s=time.time() - (run.submitted_at or run.created_at),
            pushed=studio.pushed_event(run.task_id),
        )
        saw_queued = False  # the task may have started while nobody was looking
        for task in studio.recording_failures(run, updates):
            saw_queued = saw_queued or task.state is TaskState.QUEUED
            if task.state is not TaskState.QUEUED and run.status != PROCESSING and not task.is_final:
                # Only a start seen as it happened is a duration worth learning from.
                began = time.time() if saw_queued and run.processing_at is None else run.processing_at
                run = studio.store.update(run.id, status=PROCESSING, processing_at=began)
        assert task is not None
        return studio.save_video(run, client, task)
    except TaskFailed:
        return studio.store.get(run.id)
    except ApiError as exc:
        if exc.status == 404 and time.time() - run.created_at > API_RETENTION_S:
            return studio.store.update(
                run.id, status=LOST, error_message="WaveSpeed no longer has this task (kept 7 days)."
            )
        raise


def resume(
    studio: "Studio", task_id: str | None = None, *, deadline_s: float | None = None
) -> Iterator[tuple[Run, Run | StudioError]]:
    """Finish unfinished runs (or one), yielding each run and its end or its error."""
    if task_id:
        run = studio.store.by_task(task_id)
        if run is None:
            raise BadInput(f"No recorded run has task id {task_id}: list them with `runs`.")
        if run.model != studio.model.name:
            # A prompt the vision LLM wrote is recorded for caps, but has no video to fetch.
            raise BadInput(f"Task {task_id} wrote a prompt, it did not make a video: there is nothing to resume.")
        runs = [run]
    else:
        runs = studio.store.unfinished(model=studio.model.name)
    for run in runs:
        if run.status == DONE and run.has_video:
            yield run, run
            continue
        try:
            yield run, finish(studio, run, deadline_s=deadline_s)
        except StudioError as exc:
            yield run, exc


class Follower(threading.Thread):
    """Finishes every submitted run nobody is watching, a bounded crew at a time."""

    def __init__(self, studio: "Studio", *, idle_s: float = 30.0, workers: int = 6) -> None:
        super().__init__(name="skyreels-follower", daemon=True)
        self.studio = studio
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        # A bounded crew: a hundred runs left behind must not become a hundred pollers.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skyreels-finish")

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._pick_up()
            except Exception:  # the follower must outlive any one bad run
                log.exception("follower pass failed")
            self._wake.wait(self.idle_s)

    def _pick_up(self) -> None:
        watched = self.studio.watched()
        for run in self.studio.store.unfinished(model=self.studio.model.name):
            with self._lock:
                if run.id in watched or run.id in self._busy:
                    continue
                if self.studio.access.client_for_run(run) is None:
                    continue
                self._busy.add(run.id)
            self._pool.submit(self._finish, run)

    def _finish(self, run: Run) -> None:
        try:
            end = finish(self.studio, run, stop=self._stop)
            log.info("follower finished run %s: %s", run.id, end.status)
        except Stopped:
            pass
        except StudioError as exc:
            log.warning("follower could not finish run %s: %s", run.id, exc.sentence)
        finally:
            finished = self.studio.store.get(run.id)
            if finished.is_finished:
                self.studio.forget(finished)
            with self._lock:
                self._busy.discard(run.id)
