"""Following a stored run to its video: one finisher for the studio, the follower, `resume` and
History's "Finish with my key".

`follow` walks a submitted task's updates, recording each (recorder.py) as it passes them on;
`save` records completion and downloads the video at once (WaveSpeed's URLs expire); `finish`
does both for a run nobody is watching; `recover` finds the task of a run whose submit's answer
was lost (recovery.py), so it can be followed as the run it was. `release` lets a finished run's
key and webhook secret leave memory.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from skyreels_demo.studio.access import Access
from skyreels_demo.wavespeed.client import Job, WaveSpeedClient
from skyreels_demo.errors import ApiError, TaskFailed, TaskGone
from skyreels_demo.studio.recorder import RunRecorder
from skyreels_demo.studio.recovery import search, unknown
from skyreels_demo.store.records import Mode, Run
from skyreels_demo.status import RunStatus
from skyreels_demo.wavespeed.schedule import PollSchedule
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.tasks import Task
from skyreels_demo.studio.hub import WebhookHub
from skyreels_demo.times import WAVESPEED_RETENTION_S

log = logging.getLogger(__name__)


def video_name(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)[:128] + ".mp4"


class Finisher:
    """Follows submitted runs to their saved videos, recording every step."""

    def __init__(
        self,
        *,
        recorder: RunRecorder,
        access: Access,
        videos_dir: Path,
        schedule_for: Callable[[Mode], PollSchedule],
        webhooks: WebhookHub | None = None,
        after_save: Callable[[], None] = lambda: None,
    ) -> None:
        self.recorder = recorder
        self.access = access
        self.videos_dir = videos_dir
        self.schedule_for = schedule_for
        self.webhooks = webhooks
        self.after_save = after_save

    def pushed_event(self, task_id: str | None) -> threading.Event | None:
        """What a verified webhook sets for this task, or None when none is expected."""
        return self.webhooks.pushed_event(task_id) if self.webhooks is not None else None

    def follow(
        self,
        run: Run,
        job: Job,
        *,
        stop: threading.Event | None = None,
        deadline_s: float | None = None,
    ) -> Iterator[Task]:
        """The task's updates, each recorded before it is passed on; a failed task is recorded
        as failed before its `TaskFailed` goes up, one WaveSpeed no longer keeps as lost before
        its `TaskGone` does (a lost run is finished: nothing follows it again)."""
        updates = job.follow(
            schedule=self.schedule_for(run.mode),
            deadline_s=deadline_s,
            stop=stop,
            submitted_ago_s=max(0.0, time.time() - (run.submitted_at or run.created_at)),
            pushed=self.pushed_event(run.task_id),
        )
        # A start counts as seen only if this follow saw the task waiting first.
        saw_queued = job.in_hand and job.task.state is TaskState.QUEUED
        try:
            for task in updates:
                saw_queued = saw_queued or task.state is TaskState.QUEUED
                run = self.recorder.seen(run, task, start_witnessed=saw_queued)
                yield task
        except TaskFailed as exc:
            self.recorder.failed(run, exc)
            raise
        except TaskGone as exc:
            log.info("run %s: WaveSpeed answers %r for task %s", run.id, exc.api_status, exc.task_id)
            self.recorder.lost(run, exc.sentence)
            raise

    def save(self, run: Run, client: WaveSpeedClient, task: Task) -> Run:
        """Record completion, then download the video at once: WaveSpeed's URLs expire."""
        run = self.recorder.completed(run, task)
        if not task.video_url:
            raise TaskFailed(
                "WaveSpeed finished the task but returned no video: try again (failed tasks are refunded).",
                task_id=task.id,
                code=None,
                message="no outputs",
            )
        dest = self.videos_dir / video_name(task.id)
        client.download(task.video_url, dest)
        run = self.recorder.saved(run, dest)
        self.after_save()
        return run

    def finish(
        self,
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
        client = client or self.access.client_for_run(run)
        if client is None:
            raise ApiError(
                f"Run {run.id} needs the API key that started it: set WAVESPEED_API_KEY "
                "(and WAVESPEED_BASE_URL) to the ones it used, then resume again."
            )
        assert run.task_id is not None
        if self.access.made_elsewhere(run):
            raise ApiError(
                f"Run {run.id} is being made by another process's offline preview (the app, or another "
                "command): that process saves its video. Resume it once that process has stopped."
            )
        task = None
        try:
            for task in self.follow(run, client.job(run.task_id), stop=stop, deadline_s=deadline_s):
                pass
            assert task is not None
            return self.save(self.recorder.store.get(run.id), client, task)
        except (TaskFailed, TaskGone):
            return self.recorder.store.get(run.id)
        except ApiError as exc:
            # Older than WaveSpeed keeps a prediction: deleted there, it can never be fetched.
            if exc.status == 404 and time.time() - run.created_at > WAVESPEED_RETENTION_S:
                return self.recorder.lost(run, TaskGone.SENTENCE)
            raise

    def recover(self, run: Run, client: WaveSpeedClient, *, original: str | None = None) -> Run:
        """An `unconfirmed` run: its task, if the list of predictions tells it apart, recorded
        (the run is then `submitted` with it, to be followed as usual); else the run stays
        `unconfirmed` with a sentence saying why not. `original`: the sentence to keep when this
        API offers no list."""
        if run.status != RunStatus.UNCONFIRMED or run.task_id is not None:
            return run
        found = search(self.recorder.store, client, run, original=original)
        if found.task is None:
            return self.recorder.still_unconfirmed(run, found.sentence)
        try:
            return self.recorder.recovered(run, found.task.id, found.sent_at)
        except sqlite3.IntegrityError:  # another run took that task a moment before
            return self.recorder.still_unconfirmed(run, unknown("its task may be another run's"))

    def release(self, run: Run) -> None:
        """A finished run's key and webhook secret leave memory."""
        self.access.forget(run.id)
        if self.webhooks is not None:
            self.webhooks.forget(run.task_id)
