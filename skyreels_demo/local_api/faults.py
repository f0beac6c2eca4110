"""Fault switches: make the next requests or tasks misbehave on purpose, one at a time.

Tests arm a switch (`backend.faults.rate_limit("submit")`), and the next matching request gets
the canned answer instead of the real one, so the client's retries and error sentences can be
tested over real HTTP. Nothing here knows HTTP: the routes turn a canned answer into a response.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CannedAnswer:
    """An answer that replaces (or, with truncate, mangles) the real one for one request."""

    status: int = 200
    code: int = 200
    message: str = ""
    retry_after: float | None = None
    truncate: bool = False
    drop: bool = False  # handled, then the connection is cut before the answer is whole


@dataclass(frozen=True)
class AnswerFaults:
    """What the next vision LLM answer is made to do."""

    failure: tuple[int, str] | None = None
    unfinished: bool = False


@dataclass(frozen=True)
class TaskFaults:
    """What the next submitted task is made to do."""

    failure: tuple[int, str] | None = None
    hang: bool = False
    nsfw: bool = False
    missing_output: bool = False


class Faults:
    """Switches that make the next matching requests or tasks misbehave; each use consumes one.

    Request faults queue per kind of request, in the order they were armed; the kinds are the
    ones the route groups declare (today "upload", "submit", "result", "file", "llm"). `slow`
    queues separately and delays whatever answer the request gets.
    """

    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = tuple(kinds)
        self._lock = threading.Lock()
        self._answers: dict[str, collections.deque[CannedAnswer]] = {k: collections.deque() for k in self.kinds}
        self._delays: dict[str, collections.deque[float]] = {k: collections.deque() for k in self.kinds}
        self._task_failures: collections.deque[tuple[int, str]] = collections.deque()
        self._hangs = 0
        self._nsfw = 0
        self._missing_outputs = 0
        self._answer_failures: collections.deque[tuple[int, str]] = collections.deque()
        self._unfinished_answers = 0

    def rate_limit(self, kind: str, times: int = 1, retry_after: float | None = 1.0) -> None:
        """The next `times` calls of `kind` get HTTP 429, with Retry-After unless None.

        Nothing is created by a refused call.
        """
        answer = CannedAnswer(429, 429, "Too many requests: rate limit exceeded, slow down.", retry_after)
        self._queue(kind, [answer] * times)

    def server_errors(self, kind: str, statuses: tuple[int, ...] = (500, 502, 503, 504)) -> None:
        """The next len(statuses) calls of `kind` get those HTTP statuses, in order."""
        answers = [CannedAnswer(s, s, f"Server error {s}: please try again later.") for s in statuses]
        self._queue(kind, answers)

    def envelope_error(
        self, kind: str, code: int = 500, message: str = "internal error", times: int = 1
    ) -> None:
        """The next `times` calls of `kind` get HTTP 200 whose envelope code is `code`."""
        self._queue(kind, [CannedAnswer(200, code, message)] * times)

    def truncate(self, kind: str, times: int = 1) -> None:
        """The next `times` calls of `kind` are handled, but only half the body is sent."""
        self._queue(kind, [CannedAnswer(truncate=True)] * times)

    def drop(self, kind: str, times: int = 1) -> None:
        """The next `times` calls of `kind` are handled (a submit creates its task), but the
        connection is cut before the answer is whole, as when a network drops mid-answer."""
        self._queue(kind, [CannedAnswer(drop=True)] * times)

    def slow(self, kind: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `kind` wait `seconds` before answering.

        A slow submit creates its task first, as a real one whose answer is lost would.
        """
        self._check_kind(kind)
        with self._lock:
            self._delays[kind].extend([float(seconds)] * times)

    def fail_next_task(self, code: int = 5000, message: str = "Internal error") -> None:
        """The next submitted task goes created -> processing -> failed with this code and error."""
        with self._lock:
            self._task_failures.append((code, message))

    def hang_next_task(self) -> None:
        """The next submitted task stays "processing" forever."""
        with self._lock:
            self._hangs += 1

    def missing_output(self, times: int = 1) -> None:
        """The next tasks that complete list an output URL that answers 404."""
        with self._lock:
            self._missing_outputs += times

    def nsfw_next_task(self) -> None:
        """The next submitted task completes with has_nsfw_contents [true]."""
        with self._lock:
            self._nsfw += 1

    def fail_next_answer(self, code: int = 5000, message: str = "Internal error") -> None:
        """The next vision LLM call ends failed with this code and error (HTTP 200, as a task)."""
        with self._lock:
            self._answer_failures.append((code, message))

    def unfinished_answers(self, times: int = 1) -> None:
        """The next `times` vision LLM calls in sync mode answer still "processing", as when
        WaveSpeed's sync wait runs out; the result route has the answer a moment later."""
        with self._lock:
            self._unfinished_answers += times

    def clear(self) -> None:
        """Disarm every switch."""
        with self._lock:
            for kind in self.kinds:
                self._answers[kind].clear()
                self._delays[kind].clear()
            self._task_failures.clear()
            self._hangs = self._nsfw = self._missing_outputs = 0
            self._answer_failures.clear()
            self._unfinished_answers = 0

    # -- used by the backend and its routes, not by tests --

    def _take(self, kind: str) -> tuple[float, CannedAnswer | None]:
        """The delay and the canned answer armed for this request, if any; uses them up."""
        self._check_kind(kind)
        with self._lock:
            delay = self._delays[kind].popleft() if self._delays[kind] else 0.0
            answer = self._answers[kind].popleft() if self._answers[kind] else None
        return delay, answer

    def _take_task(self) -> TaskFaults:
        with self._lock:
            failure = self._task_failures.popleft() if self._task_failures else None
            hang = failure is None and self._hangs > 0
            self._hangs -= hang
            nsfw = self._nsfw > 0
            self._nsfw -= nsfw
            # Only a task that can complete uses up a missing output.
            missing = failure is None and not hang and self._missing_outputs > 0
            self._missing_outputs -= missing
        return TaskFaults(failure, hang, nsfw, missing)

    def _take_answer(self) -> AnswerFaults:
        with self._lock:
            failure = self._answer_failures.popleft() if self._answer_failures else None
            unfinished = self._unfinished_answers > 0
            self._unfinished_answers -= unfinished
        return AnswerFaults(failure, unfinished)

    def _queue(self, kind: str, answers: list[CannedAnswer]) -> None:
        self._check_kind(kind)
        with self._lock:
            self._answers[kind].extend(answers)

    def _check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown request kind {kind!r}; use one of {', '.join(self.kinds)}")
