"""WaveSpeed REST client: upload, submit, result, follow, download, balance, the list of
predictions and a run's price; HTTP and nothing else.

The HTTP itself (sessions, the retry policy, errors built once from an answer) is `Transport`'s
(transport.py), handing the image over is `ImageUploads`' (uploads.py). When to poll is decided
by a `Poller` (schedule.py), within the model's rule for checks; `follow` (follow.py) only asks
and waits.
The paid submit is sent once, and again only after a 429, which created nothing.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import requests

from skyreels_demo.errors import (
    ApiError,
    DownloadFailed,
    NetworkError,
    ServiceError,
    SubmitUnconfirmed,
)
from skyreels_demo.models import ModelSpec
from skyreels_demo.config import Settings
from skyreels_demo.wavespeed.retries import DEFAULT_POLICY, Call, RetryPolicy
from skyreels_demo.wavespeed.follow import follow_task
from skyreels_demo.wavespeed.schedule import PollSchedule
from skyreels_demo.wavespeed.tasks import Task
from skyreels_demo.wavespeed.transport import Transport, error_from_response
from skyreels_demo.wavespeed.uploads import ImageUploads


# The list of predictions is read this many at a time (as WaveSpeed's desktop client asks), and
# no further than this many pages: a window around one submit holds a handful of tasks.
LIST_PAGE_SIZE = 20
LIST_MAX_PAGES = 10


@dataclass(frozen=True)
class Balance:
    amount: float
    currency: str = "USD"


@dataclass(frozen=True)
class PredictionsPage:
    """One page of the account's list of predictions: its tasks (no inputs: only the model,
    status, outputs and creation time), and how many fit in all (None when not said)."""

    tasks: tuple[Task, ...]
    page: int
    total: int | None


@dataclass(frozen=True)
class Job:
    """A submitted task and the client that follows it: what `submit` hands back.

    `in_hand` says whether `task` is a fresh answer (from the submit) or only the stored id of a
    task submitted earlier, which `follow` then asks about at once.
    """

    task: Task
    client: "WaveSpeedClient" = field(repr=False, compare=False)
    in_hand: bool = True

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def result_url(self) -> str:
        return self.client.result_url(self.task.id)

    def follow(self, **options: Any) -> Iterator[Task]:
        """`WaveSpeedClient.follow` for this task (schedule, deadline_s, stop, pushed, ...)."""
        return self.client.follow(self.task.id, first=self.task if self.in_hand else None, **options)


class WaveSpeedClient:
    """Talks to WaveSpeed (or anything that speaks its API) for one key: its HTTP is a
    `Transport`, its image hand-over an `ImageUploads`, both its own."""

    def __init__(self, settings: Settings, *, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.transport = Transport(settings, policy=policy)
        self.uploads = ImageUploads(self.transport)
        self.settings = settings
        self.base_url = self.transport.base_url
        self.policy = policy
        self._request = self.transport.request
        self._send = self.transport.send

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> "WaveSpeedClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def upload(self, data: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg") -> str:
        """Hand WaveSpeed the image; return what to submit as `image` (uploads.py)."""
        return self.uploads.upload(data, filename, content_type)

    def webhook_secret(self) -> str:
        """The account's webhook signing secret (`whsec_...`); never logged."""
        response = self._send(Call.READ, "GET", f"{self.base_url}/api/v3/webhook/secret", "reading the webhook secret")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, Mapping) or body.get("code", 200) != 200:
            raise error_from_response(response, body if isinstance(body, Mapping) else None,
                                       "reading the webhook secret", self.policy)
        data = body.get("data")
        secret = data.get("secret") if isinstance(data, Mapping) else data
        if not isinstance(secret, str) or not secret:
            raise ServiceError("WaveSpeed did not send a webhook secret: try again later.")
        return secret

    def balance(self) -> Balance:
        """The account's credit: the current route, else the older one WaveSpeed documented."""
        try:
            data = self._request(Call.READ, "GET", "/api/v3/account/balance", "checking the balance")
        except ServiceError as exc:
            if exc.status != 404:
                raise
            data = self._request(Call.READ, "GET", "/api/v3/balance", "checking the balance")
        amount = data.get("balance")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ServiceError("WaveSpeed did not say what the balance is: try again in a minute.")
        return Balance(float(amount), str(data.get("currency") or "USD"))

    def price(self, model: ModelSpec, inputs: Mapping[str, Any]) -> float:
        """What one run of `model` with `inputs` costs this key, in USD, as WaveSpeed answers it."""
        data = self._request(
            Call.READ, "POST", "/api/v3/model/pricing", "asking the price of a run",
            json={"model_id": model.name, "inputs": dict(inputs)},
        )
        price = data.get("unit_price")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0:
            raise ServiceError("WaveSpeed did not say what a run costs: try again in a minute.")
        return float(price)

    def list_predictions(
        self,
        *,
        model: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        status: str | None = None,
        page: int = 1,
        page_size: int = LIST_PAGE_SIZE,
    ) -> PredictionsPage:
        """One page of the account's predictions, newest first (times: seconds since the epoch)."""
        body: dict[str, Any] = {"page": page, "page_size": page_size}
        for name, moment in (("created_after", created_after), ("created_before", created_before)):
            if moment is not None:
                body[name] = iso_time(moment)
        if model:
            body["model"] = model
        if status:
            body["status"] = status
        data = self._request(Call.READ, "POST", "/api/v3/predictions", "looking through the list of predictions", json=body)
        items, total = data.get("items"), data.get("total")
        if not isinstance(items, list):
            raise ServiceError("WaveSpeed's list of predictions could not be read: try again in a minute.")
        tasks = tuple(Task.from_data(item) for item in items if isinstance(item, Mapping) and item.get("id"))
        known = isinstance(total, int) and not isinstance(total, bool) and total >= 0
        return PredictionsPage(tasks, page, total if known else None)

    def find_tasks(self, model: str, created_after: float, created_before: float) -> list[Task]:
        """Every task of `model` created between the two moments, across pages, each once.

        What the list answers is checked again here (its model, its creation time), so a list
        that ignores a filter cannot bring in a task from elsewhere; a task whose creation time
        cannot be read is left out. Raises `ServiceError` when the window holds more than
        `LIST_MAX_PAGES` pages, and what the transport raises (a 404: no such list here).
        """
        found: dict[str, Task] = {}
        for page in range(1, LIST_MAX_PAGES + 1):
            listed = self.list_predictions(
                model=model, created_after=created_after, created_before=created_before, page=page
            )
            for task in listed.tasks:
                made = task.created_s
                if (not task.model or task.model == model) and made is not None and created_after <= made <= created_before:
                    found.setdefault(task.id, task)
            if len(listed.tasks) < LIST_PAGE_SIZE or (listed.total is not None and page * LIST_PAGE_SIZE >= listed.total):
                return list(found.values())
        raise ServiceError("WaveSpeed lists too many tasks around then to tell which one it is.")

    def submit(
        self, model: ModelSpec, inputs: Mapping[str, Any], *, webhook: str | None = None, paced: bool = False
    ) -> Job:
        """Start one task. Sent once; again only after a 429, which created nothing.

        `paced`: the caller (the line, line.py) waits out a 429 in view, so it is raised at once.

        `webhook`: where WaveSpeed should POST the task's end (completed or failed). Raises
        `SubmitUnconfirmed` when the request went out but its answer was lost (the task may
        exist and be billed); any other error means WaveSpeed said nothing was made.
        """
        payload = model.payload(inputs)
        path = model.path + (f"?webhook={quote(webhook, safe='')}" if webhook else "")
        made = SubmitUnconfirmed.sentence_for("video" if model.makes_video else "prompt")
        try:
            call = Call.PACED if paced else Call.PAID
            data = self._request(call, "POST", path, "submitting the task", json=payload)
        except ApiError as exc:
            if answer_was_lost(exc):
                raise SubmitUnconfirmed(made, status=exc.status, code=exc.code, detail=exc.detail) from None
            raise
        task = Task.from_data(data)
        if not task.id:
            # Accepted, but with no id to follow it by: it may exist all the same.
            raise SubmitUnconfirmed(made, status=200, detail="no task id in the answer")
        return Job(task, self)

    def job(self, task_id: str) -> Job:
        """A handle on a task submitted earlier (a stored run), to follow it again."""
        return Job(Task.queued(task_id), self, in_hand=False)

    def result_url(self, task_id: str) -> str:
        return f"{self.base_url}/api/v3/predictions/{quote(task_id, safe='')}/result"

    def result(self, task_id: str) -> Task:
        data = self._request(Call.POLL, "GET", self.result_url(task_id), "checking the task")
        return Task.from_data(data, task_id=task_id)

    def follow(
        self,
        task_id: str,
        *,
        schedule: PollSchedule,
        deadline_s: float | None = None,
        stop: threading.Event | None = None,
        first: Task | None = None,
        submitted_ago_s: float = 0.0,
        pushed: threading.Event | None = None,
    ) -> Iterator[Task]:
        """Yield the task whenever its status changes, and at least every second while it runs,
        until it ends; what each option means, and what it raises, is `follow_task`'s (follow.py)."""
        return follow_task(
            self, task_id, schedule=schedule, deadline_s=deadline_s, stop=stop, first=first,
            submitted_ago_s=submitted_ago_s, pushed=pushed,
        )

    def download(self, url: str, dest: Path, *, max_bytes: int | None = None) -> Path:
        """Stream a video to `dest` atomically; no Authorization leaves for another host."""
        max_bytes = max_bytes or self.settings.max_video_bytes
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                self._stream_to(url, out, max_bytes)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def _stream_to(self, url: str, out, max_bytes: int) -> None:
        try:
            with self._send(Call.READ, "GET", url, "downloading the video", stream=True) as response:
                if response.status_code != 200:
                    raise DownloadFailed(
                        f"The finished video could not be downloaded (HTTP "
                        f"{response.status_code}): resume the run to try again.",
                        status=response.status_code,
                    )
                size = 0
                for chunk in response.iter_content(chunk_size=256 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadFailed(
                            f"The video is larger than {max_bytes // 2**20} MB, so it was not "
                            "saved: open its URL directly instead."
                        )
                    out.write(chunk)
        except (NetworkError, ServiceError) as exc:
            raise DownloadFailed(
                "The finished video could not be downloaded: check the connection and resume "
                "the run to try again.",
                detail=exc.detail,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise DownloadFailed(
                "The finished video could not be downloaded: check the connection and resume "
                "the run to try again.",
                detail=str(exc)[:300],
            ) from None
        if size == 0:
            raise DownloadFailed("The finished video came back empty: resume the run to try again.")


def iso_time(moment: float) -> str:
    """Seconds since the epoch as WaveSpeed writes a time: UTC, milliseconds, a Z."""
    when = datetime.fromtimestamp(moment, tz=timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def answer_was_lost(exc: ApiError) -> bool:
    """Whether a failed submit may still have made its task.

    Only an answer that says nothing was made is a refusal: a 4xx, or a 503 (unavailable), or
    no connection at all. A dropped connection, a read timeout, another 5xx, or a body that
    cannot be read leaves it unknown.
    """
    if exc.lost_in_flight:
        return True
    if isinstance(exc, NetworkError):
        return False
    effective = exc.code if exc.status == 200 and exc.code else exc.status
    if effective is None:
        return False
    if exc.status == 200 and not exc.code:
        return True  # an answer that could not be read
    return effective >= 500 and effective != 503
