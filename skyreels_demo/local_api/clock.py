"""A task's status read off the clock: created, then processing, then completed or failed, and
`deleted` once it is older than the retention (WaveSpeed keeps predictions 7 days).

Nothing here moves a task along: its record holds when it was created, how long each state
lasts, and (once known) its failure or its finished video, and the status at any moment
follows from those.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from skyreels_demo.status import ApiWord
from skyreels_demo.times import WAVESPEED_RETENTION_S


# How long WaveSpeed keeps a prediction; after that its result answers `deleted`.
RETENTION_S = WAVESPEED_RETENTION_S


@dataclass(frozen=True)
class TaskTiming:
    """Seconds a task spends in each state."""

    queue_s: float = 1.0  # created -> processing
    processing_s: float = 3.0  # processing -> completed

    def __post_init__(self) -> None:
        if self.queue_s < 0 or self.processing_s < 0:
            raise ValueError("task timings must not be negative")


@dataclass(frozen=True)
class TaskFailure:
    code: int
    message: str
    at: float  # the clock's time from which the task reads as failed


@dataclass(frozen=True)
class RenderDone:
    path: Path
    at: float  # the clock's time when the video file was ready


@dataclass(eq=False)
class TaskRecord:
    """The server's record of one task; its status is read off the clock."""

    id: str
    prompt: str
    seed: int
    image_url: str
    created_at: float
    timing: TaskTiming
    nsfw: bool = False
    hang: bool = False
    missing_output: bool = False
    webhook: str | None = None  # where to POST the task's end, as the submit asked
    model: str = ""  # the model's name ("" in tasks stored before models were recorded)
    server: str = ""  # the id of the backend that made it (storage.py; "" in tasks stored before)
    # Each is set once, by a single assignment, so readers on other threads see all or nothing.
    failure: TaskFailure | None = None
    render: RenderDone | None = None
    # The backend's clock (time.time unless a test drives it), not part of the stored record.
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    # Seconds a task is kept (the backend's switch, so tests can age tasks), not stored either.
    retention: Callable[[], float] = field(default=lambda: RETENTION_S, repr=False, compare=False)

    @property
    def processing_at(self) -> float:
        return self.created_at + self.timing.queue_s

    @property
    def due_at(self) -> float:
        """When the clock says it is done, if the video is ready by then."""
        return self.processing_at + self.timing.processing_s

    def status_at(self, now: float) -> str:
        if now >= self.created_at + self.retention():
            return ApiWord.DELETED
        if now < self.processing_at:
            return ApiWord.CREATED
        if self.failure is not None and now >= self.failure.at:
            return ApiWord.FAILED
        if self.hang or self.failure is not None:
            return ApiWord.PROCESSING
        render = self.render
        if render is not None and now >= max(self.due_at, render.at):
            return ApiWord.COMPLETED
        return ApiWord.PROCESSING

    @property
    def status(self) -> str:
        return self.status_at(self.clock())

    @property
    def completed_at(self) -> float | None:
        """The clock's time at which it became completed; None until then."""
        render = self.render
        if render is None or self.failure is not None or self.hang:
            return None
        done = max(self.due_at, render.at)
        return done if self.clock() >= done else None

    @property
    def needs_render(self) -> bool:
        """No video yet, and nothing (a failure, a hang) that makes one pointless."""
        return self.render is None and self.failure is None and not self.hang
