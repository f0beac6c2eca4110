"""A WaveSpeed task as this studio sees it: the API's words turned into our own types.

WaveSpeed documents `created`, `processing`, `completed` and `failed`; its SDK also ends on
`cancelled`, `timeout` and `deleted` (a prediction past its 7 days), and `expired` is read the
same way. Any other word is read as still running, bounded by the caller's deadline. Callers match on `TaskState`, never on the API's strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from skyreels_demo.status import TaskState


@dataclass(frozen=True)
class Task:
    """One task as the API last described it."""

    id: str
    state: TaskState
    model: str = ""
    outputs: tuple[str, ...] = ()
    error: str = ""
    error_code: int | None = None
    nsfw: tuple[bool, ...] = ()
    created_at: str = ""
    inference_ms: int | None = None
    api_status: str = ""  # the API's own word, for logs
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # On a final task from `follow`: when (time.time()) the last check that found it still running
    # was asked; the task ended after that. None when no check (or submit) found it running.
    ended_after: float | None = field(default=None, compare=False)

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def succeeded(self) -> bool:
        return self.state is TaskState.COMPLETED

    @property
    def video_url(self) -> str | None:
        return self.outputs[0] if self.outputs else None

    @property
    def is_nsfw(self) -> bool:
        return any(self.nsfw)

    @property
    def created_s(self) -> float | None:
        """When WaveSpeed created it, in seconds since the epoch; None when it did not say."""
        return epoch_seconds(self.created_at)

    @classmethod
    def queued(cls, task_id: str, model: str = "") -> "Task":
        return cls(id=task_id, state=TaskState.QUEUED, model=model, api_status="created")

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, task_id: str = "") -> "Task":
        """From an envelope's `data` (or a webhook body, which has the same fields)."""
        timings = data.get("timings")
        inference = timings.get("inference") if isinstance(timings, Mapping) else None
        outputs = data.get("outputs")
        flags = data.get("has_nsfw_contents")
        return cls(
            id=str(data.get("id") or task_id),
            state=TaskState.from_api(data.get("status")),
            model=str(data.get("model") or ""),
            outputs=tuple(str(u) for u in outputs if u) if isinstance(outputs, (list, tuple)) else (),
            error=str(data.get("error") or ""),
            error_code=_integer(data.get("code")),
            nsfw=tuple(bool(x) for x in flags) if isinstance(flags, (list, tuple)) else (),
            created_at=str(data.get("created_at") or ""),
            inference_ms=int(inference) if isinstance(inference, (int, float)) and inference > 0 else None,
            api_status=str(data.get("status") or "created"),
            raw=dict(data),
        )


def epoch_seconds(text: str) -> float | None:
    """An ISO 8601 time (a Z, an offset, or none: UTC) in seconds since the epoch, else None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
