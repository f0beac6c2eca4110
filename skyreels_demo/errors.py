"""The typed errors every layer raises and the UI renders.

Each error carries its facts as fields and one sentence for a person (`str(err)`): what
happened and what to do next. Details that help a developer go to the log, never the sentence.
No error ever holds the API key.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = 3

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


# --- bad input: refused before anything is sent (exit 2) -------------------------------------


class BadInput(StudioError):
    """The user's input cannot be used; nothing was uploaded or paid for."""

    exit_code = 2


class ImageRejected(BadInput):
    """The picture cannot become a SkyReels frame."""


# --- the API or the network (exit 3) ---------------------------------------------------------


class ApiError(StudioError):
    """The API answered with an error, or could not be reached."""

    exit_code = 3

    def __init__(
        self,
        sentence: str,
        *,
        status: int | None = None,
        code: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(sentence)
        self.status = status
        self.code = code
        self.detail = detail
        # The request may have reached the server before its answer was lost (a dropped
        # connection, a read timeout): for a paid submit that means a task may exist.
        self.lost_in_flight = False


class AuthError(ApiError):
    """401 or 403: the key is wrong, inactive, out of credit or suspended."""


class BadRequest(ApiError):
    """400 or a 14xx code: the request does not fit the API's schema."""


class RateLimited(ApiError):
    """429: too many requests or too many tasks at once."""

    def __init__(self, sentence: str, *, retry_after: float | None = None, **fields) -> None:
        super().__init__(sentence, **fields)
        self.retry_after = retry_after


class ServiceError(ApiError):
    """5xx or a 5xxx code: trouble on WaveSpeed's side; may work if tried again later."""


class SubmitUnconfirmed(ServiceError):
    """A submit went out but its answer was lost: WaveSpeed may have made (and billed) the task."""

    @classmethod
    def sentence_for(cls, made: str) -> str:
        """The sentence for a lost answer to a submit of `made` ("video", "prompt")."""
        return (
            f"WaveSpeed may have made this {made}; it is not known, because its answer was lost: "
            "check your WaveSpeed history before trying again."
        )


class UploadFailed(ApiError):
    """The image could not be uploaded to get a hosted URL."""


class DownloadFailed(ApiError):
    """The finished video could not be downloaded (the task itself is done and paid for)."""


class NetworkError(ApiError):
    """The API's host could not be reached at all."""


# --- the task itself -------------------------------------------------------------------------


class TaskFailed(StudioError):
    """The task ran and ended in failure (failed tasks are refunded by WaveSpeed)."""

    exit_code = 4

    def __init__(self, sentence: str, *, task_id: str, code: int | None, message: str) -> None:
        super().__init__(sentence)
        self.task_id = task_id
        self.code = code
        self.message = message


class TaskGone(StudioError):
    """WaveSpeed no longer keeps the task (`deleted`, `expired`): it can never be fetched again."""

    exit_code = 4
    SENTENCE = "WaveSpeed no longer keeps this task: predictions are deleted after 7 days."

    def __init__(self, *, task_id: str, api_status: str = "deleted") -> None:
        super().__init__(self.SENTENCE)
        self.task_id = task_id
        self.api_status = api_status


class TimedOut(StudioError):
    """The overall deadline passed while the task was still running; it is recorded."""

    exit_code = 5

    def __init__(self, sentence: str, *, task_id: str, last_status: str) -> None:
        super().__init__(sentence)
        self.task_id = task_id
        self.last_status = last_status


class Stopped(StudioError):
    """The person stopped waiting; a submitted task still runs and is kept for resume."""

    exit_code = 5

    def __init__(self, sentence: str, *, task_id: str | None = None) -> None:
        super().__init__(sentence)
        self.task_id = task_id


class QuotaExceeded(StudioError):
    """A shared Space's per-visitor or per-day cap on the owner's key was reached."""

    exit_code = 3


# --- sentences for failed tasks, by the API's documented codes ------------------------------

_TASK_FAILURE_ADVICE = {
    1200: "it was stopped by content moderation; change the prompt or image and try again",
    1400: "a required parameter was missing; this is a bug in the app, please report it",
    1401: "a parameter was invalid; check the prompt and seed and try again",
    1402: "WaveSpeed could not download the input image; upload it again and retry",
    1403: "the task failed on WaveSpeed; failed tasks are refunded, so try again",
    1405: "the task failed on WaveSpeed; failed tasks are refunded, so try again",
    5000: "WaveSpeed had an internal error; failed tasks are refunded, so try again in a minute",
    5003: "the service is unavailable right now; failed tasks are refunded, so try again later",
    5004: "it timed out on WaveSpeed; failed tasks are refunded, so try again later",
}


def task_failed(task_id: str, code: int | None, message: str) -> TaskFailed:
    """Build the error for a task that ended `failed` (or `cancelled`, `timeout`)."""
    advice = _TASK_FAILURE_ADVICE.get(code or 0)
    if advice is None:
        if code is not None and 5000 <= code < 6000:
            advice = "WaveSpeed had trouble; failed tasks are refunded, so try again later"
        elif code is not None and 1000 <= code < 2000:
            advice = "change the prompt or image and try again"
        else:
            advice = "failed tasks are refunded, so try again"
    reason = f" ({message.rstrip('.')})" if message else ""
    return TaskFailed(
        f"The video was not made{reason}: {advice}.",
        task_id=task_id,
        code=code,
        message=message,
    )
