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

Submits are spread evenly, at most one every 60/N seconds, so a burst never meets WaveSpeed's
429s; a 429 that comes all the same is waited out in view, never spent as a failed run.

Waiting is cheap: a ticket is a few fields, and `watch` drives a run's events from async code
so that a run in line holds no worker thread (it sleeps on the event loop and asks the run for
its next event only when the line has moved, or now and then to refresh the estimate).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

from skyreels_demo.errors import RateLimited, Stopped, StudioError
from skyreels_demo.studio.events import Event, InLine, Prepared, SlowedDown
from skyreels_demo.models import BRONZE
from skyreels_demo.studio.recorder import STOPPED_BEFORE_SUBMIT as STOPPED_IN_LINE

log = logging.getLogger(__name__)

OWNER, PREVIEW = "owner", "preview"  # the accounts with a line: the owner's key, this machine
REFRESH_S = 5.0  # a waiting run's estimate is brought up to date at least this often
STOP_CHECK_S = 0.5  # how soon a blocked wait notices Stop
SLOWDOWN_TRIES = 8  # submits a run sends in all while WaveSpeed keeps answering 429


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
    ) -> None:
        self.size = max(1, size)
        self.max_wait_s = max_wait_s
        self.clock = clock
        # Whether a run's task is still running (the run store's word): a slot whose run left
        # the line is held while it is, and let go at the latest when it is seen not to be.
        self.in_flight = in_flight
        interval = 60.0 / submits_per_minute if submits_per_minute > 0 else 0.0
        self._accounts = {
            OWNER: _Account(max(1, slots), interval),
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
        """Send a submit in its turn (at most one every 60/N seconds on a paced account),
        waiting out each 429 in view; returns what `send` returned.

        Use as `result = yield from line.submit(...)`. `ticket` None: a visitor's own key, not
        paced here, whose 429s are waited out all the same."""
        for attempt in range(1, SLOWDOWN_TRIES + 1):
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
                if attempt == SLOWDOWN_TRIES:
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
        fallback = 60.0 / BRONZE.submits_per_minute  # a key of unknown tier: the default's pace
        if ticket is not None and self._accounts[ticket.account].submit_interval_s > 0:
            fallback = self._accounts[ticket.account].submit_interval_s
        pause = retry_after if retry_after is not None and retry_after > 0 else fallback
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

    # -- async code that watches a run --

    async def until_moved(self, version: int, stop: threading.Event | None, *, every: float = 0.25) -> None:
        """Sleep on the event loop (no thread) until the line moves, Stop, or REFRESH_S passes."""
        give_up = time.monotonic() + REFRESH_S
        while self.version == version and time.monotonic() < give_up:
            if stop is not None and stop.is_set():
                return
            await asyncio.sleep(every)


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


def few_memory_arenas(arenas: int = 2) -> bool:
    """Ask glibc for few malloc arenas in this process (as MALLOC_ARENA_MAX would): a crowd
    arriving at once prepares its images in several worker threads, and each thread's own arena
    keeps its freed pages, about 2 MB of resident memory per visitor that never comes back.
    Returns whether it took (not on other C libraries)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(-8, arenas))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    """Wait `seconds`, or until Stop, which ends the run before anything is sent."""
    if stop is None:
        time.sleep(seconds)
        return
    if stop.wait(seconds):
        raise Stopped(STOPPED_IN_LINE)


_DONE = object()
ARRIVING_AT_ONCE = 4  # runs preparing their image or stepping in line at once, in worker threads
RUNNING_AT_ONCE = 1000  # runs past their turn: bounded by the line's slots and visitors' caps
_limiters: dict[str, Any] = {}


def _limiter(name: str) -> Any:
    """The worker threads a run's steps take, apart from the small pool the server and Gradio
    share for uploads and quick events (server.py), so that runs never starve those:
    "arriving" (preparing an image, joining the line) shares a few, so a crowd arriving at once
    does not take a thread (and its memory) each; "running" (submitting and following a task,
    about one thread per task in flight) is as many as there are runs past their turn."""
    import anyio

    if name not in _limiters:
        _limiters[name] = anyio.CapacityLimiter(ARRIVING_AT_ONCE if name == "arriving" else RUNNING_AT_ONCE)
    return _limiters[name]


def _close_when_idle(close, wait_s: float = 30.0) -> None:
    """Close a generator that another thread may still be running a step of."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            close()
            return
        except ValueError:  # "generator already executing": its step ends soon, stop is set
            if time.monotonic() > deadline:
                log.warning("a run's events could not be closed: its step did not end")
                return
            time.sleep(0.05)


T = TypeVar("T")


def _itself(item: Any) -> Any:
    return item


async def watch(
    events: Iterator[T],
    line: Line,
    stop: threading.Event | None,
    *,
    event_of: Callable[[T], Event | None] = _itself,
    with_place: Callable[[T, InLine], T] = lambda _item, place: place,  # type: ignore[assignment, return-value]
) -> AsyncIterator[T]:
    """A run's events, for async code: each step runs in a worker thread, but while the run is in
    line no thread is held (the next event is asked for only once the line has moved).

    The items may wrap a run's events (a film's updates: `event_of` finds the event in one, and
    `with_place` makes the same item with its place brought up to date)."""
    import anyio.to_thread

    arriving = True  # until the run's turn: its image prepared, its place in line
    left = True  # the watcher went away (a closed tab, a cancelled call) rather than the run ending
    try:
        while True:
            limiter = _limiter("arriving" if arriving else "running")
            try:
                item = await anyio.to_thread.run_sync(next, events, _DONE, limiter=limiter)
            except Exception:
                left = False  # the run itself ended, with its error
                raise
            if item is _DONE:
                left = False
                return
            event = event_of(item)
            in_line = isinstance(event, InLine) and event.line_version >= 0
            arriving = arriving and (isinstance(event, Prepared) or in_line)
            yield item
            # In line: the place is brought up to date here, on the event loop; the run itself
            # (and a thread) is asked again only when its turn has come, or for Stop.
            received = time.monotonic()
            while isinstance(event, InLine) and event.line_version >= 0:
                await line.until_moved(event.line_version, stop)
                if stop is not None and stop.is_set():
                    break
                event = line.refreshed(event, event.elapsed_s + time.monotonic() - received)
                received = time.monotonic()
                if event is not None:
                    yield with_place(item, event)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            if left and stop is not None:
                # Nobody watches any more: the run stops waiting (a paid task is finished unseen).
                stop.set()
            # A closed tab or Stop: the run leaves the line (its generator's blocks unwind), once
            # the step running in a worker thread, if any, has heard the stop. Shielded: a
            # cancelled watcher must still let the run record where it stands.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close_when_idle, close, limiter=_limiter("running"))
