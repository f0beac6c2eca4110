"""Following a submitted task to its end: ask when the `Poller` says, wait, tick, hear Stop.

`WaveSpeedClient.follow` (client.py) is this loop. It is apart from the client's requests
because it is the one part that waits: it yields the task as it changes (and every TICK_S, so a
screen can show the time passing), tells the `Poller` (schedule.py) what each check saw, and
waits for whichever comes first, the next check, the next tick, Stop or a webhook's push.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Iterator, Protocol

from skyreels_demo.config import Settings
from skyreels_demo.errors import NetworkError, RateLimited, ServiceError, Stopped, TaskGone, TimedOut, task_failed
from skyreels_demo.status import TaskState
from skyreels_demo.wavespeed.retries import RetryPolicy
from skyreels_demo.wavespeed.schedule import Poller, PollSchedule
from skyreels_demo.wavespeed.tasks import Task

class WaveSpeedClient(Protocol):
    """What following a task needs of the client (client.WaveSpeedClient): its settings, its
    retry policy and one check of a task. A protocol, so this loop names nothing of its caller."""

    settings: Settings
    policy: RetryPolicy

    def result(self, task_id: str) -> Task: ...

log = logging.getLogger(__name__)

# How often `follow` yields while it waits, so a UI can show the time passing.
TICK_S = 1.0
# While a webhook may wake a follow, Stop is checked at least this often.
STOP_CHECK_S = 0.2


def follow_task(
    client: "WaveSpeedClient",
    task_id: str,
    *,
    schedule: PollSchedule,
    deadline_s: float | None = None,
    stop: threading.Event | None = None,
    first: Task | None = None,
    submitted_ago_s: float = 0.0,
    pushed: threading.Event | None = None,
) -> Iterator[Task]:
    """Yield the task whenever its status changes, and at least every second while it runs.

    Ends after yielding a final task; a failed one raises `TaskFailed` after it is yielded,
    one WaveSpeed no longer keeps (`deleted`, `expired`) raises `TaskGone`.
    Raises `TimedOut` (with the task id) when `deadline_s` from now passes, and `Stopped`
    when `stop` is set. Transient poll errors are tried again until the deadline.
    `submitted_ago_s` tells the schedule how old the task already is (when resuming);
    `pushed`, when given, is set by a verified webhook: the schedule then polls only as a
    safety net, and confirms at once when it is set.
    """
    budget_s = client.settings.run_deadline_s if deadline_s is None else deadline_s
    poller = Poller(
        schedule,
        age_s=submitted_ago_s,
        answer_in_hand=first is not None,
        push_expected=pushed is not None,
        policy=client.policy,
    )
    deadline = poller.now() + budget_s
    task = first or Task.queued(task_id)
    last_yield = -TICK_S
    # When a check (or the submit's answer) last found the task running: the end came after.
    running_at = time.time() if first is not None and not first.is_final else None
    while True:
        if pushed is not None and pushed.is_set():
            pushed.clear()
            poller.pushed()
        if poller.due_in() <= 0:
            asked_at = time.time()
            fresh = _poll(client, task, poller)
            if fresh is not task and not fresh.is_final:
                running_at = asked_at
            elif fresh.is_final:
                fresh = replace(fresh, ended_after=running_at)
            changed = fresh.state != task.state or fresh.outputs != task.outputs
            task = fresh
            if changed or task.is_final:
                last_yield = poller.now()
                yield task
            if task.is_final:
                _raise_unless_done(task)
                return
        now = poller.now()
        if now >= deadline:
            raise TimedOut(
                f"The video is still being made after {budget_s:.0f} s; it is saved, so "
                "resume it later to fetch the result.",
                task_id=task_id,
                last_status=task.api_status,
            )
        if now - last_yield >= TICK_S:
            last_yield = now
            yield task
        wait = max(0.0, min(poller.due_in(), last_yield + TICK_S - now, deadline - now))
        if _wait(wait, stop, pushed):
            raise Stopped(
                "Stopped waiting. The task still runs on WaveSpeed and is paid for; its "
                "video will be saved to your history when it is done.",
                task_id=task_id,
            )

def _poll(client: "WaveSpeedClient", task: Task, poller: Poller) -> Task:
    """One result request, its outcome told to the poller; the last known task on trouble."""
    poller.polling()
    try:
        fresh = client.result(task.id)
    except RateLimited as exc:
        poller.rate_limited(exc.retry_after)
        return task
    except (ServiceError, NetworkError) as exc:
        if poller.failed():
            raise
        log.info("poll failed (%s); trying again", exc.detail or exc.sentence)
        return task
    poller.saw(fresh.state)
    return fresh


def _raise_unless_done(task: Task) -> None:
    """A final task that did not succeed, as its error: gone (deleted, expired) or failed."""
    if task.state is TaskState.GONE:
        raise TaskGone(task_id=task.id, api_status=task.api_status)
    if not task.succeeded:
        raise task_failed(task.id, task.error_code, task.error)


def _wait(seconds: float, stop: threading.Event | None, pushed: threading.Event | None) -> bool:
    """Sleep up to `seconds`, ending early on a stop or a push; True when stopped."""
    if stop is None and pushed is None:
        time.sleep(seconds)
        return False
    if pushed is None:
        return stop.wait(seconds)  # type: ignore[union-attr]
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if stop is not None and stop.is_set():
            return True
        if remaining <= 0 or pushed.is_set():
            return False
        pushed.wait(min(remaining, STOP_CHECK_S))
