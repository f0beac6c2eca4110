"""One model of a run's progress: where it is (a `Stage`), how far (0..1), and its line in plain
words, built once from each studio event.

The status board draws it as HTML (web/status_board.py), agents hear its words and fraction as
MCP progress (web/agent_progress.py), and the command line prints the same words
(`Event.message`, which is this line's text). Separate from events.py because an event is what
happened; this is how far that takes the run, which only those who show progress need.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyreels_demo.status import Stage
from skyreels_demo.studio.events import (
    Done,
    Downloading,
    Event,
    Fetching,
    InLine,
    Prepared,
    Processing,
    Queued,
    SlowedDown,
    Submitted,
    Uploading,
)

# How far each kind of event takes a run (Processing grows within its share as the video is made).
_AT: dict[type, tuple[Stage, float]] = {
    InLine: (Stage.UPLOAD, 0.0),
    Fetching: (Stage.PREPARE, 0.02),
    Prepared: (Stage.PREPARE, 0.05),
    Uploading: (Stage.UPLOAD, 0.1),
    SlowedDown: (Stage.SUBMIT, 0.15),
    Submitted: (Stage.SUBMIT, 0.15),
    Queued: (Stage.WAIT, 0.2),
    Processing: (Stage.WAIT, 0.2),
    Downloading: (Stage.DOWNLOAD, 0.92),
    Done: (Stage.DONE, 1.0),
}
MAKING_SHARE = 0.7  # of the whole run, the share the video's making takes


@dataclass(frozen=True)
class Progress:
    """Where a run is: its stage, how far it is (0..1), and the line that says so."""

    stage: Stage
    fraction: float
    text: str

    @property
    def making(self) -> float | None:
        """How far the video itself is made (0..1), while it is; else None."""
        if self.stage is not Stage.WAIT or self.fraction <= _AT[Processing][1]:
            return None
        return (self.fraction - _AT[Processing][1]) / MAKING_SHARE


def progress_of(event: Event) -> Progress | None:
    """The progress an event says; None for an event that says none."""
    at = _AT.get(type(event))
    if at is None:
        return None
    stage, fraction = at
    if isinstance(event, Processing) and event.typical_s > 0:
        fraction += MAKING_SHARE * min(0.97, event.processing_s / event.typical_s)
    return Progress(stage, fraction, event.message)
