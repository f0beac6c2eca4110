"""Finding a task again whose submit's answer was lost, in WaveSpeed's list of predictions.

A submit whose answer was lost (dropped, timed out, unreadable, a 5xx after sending) may have
made its task, and it is paid for. The list's items carry no input, so the task is matched by
model and creation time: the tasks of the run's model created from the moment its submit went
out to the moment its answer could last have come (each give or take `CLOCK_SLACK_S`, for the
two clocks), less every task a stored run owns. Exactly one such task, and no other run of the
same account sent around then without an answer: that is the run's task. None, more than one,
or another run that could own it: not known, said in a sentence, and the run stays
`unconfirmed`. A backend without the list (404) leaves the run as it was. The submit itself is
never sent again.

Nothing here records anything: `Finisher.recover` (finisher.py) writes what `search` decides.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.errors import StudioError, SubmitUnconfirmed
from skyreels_demo.store.records import Run
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import RunStatus
from skyreels_demo.wavespeed.tasks import Task

log = logging.getLogger(__name__)

# How far WaveSpeed's clock and this machine's may disagree, and the list lag behind, in seconds.
CLOCK_SLACK_S = 20.0
# A submit's answer comes within its timeouts (connect and read, client.py) and a few 429s'
# waits (retries.py); past this after it went out, an answer was lost for sure.
ANSWER_WAIT_S = 60.0


@dataclass(frozen=True)
class Search:
    """What the list says about a run's lost task: the task (found), else why not, in words."""

    task: Task | None
    sentence: str
    sent_at: float
    looked: bool = True  # False: the list is not offered here (404), so nothing was learned

    @property
    def found(self) -> bool:
        return self.task is not None


def unknown(why: str) -> str:
    """The sentence for a run whose task could not be told: it starts as every unconfirmed
    run's sentence does, so a person reads the same words first wherever they see it."""
    return (
        f"WaveSpeed may have made this video; it is not known, because its answer was lost and {why}: "
        "check your WaveSpeed history before trying again."
    )


def window(run: Run, statuses: list[tuple[float, str]], client: WaveSpeedClient, now: float) -> tuple[float, float, float]:
    """(when its submit went out, earliest, latest) creation time its task may carry."""
    sent = [at for at, status in statuses if status == str(RunStatus.SUBMITTING)]
    lost = [at for at, status in statuses if status == str(RunStatus.UNCONFIRMED)]
    sent_at = sent[-1] if sent else run.created_at
    lost_at = lost[-1] if lost and lost[-1] >= sent_at else now
    settings = client.settings
    answer_by = sent_at + settings.connect_timeout_s + settings.submit_timeout_s + ANSWER_WAIT_S
    return sent_at, sent_at - CLOCK_SLACK_S, min(lost_at, answer_by) + CLOCK_SLACK_S


def search(store: RunStore, client: WaveSpeedClient, run: Run, *, original: str | None = None) -> Search:
    """Look for `run`'s task in the list of predictions of `client`'s account.

    `original`: the sentence to keep when the list is not offered (404)."""
    sent_at, since, until = window(run, store.statuses(run.id), client, time.time())
    kept = original or run.error_message or SubmitUnconfirmed.sentence_for("video")
    try:
        listed = client.find_tasks(run.model, since, until)
    except StudioError as exc:
        if getattr(exc, "status", None) == 404:
            log.info("run %s: this API offers no list of predictions; it stays unconfirmed", run.id)
            return Search(None, kept, sent_at, looked=False)
        log.warning("run %s: the list of predictions could not be read (%s)", run.id, getattr(exc, "detail", None) or exc.sentence)
        return Search(None, unknown("your WaveSpeed history could not be looked through just now"), sent_at)
    free = [task for task in listed if store.by_task(task.id) is None]
    others = store.unanswered_submits(run, since - ANSWER_WAIT_S, until)
    log.info(
        "run %s: %d task(s) of %s made around its submit, %d owned by no run; %d other run(s) sent then await an answer",
        run.id, len(listed), run.model, len(free), len(others),
    )
    if not free:
        return Search(None, unknown("no task made around then was found in your WaveSpeed history"), sent_at)
    if len(free) > 1:
        return Search(None, unknown(f"{len(free)} tasks made around then could each be it"), sent_at)
    if others:
        return Search(
            None, unknown("another video sent at the same time has no answer either, so which task is whose is not known"), sent_at
        )
    return Search(free[0], "", sent_at)
