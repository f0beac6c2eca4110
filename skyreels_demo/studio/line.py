"""The line for a shared account: a place for every waiting run, and submits paced to the account.

A Space runs on its owner's key, and WaveSpeed's default tier (Bronze, every new account's)
runs 2 tasks at once and starts 2 a minute. Every run paid by the owner's key (page, API, MCP,
each variation, a film's shot) takes a ticket here and waits, first come first served, for one
of the account's slots; the offline preview has a line of its own (this machine's CPU); a run on
a visitor's own key waits in no line (their key, their tier). A waiting run is told its place
(runs ahead of it) and an estimate from what the app has learned about task times, the number
of slots and the pace of submits.

A slot is the account's, not the visitor's: once a run's task is submitted, its place is held
until the task ends, whether anyone still watches it or not (a closed tab leaves the task
running on WaveSpeed, and finished by the follower; the studio says when it ends).

Submits are spread evenly, at most one every interval of the tier's pace (60 s over its submits
a minute), so a burst never meets WaveSpeed's 429s; a 429 that comes all the same is waited out
in view, never spent as a failed run, for as long and as many times as the retry policy says
(wavespeed/retries.py: the server's Retry-After, else one interval of the pace).

Waiting is cheap: a ticket is a few fields, and a run in line holds no worker thread while async
code watches it (watching.py asks the run for its next event only when the line has moved).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from skyreels_demo.errors import RateLimited, Stopped, StudioError
from skyreels_demo.models import BRONZE
from skyreels_demo.studio.events import Event, InLine, SlowedDown
from skyreels_demo.studio.recorder import STOPPED_BEFORE_SUBMIT as STOPPED_IN_LINE
from skyreels_demo.wavespeed.retries import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)

OWNER, PREVIEW = "owner", "preview"  # the accounts with a line: the owner's key, this machine
REFRESH_S = 5.0  # a waiting run's estimate is brought up to date at least this often
STOP_CHECK_S = 0.5  # how soon a blocked wait notices Stop


def pace_s(submits_per_minute: float) -> float:
    """Seconds between submits that keep to a tier's submits a minute (0: not paced)."""
    return 60.0 / submits_per_minute if submits_per_minute > 0 else 0.0


# A key whose tier the app does not know (a visitor's own) is paced after a 429 as every new
# account is: WaveSpeed's default tier.
UNKNOWN_TIER_PACE_S = pace_s(BRONZE.submits_per_minute)


class LineRefused(StudioError):
    """The line is too long (or full) to join: nothing was sent or paid for."""


@dataclass(eq=False)
class Ticket:
    """One run's place in its account's line; `started_at` is set once it holds a slot, and
    `run_id` once its task is submitted (the slot is then held until that task ends)."""

    number: int
    account: str
    arrived_at: float
    started_at: float | None = None
    run_id: str | None = None


@dataclass
class _Account:
    """One account's waiting tickets (in order), the ones holding slots, and its pacing."""

    slots: int
    submit_interval_s: float  # 0: not paced
    task_s: float = 60.0  # what a run takes from its slot to its video, as last learned
    waiting: list[Ticket] = field(default_factory=list)
    running: list[Ticket] = field(default_factory=list)
    next_submit_at: float = 0.0
    last_answer_at: float = float("-inf")  # when the last submit's answer (or error) came


class Line:
    """The lines of this process's accounts, behind one lock; `version` moves at every change."""

    def __init__(
        self,
        *,
        slots: int,
        submits_per_minute: float,
        size: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        in_flight: Callable[[str], bool] = lambda run_id: False,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.size = max(1, size)
        self.max_wait_s = max_wait_s
        self.clock = clock
        # Whether a run's task is still running (the run store's word): a slot whose run left
        # the line is held while it is, and let go at the latest when it is seen not to be.
        self.in_flight = in_flight
        self.policy = policy  # how often, and how long, a 429 to a submit is waited out
        self._accounts = {
            OWNER: _Account(max(1, slots), pace_s(submits_per_minute)),
            # This machine's renders: as many at once as the owner's, not paced (no tier to meet).
            PREVIEW: _Account(max(1, slots), 0.0),
        }
        self._numbers = itertools.count(1)
        self._tickets: dict[int, Ticket] = {}  # waiting tickets by number, for async watchers
        self._changed = threading.Condition()
        self.version = 0

    # -- what a waiting run is told --

    def estimate_s(self, ticket: Ticket) -> float:
        """Seconds until `ticket` gets a slot and may submit (0 once it holds one)."""
        with self._changed:
            return self._estimate(ticket)

    def _estimate(self, ticket: Ticket) -> float:
        account = self._accounts[ticket.account]
        if ticket.started_at is not None:
            return 0.0
        now = self.clock()
        ahead = account.waiting.index(ticket) if ticket in account.waiting else len(account.waiting)
        return _wait_for_slot(account, ahead, now)

    def place(self, ticket: Ticket) -> InLine:
        with self._changed:
            return self._place(ticket)

    def _place(self, ticket: Ticket, elapsed_s: float = 0.0) -> InLine:
        account = self._accounts[ticket.account]
        ahead = account.waiting.index(ticket) if ticket in account.waiting else 0
        return InLine(
            elapsed_s, ahead=ahead, estimate_s=self._estimate(ticket), line_version=self.version, ticket=ticket.number
        )

    def refreshed(self, seen: InLine, elapsed_s: float) -> InLine | None:
        """The same ticket's place now, for a watcher that need not wake the run; None once it is
        the ticket's turn (or it left): then the run itself must be asked."""
        with self._changed:
            ticket = self._tickets.get(seen.ticket)
            if ticket is None:
                return None
            line = self._accounts[ticket.account]
            if line.waiting and line.waiting[0] is ticket and self._free_slot(line):
                return None
            return self._place(ticket, elapsed_s)

    def waiting(self, account: str = OWNER) -> int:
        with self._changed:
            return len(self._accounts[account].waiting)

    def running(self, account: str = OWNER) -> int:
        with self._changed:
            return len(self._accounts[account].running)

    # -- joining, waiting and leaving --

    def join(self, account: str, task_s: float) -> Ticket:
        """A ticket at the back of `account`'s line, or `LineRefused` if the wait would be too long."""
        with self._changed:
            line = self._accounts[account]
            line.task_s = max(1.0, task_s)
            if len(line.waiting) >= self.size:
                raise LineRefused(
                    f"The line is full right now ({len(line.waiting)} runs waiting): paste your own "
                    "WaveSpeed key to skip it, or come back later."
                )
            wait_s = _wait_for_slot(line, len(line.waiting), self.clock())
            if wait_s > self.max_wait_s:
                raise LineRefused(
                    f"The line is about {wait_s / 60:.0f} minutes long right now: paste your own "
                    "WaveSpeed key to skip it, or come back later."
                )
            ticket = Ticket(next(self._numbers), account, self.clock())
            line.waiting.append(ticket)
            self._tickets[ticket.number] = ticket
            self._moved()
            return ticket

    def wait(self, ticket: Ticket, stop: threading.Event | None, elapsed: Callable[[], float]) -> Iterator[InLine]:
        """Until `ticket` holds a slot, yielding its place whenever the line moves (and every
        REFRESH_S); raises `Stopped` when `stop` is set."""
        seen, shown_at = -1, float("-inf")
        while True:
            with self._changed:
                if stop is not None and stop.is_set():
                    raise Stopped(STOPPED_IN_LINE)
                line = self._accounts[ticket.account]
                if line.waiting and line.waiting[0] is ticket and self._free_slot(line):
                    line.waiting.pop(0)
                    self._tickets.pop(ticket.number, None)
                    ticket.started_at = self.clock()
                    line.running.append(ticket)
                    self._moved()
                    return
                now = self.clock()
                if self.version == seen and now - shown_at < REFRESH_S:
                    self._changed.wait(timeout=min(STOP_CHECK_S, REFRESH_S - (now - shown_at)))
                    continue
                seen, shown_at = self.version, now
                place = self._place(ticket, elapsed())
            yield place

    def hold(self, ticket: Ticket, run_id: str) -> None:
        """The ticket's task is submitted: its slot is held until `task_ended(run_id)`."""
        with self._changed:
            ticket.run_id = run_id

    def leave(self, ticket: Ticket) -> None:
        """The run is done with the line (its video saved, failed, stopped or its tab closed).
        A slot whose task still runs stays taken until the task ends."""
        with self._changed:
            line = self._accounts[ticket.account]
            self._tickets.pop(ticket.number, None)
            if ticket in line.waiting:
                line.waiting.remove(ticket)
                self._moved()
            elif ticket in line.running and not (ticket.run_id and self.in_flight(ticket.run_id)):
                line.running.remove(ticket)
                self._moved()

    def task_ended(self, run_id: str) -> None:
        """The task of `run_id` ended (done, failed, gone): its slot is free, watched or not."""
        with self._changed:
            for line in self._accounts.values():
                for ticket in [t for t in line.running if t.run_id == run_id]:
                    line.running.remove(ticket)
                    self._moved()

    def _free_slot(self, line: _Account) -> bool:
        """Whether a slot is free, after letting go of any held for a task that has ended unheard."""
        if len(line.running) < line.slots:
            return True
        ended = [t for t in line.running if t.run_id and not self.in_flight(t.run_id)]
        for ticket in ended:
            line.running.remove(ticket)
        if ended:
            self._moved()
        return len(line.running) < line.slots

    def _moved(self) -> None:
        self.version += 1
        self._changed.notify_all()

    # -- submits, paced --

    def submit(
        self,
        ticket: Ticket | None,
        send: Callable[[], Any],
        stop: threading.Event | None,
        elapsed: Callable[[], float],
    ) -> Iterator[Event]:
        """Send a submit in its turn (at most one every interval of the pace on a paced account),
        waiting out each 429 in view, as often as the policy allows; returns what `send` returned.

        Use as `result = yield from line.submit(...)`. `ticket` None: a visitor's own key, not
        paced here, whose 429s are waited out all the same."""
        attempts = self.policy.paced_attempts
        for attempt in range(1, attempts + 1):
            wait_s = self._submit_turn(ticket)
            if wait_s > 0:
                # Next, and sent in a moment: no line to watch (version -1), the wait is this one.
                yield InLine(elapsed(), ahead=0, estimate_s=wait_s, line_version=-1)
                _sleep(wait_s, stop)
            while (late_s := self._since_last_answer(ticket)) > 0:
                _sleep(late_s, stop)  # the submit before this one took long to answer
            try:
                return send()
            except RateLimited as exc:
                if attempt == attempts:
                    raise
                pause = self._slowed_down(ticket, exc.retry_after)
                log.info("WaveSpeed answered 429 to a submit; waiting %.1f s before sending it again", pause)
                yield SlowedDown(elapsed(), pause)
                _sleep(pause, stop)
            finally:
                self._answered(ticket)
        raise AssertionError("unreachable")

    def _since_last_answer(self, ticket: Ticket | None) -> float:
        """Seconds still to wait so that this submit leaves a whole interval after the last one's
        answer: WaveSpeed counts a submit when it arrives, somewhere before its answer."""
        if ticket is None:
            return 0.0
        with self._changed:
            line = self._accounts[ticket.account]
            return line.last_answer_at + line.submit_interval_s - self.clock()

    def _answered(self, ticket: Ticket | None) -> None:
        if ticket is not None:
            with self._changed:
                line = self._accounts[ticket.account]
                line.last_answer_at = self.clock()
                line.next_submit_at = max(line.next_submit_at, line.last_answer_at + line.submit_interval_s)

    def _submit_turn(self, ticket: Ticket | None) -> float:
        """Reserve the next submit time on the ticket's account; seconds to wait for it."""
        if ticket is None:
            return 0.0
        with self._changed:
            line = self._accounts[ticket.account]
            if line.submit_interval_s <= 0:
                return 0.0
            now = self.clock()
            at = max(now, line.next_submit_at)
            line.next_submit_at = at + line.submit_interval_s
            return at - now

    def _slowed_down(self, ticket: Ticket | None, retry_after: float | None) -> float:
        """How long to wait after a 429; the whole account waits as long, not only this run."""
        pace = UNKNOWN_TIER_PACE_S
        if ticket is not None and self._accounts[ticket.account].submit_interval_s > 0:
            pace = self._accounts[ticket.account].submit_interval_s
        pause = self.policy.slowdown(retry_after, pace)
        if ticket is not None:
            with self._changed:
                line = self._accounts[ticket.account]
                line.next_submit_at = max(line.next_submit_at, self.clock() + pause)
        return pause

    # -- a run's whole time in the line --

    @contextmanager
    def turn(
        self, account: str | None, task_s: float, stop: threading.Event | None, elapsed: Callable[[], float]
    ) -> Iterator["Turn"]:
        """A run's time in `account`'s line (None: no line), from joining to the end of the block."""
        ticket = self.join(account, task_s) if account is not None else None
        try:
            yield Turn(self, ticket, stop, elapsed)
        finally:
            if ticket is not None:
                self.leave(ticket)


@dataclass
class Turn:
    """What a run does with its place: wait for a slot, then submit in its turn."""

    line: Line
    ticket: Ticket | None
    stop: threading.Event | None
    elapsed: Callable[[], float]

    def wait(self) -> Iterator[InLine]:
        if self.ticket is not None:
            yield from self.line.wait(self.ticket, self.stop, self.elapsed)

    def hold(self, run_id: str) -> None:
        """The task is submitted: the place is held until it ends, watched or not."""
        if self.ticket is not None:
            self.line.hold(self.ticket, run_id)

    def submit(self, send: Callable[[], Any]) -> Iterator[Event]:
        return self.line.submit(self.ticket, send, self.stop, self.elapsed)


def _wait_for_slot(line: _Account, ahead: int, now: float) -> float:
    """When the run with `ahead` runs before it gets a slot and may submit, simulated: each slot
    frees when its run's usual time is up (a late run: any moment now), the runs ahead take the
    earliest free slots in order, and submits keep at least the account's interval apart."""
    frees = sorted(max(now, t.started_at + line.task_s) for t in line.running if t.started_at is not None)
    frees = [now] * max(0, line.slots - len(frees)) + frees
    frees.sort()
    submit_at = max(now, line.next_submit_at)
    start = now
    for _ in range(ahead + 1):
        start = max(frees.pop(0), submit_at)
        submit_at = start + line.submit_interval_s
        frees.append(start + line.task_s)
        frees.sort()
    return max(0.0, start - now)


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    """Wait `seconds`, or until Stop, which ends the run before anything is sent."""
    if stop is None:
        time.sleep(seconds)
        return
    if stop.wait(seconds):
        raise Stopped(STOPPED_IN_LINE)

