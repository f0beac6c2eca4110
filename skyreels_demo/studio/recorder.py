"""A run's life, written in one place: every status change of every kind of run.

The studio, the finisher, the follower, prompt suggestions and variations ask the recorder;
none of them writes a status itself. Its rules are the product's promises: a run is recorded
(within the caps) before anything is spent; a task id is durable the moment submit returns; a
submit whose answer was lost is `unconfirmed`, never `refused` (it counts against the caps,
since it may have been paid for) until its task is found again in WaveSpeed's list of
predictions (recovery.py), when it is `submitted` with that task, as if the answer had come; a
start is timed only when it was seen as it happened.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Iterable

from skyreels_demo.errors import StudioError, SubmitUnconfirmed, TaskFailed
from skyreels_demo.store.records import KeySource, Limit, Mode, Run
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.tasks import Task

log = logging.getLogger(__name__)

STOPPED_BEFORE_SUBMIT = "Stopped before the task was sent: nothing was paid for."


class RunRecorder:
    """Writes each status change of a run to the store, by the rules above.

    `task_ended` hears of every run whose task (or its chance of one) has ended: completed,
    failed, gone, refused or unconfirmed; the line frees the run's slot on it."""

    def __init__(self, store: RunStore, *, task_ended: Callable[[Run], None] = lambda run: None) -> None:
        self.store = store
        self.task_ended = task_ended

    # -- before anything is spent --

    def open(
        self,
        *,
        prompt: str,
        seed: int,
        model: str,
        mode: Mode,
        api_host: str,
        key_source: KeySource,
        requester: str,
        visitor: str = "",
        sweep: str | None = None,
        within: Iterable[Limit] = (),
        **made_of,
    ) -> Run:
        """A new run, `preparing`; refused with `QuotaExceeded` when a cap is reached.

        `made_of`: how it is made again (fit, fps_prefix) and what it belongs to
        (continued_from, film_id, shot)."""
        return self.store.create(
            prompt=prompt,
            seed=seed,
            mode=mode,
            api_host=api_host,
            model=model,
            visitor=visitor,
            key_source=key_source,
            sweep=sweep,
            requester=requester,
            within=within,
            **made_of,
        )

    def image_kept(self, run: Run, sha256: str, path: Path | None) -> Run:
        return self.store.update(run.id, image_sha256=sha256, image_path=str(path) if path else None)

    def image_sent(self, run: Run, url: str, sha256: str | None = None) -> Run:
        """Where the image went; an inline data URI is hundreds of KB, so it is kept by name."""
        kept = f"inline:{sha256}" if url.startswith("data:") and sha256 else url
        return self.store.update(run.id, image_url=kept)

    # -- the submit --

    def submitting(self, run: Run) -> Run:
        """The submit is about to go out: a process that dies from here on may have made a task."""
        return self.store.update(run.id, status=RunStatus.SUBMITTING)

    def submitted(self, run: Run, task_id: str) -> Run:
        """Write-ahead: the task id is durable before anyone hears of it."""
        return self.store.update(run.id, task_id=task_id, status=RunStatus.SUBMITTED, submitted_at=time.time())

    def not_submitted(self, run: Run, exc: BaseException) -> Run:
        """The run ended before a task id came back: `unconfirmed` if the submit's answer was
        lost (it may have been made and paid for), else `refused` (nothing was made)."""
        if isinstance(exc, SubmitUnconfirmed):
            log.warning("run %s: the submit's answer was lost (%s)", run.id, exc.detail or "no detail")
            return self._end(run, RunStatus.UNCONFIRMED, error_message=exc.sentence)
        reason = exc.sentence if isinstance(exc, StudioError) else STOPPED_BEFORE_SUBMIT
        return self._end(run, RunStatus.REFUSED, error_message=reason)

    def recovered(self, run: Run, task_id: str, sent_at: float) -> Run:
        """An `unconfirmed` run's task, found again: the run is `submitted` with it, as it would
        have been had the answer come (`sent_at`: when its submit went out)."""
        log.info("run %s: its lost submit's task %s was found again", run.id, task_id)
        return self.store.update(
            run.id, task_id=task_id, status=RunStatus.SUBMITTED, submitted_at=sent_at, finished_at=None,
            error_message=None,
        )

    def still_unconfirmed(self, run: Run, reason: str) -> Run:
        """Its task was looked for and not told apart: why, in a sentence; it stays `unconfirmed`."""
        return self.store.update(run.id, error_message=reason)

    # -- following the task --

    def seen(self, run: Run, task: Task, *, start_witnessed: bool) -> Run:
        """What a poll (or the submit's answer) said about a task still running.

        Queued is written once, not on every tick. Processing is written once; its start is
        timed only when `start_witnessed` (this follow saw the task queued before), because only
        such a start is a duration worth learning from.
        """
        if task.is_final:
            return run
        if task.state is TaskState.QUEUED:
            if run.status == RunStatus.SUBMITTED:
                return self.store.update(run.id, status=RunStatus.QUEUED)
            return run
        if run.status == RunStatus.PROCESSING:
            return run
        began = run.processing_at
        if began is None and start_witnessed:
            began = time.time()
        return self.store.update(run.id, status=RunStatus.PROCESSING, processing_at=began)

    def failed(self, run: Run, exc: TaskFailed) -> Run:
        """The task ended failed on WaveSpeed (refunded)."""
        return self._end(run, RunStatus.FAILED, error_code=exc.code, error_message=exc.message or exc.sentence)

    def answer_lost(self, run: Run, exc: BaseException) -> Run:
        """A call that was submitted ended without its answer (a prompt suggestion): it counts as made."""
        reason = exc.sentence if isinstance(exc, StudioError) else "stopped before an answer came"
        return self._end(run, RunStatus.FAILED, error_message=reason)

    def completed(self, run: Run, task: Task) -> Run:
        """The task is done on WaveSpeed; its video is not saved yet (its URL expires)."""
        if self.store.get(run.id).status in (RunStatus.COMPLETED, RunStatus.DONE):
            return self.store.get(run.id)
        run = self.store.update(
            run.id,
            status=RunStatus.COMPLETED,
            finished_at=time.time(),
            output_url=task.video_url,
            inference_ms=task.inference_ms,
            nsfw=int(task.is_nsfw),
            ended_after=task.ended_after,
        )
        self.task_ended(run)
        return run

    def saved(self, run: Run, video_path: Path) -> Run:
        return self.store.update(run.id, status=RunStatus.DONE, video_path=str(video_path))

    def answered(self, run: Run, inference_ms: int | None) -> Run:
        """A call with no video (a prompt suggestion) got its answer."""
        return self._end(run, RunStatus.DONE, inference_ms=inference_ms)

    def lost(self, run: Run, reason: str) -> Run:
        """WaveSpeed no longer has the task: nothing more can be fetched, so the run is finished."""
        return self._end(run, RunStatus.LOST, error_message=reason)

    def _end(self, run: Run, status: RunStatus, **fields) -> Run:
        run = self.store.update(run.id, status=status, finished_at=time.time(), **fields)
        self.task_ended(run)
        return run
