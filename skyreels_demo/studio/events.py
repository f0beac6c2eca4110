"""What a person sees of a run: the typed, frozen events that `Studio.generate` yields.

The app's status board and the command line's status lines only render these; each carries
its facts as fields and a `message` in plain words, the one wording of it (progress.py adds how
far it takes the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skyreels_demo.images import PreparedImage
from skyreels_demo.store.records import Run


@dataclass(frozen=True)
class Event:
    """Something the person should see; `elapsed_s` counts from the click."""

    elapsed_s: float

    @property
    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class InLine(Event):
    """Waiting in the line for the account's next slot (line.py): `ahead` runs before this one
    (0: next), about `estimate_s` seconds to go; `line_version` is the line's state it describes."""

    ahead: int
    estimate_s: float
    line_version: int = -1
    ticket: int = 0  # the place's number in line.py, so a watcher can refresh it

    @property
    def place(self) -> int:
        return self.ahead

    @property
    def message(self) -> str:
        who = "You are next" if self.ahead == 0 else f"{self.ahead} ahead of you"
        return f"{who} · about {about(self.estimate_s)}"


@dataclass(frozen=True)
class SlowedDown(Event):
    """WaveSpeed answered a submit with 429: it is sent again after `wait_s`; nothing was made."""

    wait_s: float

    @property
    def message(self) -> str:
        return f"WaveSpeed asked us to slow down: {self.wait_s:.0f} s"


def about(seconds: float) -> str:
    """A wait in the words a person reads at a glance: "20 s", "3 min"."""
    if seconds < 55:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    return f"{max(1, round(seconds / 60)):.0f} min"


@dataclass(frozen=True)
class Fetching(Event):
    """The picture named by its address is being fetched: the run's caps have let it go."""

    @property
    def message(self) -> str:
        return "Fetching the picture from its address…"


@dataclass(frozen=True)
class Prepared(Event):
    image: PreparedImage | None  # None when the image is a URL passed on as it is

    @property
    def message(self) -> str:
        if self.image is None:
            return "Using the image URL as given."
        return f"Prepared the image: {self.image.width}×{self.image.height}, {len(self.image.data) // 1024} KB."


@dataclass(frozen=True)
class Uploading(Event):
    size: int
    run_id: str

    @property
    def message(self) -> str:
        return f"Uploading the image ({self.size / 1024:.0f} KB)…"


@dataclass(frozen=True)
class Submitted(Event):
    run_id: str
    task_id: str
    seed: int
    recovered: bool = False  # the submit's answer was lost; its task was found again

    @property
    def message(self) -> str:
        if self.recovered:
            return (
                f"Submitted task {self.task_id} (seed {self.seed}): its answer was lost, and the task "
                "was found again in WaveSpeed's list."
            )
        return f"Submitted task {self.task_id} (seed {self.seed})."


@dataclass(frozen=True)
class Queued(Event):
    task_id: str
    waited_s: float
    typical_s: float

    @property
    def message(self) -> str:
        return f"Waiting in WaveSpeed's queue: {self.waited_s:.0f} s so far."


@dataclass(frozen=True)
class Processing(Event):
    task_id: str
    processing_s: float
    typical_s: float

    @property
    def message(self) -> str:
        if self.typical_s > 0:
            return f"Making the video: {self.processing_s:.0f} s of about {max(1, round(self.typical_s))} s"
        return f"Making the video: {self.processing_s:.0f} s so far"


@dataclass(frozen=True)
class Downloading(Event):
    task_id: str

    @property
    def message(self) -> str:
        return "Downloading the video"


@dataclass(frozen=True)
class Done(Event):
    run: Run
    video_path: Path
    seed: int
    nsfw: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def message(self) -> str:
        made = self.timings.get("inference_s")
        made_text = f"made in {made:.1f} s, " if made else ""
        flag = " WaveSpeed flagged this video as possibly NSFW." if self.nsfw else ""
        return f"Done: {made_text}{self.timings.get('total_s', self.elapsed_s):.1f} s in all (seed {self.seed}).{flag}"
