"""WaveSpeed REST client: upload, submit, result, follow, download.

One `requests.Session` for connection pooling. Retries live in the transport (urllib3's
`Retry` on the session's adapters) and only for reads; the paid submit POST is sent once and
repeated only after an explicit 429, which created nothing. The key rides on an auth hook that
adds it only to requests for the API's own origin, so a CDN hosting a video never sees it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import MODEL, __version__
from .config import Settings
from .errors import (
    AuthError,
    BadRequest,
    DownloadFailed,
    NetworkError,
    RateLimited,
    ServiceError,
    Stopped,
    TimedOut,
    UploadFailed,
    task_failed,
)
from .schedule import PollSchedule, PollState, schedule_from_setting

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timeout"})
RETRY_AFTER_CAP_S = 30.0
# How often `follow` yields while it waits, so a UI can show the time passing.
TICK_S = 1.0
SUBMIT_429_ATTEMPTS = 3
TRANSIENT_POLL_FAILURES = 5


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One SkyReels task as the API last described it."""

    id: str
    status: str
    outputs: tuple[str, ...] = ()
    error: str = ""
    error_code: int | None = None
    nsfw: tuple[bool, ...] = ()
    created_at: str = ""
    inference_ms: int | None = None
    model: str = MODEL
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    @property
    def video_url(self) -> str | None:
        return self.outputs[0] if self.outputs else None

    @property
    def is_nsfw(self) -> bool:
        return any(self.nsfw)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Task":
        timings = data.get("timings") or {}
        code = data.get("code")
        inference = timings.get("inference") if isinstance(timings, Mapping) else None
        return cls(
            id=str(data.get("id") or ""),
            status=str(data.get("status") or "created"),
            outputs=tuple(str(u) for u in (data.get("outputs") or ()) if u),
            error=str(data.get("error") or ""),
            error_code=int(code) if isinstance(code, (int, float)) or str(code).isdigit() else None,
            nsfw=tuple(bool(x) for x in (data.get("has_nsfw_contents") or ())),
            created_at=str(data.get("created_at") or ""),
            inference_ms=int(inference) if isinstance(inference, (int, float)) and inference else None,
            model=str(data.get("model") or MODEL),
            raw=dict(data),
        )


# --- transport -------------------------------------------------------------------------------


class _CappedRetry(Retry):
    """urllib3's Retry, but a server's Retry-After is honoured only up to a cap."""

    def parse_retry_after(self, retry_after: str) -> float:
        # Accept fractional seconds, and treat a malformed header as "no advice", not an error.
        try:
            return min(max(float(retry_after), 0.0), RETRY_AFTER_CAP_S)
        except ValueError:
            pass
        try:
            return min(super().parse_retry_after(retry_after), RETRY_AFTER_CAP_S)
        except Exception:
            return 0.0


class _BearerForOrigin(requests.auth.AuthBase):
    """Adds the key only to requests for the API's own scheme, host and port."""

    def __init__(self, key: str, origin: tuple[str, str, int | None]) -> None:
        self._key = key
        self._origin = origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _origin(request.url or "") == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:
        return "<bearer key hidden>"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _read_retry(statuses: tuple[int, ...]) -> _CappedRetry:
    return _CappedRetry(
        total=4,
        connect=3,
        read=2,
        status=4,
        status_forcelist=statuses,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=0.25,
        backoff_jitter=0.25,
        backoff_max=8.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        return None


def _error_from_response(response: requests.Response, body: Mapping[str, Any] | None, doing: str):
    """One typed error, built once from an HTTP answer or an envelope whose code is not 200."""
    status = response.status_code
    body = body or {}
    code = body.get("code") if isinstance(body.get("code"), int) else None
    message = str(body.get("message") or body.get("error") or response.reason or "")
    detail = f"HTTP {status} while {doing}: {message}"[:500]
    effective = code if status == 200 and code else status
    fields = dict(status=status, code=code, detail=detail)
    if effective in (401, 403):
        what = "was refused" if effective == 401 else "belongs to a suspended account"
        return AuthError(
            f"The WaveSpeed API key {what}: check the key and that the account has credit, "
            "then try again.",
            **fields,
        )
    if effective == 429:
        return RateLimited(
            "WaveSpeed is rate-limiting this account right now: wait a minute and try again.",
            retry_after=_retry_after(response),
            **fields,
        )
    if effective == 400 or (code is not None and 1400 <= code < 1500):
        return BadRequest(
            f"WaveSpeed refused the request ({message or 'bad request'}): "
            "check the prompt, image and seed, then try again.",
            **fields,
        )
    if effective == 404:
        return ServiceError(
            f"WaveSpeed answered 'not found' while {doing}: check WAVESPEED_BASE_URL, "
            "or try again later.",
            **fields,
        )
    return ServiceError(
        f"WaveSpeed had trouble while {doing} ({message or f'HTTP {effective}'}): "
        "try again in a minute.",
        **fields,
    )


# --- the client ------------------------------------------------------------------------------


class WaveSpeedClient:
    """Talks to WaveSpeed (or anything that speaks its API) for one key."""

    def __init__(self, settings: Settings, *, schedule: PollSchedule | None = None) -> None:
        if not settings.api_key:
            raise AuthError("No WaveSpeed API key was given: set WAVESPEED_API_KEY or enter one.")
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.schedule = schedule or schedule_from_setting(settings.poll)
        self.timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        session = requests.Session()
        session.headers["User-Agent"] = f"skyreels-studio/{__version__} (+python-requests)"
        session.auth = _BearerForOrigin(settings.api_key, _origin(self.base_url))
        # Downloads and other reads retry on 429 too; polls leave 429 to the schedule's back-off.
        # One kept-alive connection for each run that may follow at once: a discarded one costs
        # a new TLS handshake later.
        pool = max(16, settings.max_concurrent_tasks + 4)
        reads = HTTPAdapter(max_retries=_read_retry((429, 500, 502, 503, 504)), pool_maxsize=pool)
        polls = HTTPAdapter(max_retries=_read_retry((500, 502, 503, 504)), pool_maxsize=pool)
        session.mount("http://", reads)
        session.mount("https://", reads)
        session.mount(f"{self.base_url}/api/v3/predictions/", polls)
        self._session = session

    def __repr__(self) -> str:
        return f"WaveSpeedClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "WaveSpeedClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests and envelopes --

    def _request(self, method: str, path: str, doing: str, error=None, **kwargs) -> Mapping[str, Any]:
        """One HTTP exchange; returns the envelope's `data`, or raises one typed error."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            log.info("connection failed while %s: %s", doing, exc)
            raise NetworkError(
                f"Could not reach {urlsplit(url).hostname} while {doing}: check the internet "
                "connection and try again.",
                detail=str(exc)[:300],
            ) from None
        except requests.exceptions.RetryError as exc:
            raise ServiceError(
                f"WaveSpeed kept failing while {doing}: try again in a minute.", detail=str(exc)[:300]
            ) from None
        except requests.exceptions.Timeout:
            raise ServiceError(
                f"WaveSpeed did not answer in time while {doing}: try again in a minute."
            ) from None
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            body = None
        if response.status_code != 200 or not isinstance(body, Mapping) or body.get("code", 200) != 200:
            if response.status_code == 200 and not isinstance(body, Mapping):
                err = ServiceError(
                    f"WaveSpeed sent an unreadable answer while {doing}: try again in a minute.",
                    status=200,
                    detail=response.text[:200],
                )
            else:
                err = _error_from_response(response, body if isinstance(body, Mapping) else None, doing)
            if error is not None and not isinstance(err, (AuthError, RateLimited)):
                err = error(err.sentence, status=err.status, code=err.code, detail=err.detail)
            log.warning("%s", err.detail or err.sentence)
            raise err
        data = body.get("data")
        return data if isinstance(data, Mapping) else {}

    # -- the API --

    def upload(self, data: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg") -> str:
        """Upload bytes and return the hosted URL the model can download."""
        started = time.monotonic()
        for attempt in range(3):
            try:
                body = self._request(
                    "POST",
                    "/api/v3/media/upload/binary",
                    "uploading the image",
                    error=UploadFailed,
                    files={"file": (filename, data, content_type)},
                )
                break
            except (RateLimited, UploadFailed, NetworkError) as exc:
                # An upload costs nothing, so trying again is safe; a 4xx other than 429 is final.
                status = getattr(exc, "status", None)
                if attempt == 2 or (status is not None and 400 <= status < 500 and status != 429):
                    raise
                time.sleep(getattr(exc, "retry_after", None) or 0.5 * 2**attempt)
        url = body.get("download_url")
        if not url:
            raise UploadFailed("The upload did not return an image URL: try again in a minute.")
        log.info("uploaded %d bytes in %.2fs", len(data), time.monotonic() - started)
        return str(url)

    def submit(self, prompt: str, image_url: str, seed: int) -> Task:
        """Start one SkyReels task. Sent once; repeated only after a 429, which created nothing."""
        payload = {"prompt": prompt, "image": image_url, "seed": int(seed)}
        for attempt in range(1, SUBMIT_429_ATTEMPTS + 1):
            try:
                data = self._request("POST", f"/api/v3/{MODEL}", "submitting the task", json=payload)
            except ServiceError as exc:
                # The task may exist even though the answer was lost: never send it again blindly.
                raise ServiceError(
                    "WaveSpeed did not confirm the task (" + (exc.detail or "no answer")[:120] + "); it "
                    "may still have started, so check your WaveSpeed history before trying again.",
                    status=exc.status,
                    code=exc.code,
                    detail=exc.detail,
                ) from None
            except RateLimited as exc:
                if attempt == SUBMIT_429_ATTEMPTS:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
                wait += random.uniform(0, 0.25)
                log.info("submit rate-limited; trying again in %.1fs", wait)
                time.sleep(wait)
                continue
            task = Task.from_data(data)
            if not task.id:
                raise ServiceError("WaveSpeed accepted the task but sent no task id: try again later.")
            return task
        raise AssertionError("unreachable")

    def result(self, task_id: str) -> Task:
        data = self._request("GET", f"/api/v3/predictions/{task_id}/result", "checking the task")
        task = Task.from_data(data)
        return task if task.id else Task.from_data({**data, "id": task_id})

    def follow(
        self,
        task_id: str,
        *,
        deadline_s: float | None = None,
        schedule: PollSchedule | None = None,
        stop: threading.Event | None = None,
        first: Task | None = None,
        submitted_ago_s: float = 0.0,
    ) -> Iterator[Task]:
        """Yield the task whenever its status changes, and at least every second while it runs.

        Ends after yielding a final task; a failed one raises `TaskFailed` after it is yielded.
        Raises `TimedOut` (with the task id) when `deadline_s` from now passes, and `Stopped`
        when `stop` is set. Transient poll errors are tried again until the deadline.
        `submitted_ago_s` tells the schedule how old the task already is (when resuming).
        """
        schedule = schedule or self.schedule
        budget_s = self.settings.run_deadline_s if deadline_s is None else deadline_s
        # One clock for everything below: seconds since the task was submitted.
        started = time.monotonic() - max(0.0, submitted_ago_s)
        deadline_s = max(0.0, submitted_ago_s) + budget_s
        task = first or Task(id=task_id, status="created")
        state = PollState(status=task.status, since_submit=time.monotonic() - started)
        last_yield = -TICK_S
        failures = 0
        next_poll = state.since_submit + (0.0 if first is None else schedule.next_gap(state))
        while True:
            now = time.monotonic() - started
            if now >= next_poll:
                polled_at = now
                try:
                    fresh = self.result(task_id)
                    failures = 0
                    state = _observe(state, fresh.status, polled_at)
                except RateLimited as exc:
                    state = replace(state, rate_limited=state.rate_limited + 1, retry_after=exc.retry_after)
                    fresh = task
                except (ServiceError, NetworkError) as exc:
                    failures += 1
                    if failures >= TRANSIENT_POLL_FAILURES:
                        raise
                    log.info("poll failed (%s); trying again", exc.detail or exc.sentence)
                    state = replace(state, rate_limited=failures, retry_after=None)
                    fresh = task
                changed = fresh.status != task.status or fresh.outputs != task.outputs
                task = fresh
                if changed or task.is_final:
                    last_yield = now
                    yield task
                if task.is_final:
                    if not task.succeeded:
                        raise task_failed(task.id, task.error_code, task.error)
                    return
                state = replace(state, since_submit=time.monotonic() - started, polls=state.polls + 1)
                next_poll = state.since_submit + schedule.next_gap(state)
            now = time.monotonic() - started
            if now >= deadline_s:
                raise TimedOut(
                    f"The video is still being made after {budget_s:.0f} s; it is saved, so "
                    "resume it later to fetch the result.",
                    task_id=task_id,
                    last_status=task.status,
                )
            if now - last_yield >= TICK_S:
                last_yield = now
                yield task
            wait = min(next_poll, last_yield + TICK_S, deadline_s) - now
            if stop is not None:
                if stop.wait(max(wait, 0.0)):
                    raise Stopped(
                        "Stopped waiting. The task still runs on WaveSpeed and is paid for; its "
                        "video will be saved to your history when it is done.",
                        task_id=task_id,
                    )
            elif wait > 0:
                time.sleep(wait)

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
            with self._session.get(url, stream=True, timeout=self.timeout) as response:
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
        except requests.exceptions.RequestException as exc:
            raise DownloadFailed(
                "The finished video could not be downloaded: check the connection and resume "
                "the run to try again.",
                detail=str(exc)[:300],
            ) from None
        if size == 0:
            raise DownloadFailed("The finished video came back empty: resume the run to try again.")


def _observe(state: PollState, status: str, polled_at: float) -> PollState:
    """Record what a poll saw; the first `processing` pins when processing began."""
    changes: dict[str, Any] = dict(status=status, rate_limited=0, retry_after=None)
    if state.processing_began_by is None:
        if status == "created":
            changes["processing_began_after"] = polled_at
        else:
            changes["processing_began_by"] = polled_at
            changes.setdefault("processing_began_after", state.processing_began_after or 0.0)
    return replace(state, **changes)

