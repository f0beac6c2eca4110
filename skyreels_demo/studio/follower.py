"""Finishing runs nobody watches: stopped, abandoned, or left from before a restart.

`resume` finishes one task or every unfinished run (the command line's `resume`, after
`recover_lost` has looked again for the tasks of `unconfirmed` runs); `Follower` is
the app's background thread that does it with a bounded crew of pollers. Both hand each run to
the one `Finisher` (finisher.py) the studio uses too; neither knows the studio.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Container, Iterator

from skyreels_demo.errors import BadInput, Stopped, StudioError
from skyreels_demo.studio.finisher import Finisher
from skyreels_demo.store.records import Run
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
from skyreels_demo.times import WAVESPEED_RETENTION_S

log = logging.getLogger(__name__)


def resume(
    finisher: Finisher,
    store: RunStore,
    model: str,
    task_id: str | None = None,
    *,
    deadline_s: float | None = None,
) -> Iterator[tuple[Run, Run | StudioError]]:
    """Finish unfinished runs of `model` (or one task), yielding each run and its end or its error."""
    if task_id:
        run = store.by_task(task_id)
        if run is None:
            raise BadInput(f"No recorded run has task id {task_id}: list them with `runs`.")
        if run.model != model:
            # A prompt the vision LLM wrote is recorded for caps, but has no video to fetch.
            raise BadInput(f"Task {task_id} wrote a prompt, it did not make a video: there is nothing to resume.")
        runs = [run]
    else:
        runs = store.unfinished(model=model)
    for run in runs:
        if run.status == RunStatus.DONE and run.has_video:
            yield run, run
            continue
        try:
            yield run, finisher.finish(run, deadline_s=deadline_s)
        except StudioError as exc:
            yield run, exc


def recover_lost(finisher: Finisher, store: RunStore, model: str, *, skip: Container[str] = frozenset()) -> Iterator[Run]:
    """Look again for the task of every `unconfirmed` run of `model` younger than WaveSpeed's
    seven days whose key is at hand (a visitor's is not kept), yielding each as it then is:
    `submitted` with its task, found (for `resume` to finish), or still `unconfirmed`. `skip`:
    runs a live generate is looking after itself."""
    for run in store.unconfirmed(model=model, since=time.time() - WAVESPEED_RETENTION_S):
        if run.id in skip:
            continue
        client = finisher.access.client_for_run(run)
        if client is None:
            continue
        yield finisher.recover(run, client)


class Follower(threading.Thread):
    """Finishes every submitted run of `model` that nobody is watching, a bounded crew at a time."""

    def __init__(
        self,
        finisher: Finisher,
        store: RunStore,
        model: str,
        watched: Callable[[], set[str]],
        *,
        idle_s: float = 30.0,
        workers: int = 6,
    ) -> None:
        super().__init__(name="skyreels-follower", daemon=True)
        self.finisher = finisher
        self.store = store
        self.model = model
        self.watched = watched  # runs a live generate is following: never raced for
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._busy: set[str] = set()
        self._left: set[str] = set()  # runs another process follows, said once each
        self._lock = threading.Lock()
        # A bounded crew: a hundred runs left behind must not become a hundred pollers.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skyreels-finish")

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        self._recover_lost()
        while not self._halt.is_set():
            self._wake.clear()
            try:
                self._pick_up()
            except Exception:  # the follower must outlive any one bad run
                log.exception("follower pass failed")
            self._wake.wait(self.idle_s)

    def _recover_lost(self) -> None:
        """Once, as the app starts: look again for the tasks of `unconfirmed` runs (a restart
        leaves a run whose submit was on its way so), as `resume` does; a task found is then
        finished like any other run left behind."""
        watched = self.watched()
        try:
            for run in recover_lost(self.finisher, self.store, self.model, skip=watched):
                if run.task_id is not None:
                    log.info("follower found run %s's task again", run.id)
        except Exception:  # the follower must outlive any one bad run
            log.exception("looking for lost tasks failed")

    def _pick_up(self) -> None:
        watched = self.watched()
        for run in self.store.unfinished(model=self.model):
            with self._lock:
                if run.id in watched or run.id in self._busy:
                    continue
                if self.finisher.access.client_for_run(run) is None:
                    continue
                if self.finisher.access.made_elsewhere(run):
                    # A command line's run on its own preview server: that process saves its video.
                    if run.id not in self._left:
                        self._left.add(run.id)
                        log.info("leaving run %s to the process whose offline preview made it", run.id)
                    continue
                self._busy.add(run.id)
            self._pool.submit(self._finish, run)

    def _finish(self, run: Run) -> None:
        try:
            end = self.finisher.finish(run, stop=self._halt)
            log.info("follower finished run %s: %s", run.id, end.status)
        except Stopped:
            pass
        except StudioError as exc:
            log.warning("follower could not finish run %s: %s", run.id, exc.sentence)
        finally:
            finished = self.store.get(run.id)
            if finished.is_finished:
                self.finisher.release(finished)
            with self._lock:
                self._busy.discard(run.id)
