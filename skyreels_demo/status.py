"""The one status vocabulary: every word a run, a task, a film, a sweep's cell or a run's stage
can be in, for the store, History, the CLI's JSON, MCP and the offline backend alike.

Each enum's members compare, print and store as their plain words, so a JSON field or a SQLite
column holds the same word the code matches on. WaveSpeed's own task words (`ApiWord`) are the
contract's: the offline backend speaks them, and `TaskState.from_api` is the one reading of them.
"""

from __future__ import annotations

import enum


class Word(str, enum.Enum):
    """An enum whose members are stored, compared and printed as their plain words."""

    def __str__(self) -> str:
        return self.value


class ApiWord(Word):
    """A task's status as WaveSpeed's API writes it (wavespeed-api.md); the offline backend speaks these."""

    CREATED = "created"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DELETED = "deleted"  # past its 7 days (the SDK's word)

    @property
    def ended(self) -> bool:
        return self in (ApiWord.COMPLETED, ApiWord.FAILED, ApiWord.DELETED)


class TaskState(enum.Enum):
    """A WaveSpeed task as this studio reads it; callers match on this, never on the API's strings."""

    QUEUED = "queued"  # accepted, waiting for a worker
    RUNNING = "running"  # a worker is making it
    COMPLETED = "completed"  # outputs are ready
    FAILED = "failed"  # ended without outputs (refunded by WaveSpeed)
    GONE = "gone"  # WaveSpeed no longer keeps it (deleted after 7 days): nothing to fetch, ever

    @classmethod
    def from_api(cls, word: object) -> "TaskState":
        """WaveSpeed documents created, processing, completed and failed; its SDK also ends on
        cancelled, timeout and deleted, and expired reads the same way. Any other word is read as
        still running, bounded by the caller's deadline."""
        return _API_WORDS.get(str(word or "created").strip().lower(), cls.RUNNING)

    @property
    def is_final(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.GONE)


_API_WORDS = {
    "created": TaskState.QUEUED,
    "pending": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "completed": TaskState.COMPLETED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.FAILED,
    "canceled": TaskState.FAILED,
    "timeout": TaskState.FAILED,
    "deleted": TaskState.GONE,
    "expired": TaskState.GONE,
}


class RunStatus(Word):
    """A run's own lifecycle. Before `submitted` nothing was paid for; after it, the task exists."""

    PREPARING = "preparing"
    SUBMITTING = "submitting"  # the submit is on its way: from here a task may exist
    SUBMITTED = "submitted"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"  # the task is done; its video is not saved yet
    DONE = "done"  # the video is saved locally
    FAILED = "failed"  # the task failed on WaveSpeed (refunded)
    REFUSED = "refused"  # WaveSpeed (or our own checks) said nothing was made: nothing paid
    UNCONFIRMED = "unconfirmed"  # the submit went out but its answer was lost: maybe paid
    LOST = "lost"  # the task can no longer be fetched (WaveSpeed keeps outputs 7 days)


FINISHED = frozenset({RunStatus.DONE, RunStatus.FAILED, RunStatus.REFUSED, RunStatus.UNCONFIRMED, RunStatus.LOST})
# A task that exists and has not ended: it takes one of the account's tasks at once.
IN_FLIGHT = frozenset({RunStatus.SUBMITTED, RunStatus.QUEUED, RunStatus.PROCESSING})


class FilmStatus(Word):
    """A film's own lifecycle: its shots are made in turn, then it is cut."""

    MAKING = "making"  # shots are being made (or a process died while they were)
    DONE = "done"  # cut: film_path is the whole film
    FAILED = "failed"  # a shot failed or was refused: it can be made again
    STOPPED = "stopped"  # the person stopped it between shots
    CHANGED = "changed"  # a shot was picked or made anew: the shots after it follow an old frame


class CellStatus(Word):
    """One prompt x seed of a sweep."""

    DONE = "done"
    SKIPPED = "skipped"  # done by an earlier sweep: not paid for again
    FAILED = "failed"


class Stage(Word):
    """Where a run is, as a person follows it: the status board's rows, MCP's progress, the CLI's lines."""

    PREPARE = "prepare"
    UPLOAD = "upload"
    SUBMIT = "submit"
    WAIT = "wait"
    DOWNLOAD = "download"
    DONE = "done"
