"""What the store hands out: one frozen value per kind of row, and the words they carry.

Separate from the tables' code (runs.py, films.py, shares.py) because every room reads these
values (History, the finisher, the caps, the CLI) while only the store writes rows; and because
a film's record and a run's share the same words (whose key paid).
The API key is never stored: only which host a run went to and whose key it used.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

from skyreels_demo.status import FINISHED, FilmStatus, RunStatus, Word


class Mode(Word):
    """Where a run's requests went."""

    API = "api"
    PREVIEW = "preview"


class KeySource(Word):
    """Whose key paid for a run."""

    OWNER = "owner"
    VISITOR = "visitor"
    PREVIEW = "preview"


# What a person reads beside a run in History and `runs --json`, where the status alone says too little.
NOTES = {RunStatus.UNCONFIRMED: "WaveSpeed may have made this video; it is not known."}
# What History says of a run whose submit's answer was lost and whose task was found again.
RECOVERED_NOTE = "Its submit's answer was lost; its task was found again in WaveSpeed's list of predictions."


def was_recovered(statuses: Iterable[tuple[float, str]]) -> bool:
    """Whether a run's status history shows it recovered: unconfirmed, then submitted after all."""
    words = [status for _, status in statuses]
    return str(RunStatus.UNCONFIRMED) in words and str(RunStatus.SUBMITTED) in words[words.index(str(RunStatus.UNCONFIRMED)):]


@dataclass(frozen=True)
class Run:
    """One row of the store."""

    id: str
    created_at: float
    updated_at: float
    prompt: str
    seed: int
    image_sha256: str | None
    image_path: str | None
    image_url: str | None
    mode: Mode
    api_host: str
    task_id: str | None
    status: RunStatus
    submitted_at: float | None
    processing_at: float | None
    finished_at: float | None
    error_code: int | None
    error_message: str | None
    inference_ms: int | None
    output_url: str | None
    video_path: str | None
    visitor: str = ""
    key_source: KeySource = KeySource.OWNER
    nsfw: int = 0
    sweep: str | None = None
    model: str = ""
    requester: str = ""  # who asked, as the server decided: "hf:<user>", "ip:<address>", "local"
    fit: str = "crop"  # the framing chosen: "crop" or "pad"
    fps_prefix: int = 1  # whether the model's prompt prefix was asked for
    continued_from: str | None = None  # the run whose frame this run's image is
    film_id: str | None = None  # the film this run is a shot of
    shot: int | None = None  # its place in the film, from 0
    kept: int = 0  # a person marked this take as kept: never pruned
    ended_after: float | None = None  # the last check that found the task running (see finished_at)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_unfinished_task(self) -> bool:
        """Submitted and paid for, but its video is not saved yet."""
        return self.task_id is not None and not self.is_finished

    @property
    def note(self) -> str:
        """A sentence about the run's status where the word alone says too little, else ""."""
        return NOTES.get(self.status, "")

    @property
    def has_video(self) -> bool:
        return bool(self.video_path) and Path(self.video_path).exists()


RUN_COLUMNS = tuple(f.name for f in fields(Run))


@dataclass(frozen=True)
class Film:
    """A film: its shots in order, each an ordinary run whose image is the previous shot's last frame."""

    id: str
    created_at: float
    updated_at: float
    model: str
    visitor: str
    requester: str
    key_source: KeySource
    image_path: str | None  # the starting image, prepared
    fit: str
    fps_prefix: int
    shots_json: str  # [{"prompt": as typed, "seed": concrete}, ...]
    status: FilmStatus
    film_path: str | None
    error_message: str | None

    @property
    def shots(self) -> list[dict]:
        return json.loads(self.shots_json)

    @property
    def has_film(self) -> bool:
        return bool(self.film_path) and Path(self.film_path).exists()


FILM_COLUMNS = tuple(f.name for f in fields(Film))


@dataclass(frozen=True)
class Limit:
    """At most `most` runs paid by `key_source` (and asked for by `requester`) since `since`."""

    since: float
    most: int
    key_source: KeySource
    refusal: str  # the sentence a person reads when the limit is reached
    requester: str | None = None  # None: everyone's runs count


@dataclass(frozen=True)
class Durations:
    """When recorded runs ended, newest first, in seconds from their submit: (after, by,
    making_s) for each, the end having come after the last check that found the task running and
    by the first that found it done; making_s is WaveSpeed's own timing of the making
    (timings.inference), or None."""

    ends: tuple[tuple[float, float, float | None], ...]


def run_of(row: sqlite3.Row) -> Run:
    """A `runs` row as a Run; a word a newer version wrote is kept as it is."""
    return Run(**_values(row, RUN_COLUMNS, {"status": RunStatus, "mode": Mode, "key_source": KeySource}))


def film_of(row: sqlite3.Row) -> Film:
    """A `films` row as a Film; a word a newer version wrote is kept as it is."""
    return Film(**_values(row, FILM_COLUMNS, {"status": FilmStatus, "key_source": KeySource}))


def _values(row: sqlite3.Row, columns: tuple[str, ...], words: dict[str, type[Word]]) -> dict:
    values = {name: row[name] for name in row.keys() if name in columns}
    for name, kind in words.items():
        try:
            values[name] = kind(values[name])
        except ValueError:
            pass  # a word a newer version wrote: kept as it is
    return values
