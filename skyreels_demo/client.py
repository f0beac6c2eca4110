"""WaveSpeed REST client: upload, submit, result, follow, download; HTTP and nothing else.

One `requests.Session` for connection pooling. Whether a request is sent again is decided by
one `RetryPolicy` (retries.py): reads and uploads retry, the paid submit only after a 429, and a
poll never inside the request, so `follow` keeps ticking while the schedule backs off. When to
poll is decided by a `Poller` (schedule.py); `follow` only asks and waits. The key rides on an
auth hook that adds it only to requests for the API's own origin, so a CDN hosting a video never
sees it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .config import Settings
from .errors import (
    ApiError,
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
from .models import ModelSpec
from .retries import DEFAULT_POLICY, Call, RetryPolicy
from .schedule import Poller, PollSchedule
from .tasks import Task, TaskState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Balance:
    amount: float
    currency: str = "USD"

# Ways to hand WaveSpeed the image, in the order `auto` tries them: the official SDK's ticket and
# PUT, the documented binary upload, then the image inline as a data URI in the submit itself.
WAYS_UP = ("ticket", "binary", "inline")
# Which way worked, per base URL, for this process: later runs go straight to it.
_way_that_worked: dict[str, str] = {}
_way_lock = threading.Lock()

# How often `follow` yields while it waits, so a UI can show the time passing.
TICK_S = 1.0
# While a webhook may wake a follow, Stop is checked at least this often.
STOP_CHECK_S = 0.2


# --- transport -------------------------------------------------------------------------------


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


def _error_from_response(
    response: requests.Response, body: Mapping[str, Any] | None, doing: str, policy: RetryPolicy = DEFAULT_POLICY
):
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
            retry_after=policy.retry_after(response.headers),
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

    def __init__(self, settings: Settings, *, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        if not settings.api_key:
            raise AuthError("No WaveSpeed API key was given: set WAVESPEED_API_KEY or enter one.")
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.policy = policy
        self.timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        session = requests.Session()
        session.headers["User-Agent"] = f"skyreels-studio/{__version__} (+python-requests)"
        session.auth = _BearerForOrigin(settings.api_key, _origin(self.base_url))
        # Retries are the policy's, not urllib3's. One kept-alive connection for each run that
        # may follow at once: a discarded one costs a new TLS handshake later.
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=max(16, settings.max_concurrent_tasks + 4))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        # The upload's PUT goes to storage, elsewhere: a session that never carries the key.
        self._storage = requests.Session()
        self._storage.headers["User-Agent"] = session.headers["User-Agent"]
        self._storage.mount("http://", adapter)
        self._storage.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"WaveSpeedClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()
        self._storage.close()

    def __enter__(self) -> "WaveSpeedClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests and envelopes --

    def _send(
        self, call: Call, method: str, url: str, doing: str, session: requests.Session | None = None, **kwargs
    ) -> requests.Response:
        """Send, and send again while the policy allows; returns the last answer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = (session or self._session).request(method, url, timeout=self.timeout, **kwargs)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                # A paid POST whose answer was lost may have created its task: never again.
                if not self.policy.may_retry(call, attempt, None):
                    raise _no_answer(exc, url, doing) from None
                log.info("no answer while %s (%s); trying again", doing, type(exc).__name__)
                time.sleep(self.policy.delay(attempt))
                continue
            if response.status_code < 400 or not self.policy.may_retry(call, attempt, response.status_code):
                return response
            wait = self.policy.delay(attempt, self.policy.retry_after(response.headers))
            log.info("HTTP %d while %s; trying again in %.1fs", response.status_code, doing, wait)
            response.close()
            time.sleep(wait)

    def _request(
        self, call: Call, method: str, path: str, doing: str, error=None, **kwargs
    ) -> Mapping[str, Any]:
        """One exchange (with the policy's retries); returns the envelope's `data` or raises."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        response = self._send(call, method, url, doing, **kwargs)
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
                err = _error_from_response(
                    response, body if isinstance(body, Mapping) else None, doing, self.policy
                )
            if error is not None and not isinstance(err, (AuthError, RateLimited)):
                err = error(err.sentence, status=err.status, code=err.code, detail=err.detail)
            log.warning("%s", err.detail or err.sentence)
            raise err
        data = body.get("data")
        return data if isinstance(data, Mapping) else {}

    # -- the API --

    def upload(self, data: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg") -> str:
        """Hand WaveSpeed the image; return what to submit as `image` (a URL, or a data URI).

        With `image_transport="auto"` it tries the official SDK's ticket and PUT, then the
        documented binary upload when that route answers 404 or 405, then the image inline;
        the way that worked is remembered for this base URL. "upload" never goes inline;
        "inline" never uploads. An upload costs nothing, so each way may be retried; it is
        never the paid submit.
        """
        started = time.monotonic()
        ways = self._ways_up()
        for index, way in enumerate(ways):
            try:
                url = self._upload_by(way, data, filename, content_type)
            except ApiError as exc:
                retired = exc.status in (404, 405) and not isinstance(exc, AuthError)
                if retired and index + 1 < len(ways):
                    log.info("the %s upload is not offered here (HTTP %s); trying the next way", way, exc.status)
                    continue
                raise
            with _way_lock:
                _way_that_worked[self.base_url] = way
            log.info("image handed over (%s, %d bytes) in %.2fs", way, len(data), time.monotonic() - started)
            return url
        raise AssertionError("unreachable: the last way either returns or raises")

    def _ways_up(self) -> tuple[str, ...]:
        setting = self.settings.image_transport
        if setting == "inline":
            return ("inline",)
        ways = WAYS_UP if setting == "auto" else ("ticket", "binary")
        with _way_lock:
            known = _way_that_worked.get(self.base_url)
        if known in ways:
            return (known,) + tuple(way for way in ways if way != known)
        return ways

    def _upload_by(self, way: str, data: bytes, filename: str, content_type: str) -> str:
        if way == "inline":
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        if way == "binary":
            body = self._request(
                Call.UPLOAD,
                "POST",
                "/api/v3/media/upload/binary",
                "uploading the image",
                error=UploadFailed,
                files={"file": (filename, data, content_type)},
            )
        else:
            body = self._upload_with_ticket(data, filename, content_type)
        url = body.get("download_url")
        if not isinstance(url, str) or not url:
            raise UploadFailed("The upload did not return an image URL: try again in a minute.")
        return url

    def _upload_with_ticket(self, data: bytes, filename: str, content_type: str) -> Mapping[str, Any]:
        """The official SDK's way: a ticket from the API, then a PUT to where it points."""
        body = self._request(
            Call.UPLOAD,
            "POST",
            "/api/v3/media/uploads",
            "asking where to upload the image",
            error=UploadFailed,
            json={"filename": filename, "size": len(data), "content_type": content_type},
        )
        ticket = body.get("upload")
        ticket = ticket if isinstance(ticket, Mapping) else {}
        url, headers = ticket.get("url"), ticket.get("headers") or {}
        if str(ticket.get("method", "")).upper() != "PUT" or not isinstance(url, str) or not url:
            raise UploadFailed("WaveSpeed did not say where to upload the image: try again in a minute.")
        if not isinstance(headers, Mapping):
            headers = {}
        response = self._send(
            Call.UPLOAD,
            "PUT",
            url,
            "uploading the image",
            session=self._storage,
            data=data,
            headers={str(k): str(v) for k, v in headers.items()},
        )
        if not 200 <= response.status_code < 300:
            raise UploadFailed(
                f"The image could not be uploaded (storage answered HTTP {response.status_code}): "
                "try again in a minute.",
                status=response.status_code,
                detail=response.text[:200],
            )
        return body

    def webhook_secret(self) -> str:
        """The account's webhook signing secret (`whsec_...`); never logged."""
        response = self._send(Call.READ, "GET", f"{self.base_url}/api/v3/webhook/secret", "reading the webhook secret")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, Mapping) or body.get("code", 200) != 200:
            raise _error_from_response(response, body if isinstance(body, Mapping) else None,
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

    def submit(self, model: ModelSpec, inputs: Mapping[str, Any], *, webhook: str | None = None) -> Task:
        """Start one task. Sent once; again only after a 429, which created nothing.

        `webhook`: where WaveSpeed should POST the task's end (completed or failed).
        """
        payload = model.payload(inputs)
        path = model.path + (f"?webhook={quote(webhook, safe='')}" if webhook else "")
        try:
            data = self._request(Call.PAID, "POST", path, "submitting the task", json=payload)
        except ServiceError as exc:
            # The task may exist even though the answer was lost: never send it again blindly.
            raise ServiceError(
                "WaveSpeed did not confirm the task (" + (exc.detail or "no answer")[:120] + "); it "
                "may still have started, so check your WaveSpeed history before trying again.",
                status=exc.status,
                code=exc.code,
                detail=exc.detail,
            ) from None
        task = Task.from_data(data)
        if not task.id:
            raise ServiceError("WaveSpeed accepted the task but sent no task id: try again later.")
        return task

    def result(self, task_id: str) -> Task:
        data = self._request(Call.POLL, "GET", f"/api/v3/predictions/{task_id}/result", "checking the task")
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
        """Yield the task whenever its status changes, and at least every second while it runs.

        Ends after yielding a final task; a failed one raises `TaskFailed` after it is yielded.
        Raises `TimedOut` (with the task id) when `deadline_s` from now passes, and `Stopped`
        when `stop` is set. Transient poll errors are tried again until the deadline.
        `submitted_ago_s` tells the schedule how old the task already is (when resuming);
        `pushed`, when given, is set by a verified webhook: the schedule then polls only as a
        safety net, and confirms at once when it is set.
        """
        budget_s = self.settings.run_deadline_s if deadline_s is None else deadline_s
        poller = Poller(
            schedule,
            age_s=submitted_ago_s,
            answer_in_hand=first is not None,
            max_failures=self.policy.poll_failures,
            push_expected=pushed is not None,
        )
        deadline = poller.now() + budget_s
        task = first or Task.queued(task_id)
        last_yield = -TICK_S
        while True:
            if pushed is not None and pushed.is_set():
                pushed.clear()
                poller.pushed()
            if poller.due_in() <= 0:
                fresh = self._poll(task, poller)
                changed = fresh.state != task.state or fresh.outputs != task.outputs
                task = fresh
                if changed or task.is_final:
                    last_yield = poller.now()
                    yield task
                if task.is_final:
                    if not task.succeeded:
                        raise task_failed(task.id, task.error_code, task.error)
                    return
            now = poller.now()
            if now >= deadline:
                raise TimedOut(
                    f"The video is still being made after {budget_s:.0f} s; it is saved, so "
                    "resume it later to fetch the result.",
                    task_id=task_id,
                    last_status=task.api_status,
                )
            if now - last_yield >= TICK_S:
                last_yield = now
                yield task
            wait = max(0.0, min(poller.due_in(), last_yield + TICK_S - now, deadline - now))
            if _wait(wait, stop, pushed):
                raise Stopped(
                    "Stopped waiting. The task still runs on WaveSpeed and is paid for; its "
                    "video will be saved to your history when it is done.",
                    task_id=task_id,
                )

    def _poll(self, task: Task, poller: Poller) -> Task:
        """One result request, its outcome told to the poller; the last known task on trouble."""
        poller.polling()
        try:
            fresh = self.result(task.id)
        except RateLimited as exc:
            poller.rate_limited(exc.retry_after)
            return task
        except (ServiceError, NetworkError) as exc:
            if poller.failed():
                raise
            log.info("poll failed (%s); trying again", exc.detail or exc.sentence)
            return task
        poller.saw(fresh.state)
        return fresh

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


def _no_answer(exc: Exception, url: str, doing: str) -> Exception:
    if isinstance(exc, requests.exceptions.Timeout) and not isinstance(exc, requests.exceptions.ConnectTimeout):
        return ServiceError(f"WaveSpeed did not answer in time while {doing}: try again in a minute.")
    log.info("connection failed while %s: %s", doing, exc)
    return NetworkError(
        f"Could not reach {urlsplit(url).hostname} while {doing}: check the internet "
        "connection and try again.",
        detail=str(exc)[:300],
    )


def _wait(seconds: float, stop: threading.Event | None, pushed: threading.Event | None) -> bool:
    """Sleep up to `seconds`, ending early on a stop or a push; True when stopped."""
    if stop is None and pushed is None:
        time.sleep(seconds)
        return False
    if pushed is None:
        return stop.wait(seconds)  # type: ignore[union-attr]
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if stop is not None and stop.is_set():
            return True
        if remaining <= 0 or pushed.is_set():
            return False
        pushed.wait(min(remaining, STOP_CHECK_S))
