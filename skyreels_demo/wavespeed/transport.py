"""The client's HTTP: one pooled session per key, one retry policy, one typed error per answer.

Whether a request is sent again is decided by the `RetryPolicy` (retries.py) alone; urllib3's
own retries are off. The key rides on an auth hook that adds it only to requests for the API's
own origin, so a CDN hosting a video never sees it; the upload's PUT to storage goes through a
second session that never carries it.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from skyreels_demo import __version__
from skyreels_demo.config import Settings
from skyreels_demo.errors import AuthError, BadRequest, NetworkError, RateLimited, ServiceError
from skyreels_demo.wavespeed.retries import DEFAULT_POLICY, Call, RetryPolicy

log = logging.getLogger(__name__)


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


def error_from_response(
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


class Transport:
    """One key's HTTP to WaveSpeed: pooled sessions, the retry policy, answers as envelopes or one typed error."""

    def __init__(self, settings: Settings, *, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        if not settings.api_key:
            raise AuthError("No WaveSpeed API key was given: set WAVESPEED_API_KEY or enter one.")
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.policy = policy
        self.timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        # A submit's answer may be slow while WaveSpeed creates the task: waiting the SDK's 60 s
        # keeps a slow answer from becoming an unconfirmed run; an upload may carry megabytes.
        self.timeouts = {
            Call.PAID: (settings.connect_timeout_s, settings.submit_timeout_s),
            Call.PACED: (settings.connect_timeout_s, settings.submit_timeout_s),
            Call.UPLOAD: (settings.connect_timeout_s, settings.upload_timeout_s),
        }
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
        self.storage = requests.Session()
        self.storage.headers["User-Agent"] = session.headers["User-Agent"]
        self.storage.mount("http://", adapter)
        self.storage.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()
        self.storage.close()

    # -- requests and envelopes --

    def send(
        self, call: Call, method: str, url: str, doing: str, session: requests.Session | None = None, **kwargs
    ) -> requests.Response:
        """Send, and send again while the policy allows; returns the last answer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = (session or self._session).request(
                    method, url, timeout=self.timeouts.get(call, self.timeout), **kwargs
                )
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                if attempt == 1 and method in ("GET", "HEAD") and _stale_connection(exc):
                    # A kept-alive connection the server closed as this request left (servers close
                    # idle ones after some seconds, as a task's checks 5 s apart meet): it never
                    # reached the server, so it goes again at once, on a new connection.
                    log.info("a kept-alive connection was closed while %s; asking again", doing)
                    continue
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

    def request(
        self, call: Call, method: str, path: str, doing: str, error=None, **kwargs
    ) -> Mapping[str, Any]:
        """One exchange (with the policy's retries); returns the envelope's `data` or raises."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        response = self.send(call, method, url, doing, **kwargs)
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
                err = error_from_response(
                    response, body if isinstance(body, Mapping) else None, doing, self.policy
                )
            if error is not None and not isinstance(err, (AuthError, RateLimited)):
                err = error(err.sentence, status=err.status, code=err.code, detail=err.detail)
            log.warning("%s", err.detail or err.sentence)
            raise err
        data = body.get("data")
        return data if isinstance(data, Mapping) else {}



def _no_answer(exc: Exception, url: str, doing: str) -> Exception:
    if isinstance(exc, requests.exceptions.Timeout) and not isinstance(exc, requests.exceptions.ConnectTimeout):
        err: Exception = ServiceError(f"WaveSpeed did not answer in time while {doing}: try again in a minute.")
        err.lost_in_flight = True
        return err
    log.info("connection failed while %s: %s", doing, type(exc).__name__)
    err = NetworkError(
        f"Could not reach {urlsplit(url).hostname} while {doing}: check the internet "
        "connection and try again.",
        detail=type(exc).__name__,
    )
    err.lost_in_flight = _maybe_delivered(exc)
    return err


def _stale_connection(exc: Exception) -> bool:
    """Whether a request failed because its kept-alive connection was closed under it (the
    server dropped it without an answer), rather than for want of a server or of time."""
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(cause, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
        for cause in _causes(exc)
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (requests' and urllib3's `reason`s and first arguments)."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and all(cause is not s for s in seen):
        seen.append(cause)
        nested = getattr(cause, "reason", None)
        inner = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = nested if isinstance(nested, BaseException) else inner or cause.__cause__ or cause.__context__
    return seen


def _maybe_delivered(exc: Exception) -> bool:
    """Whether a failed request may have reached the server: only a connection that was never
    made (refused, unresolvable, timed out connecting) surely carried nothing."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError,
                              ConnectionRefusedError, urllib3.exceptions.ConnectTimeoutError)):
            return False
        nested = getattr(cause, "reason", None)
        if isinstance(nested, BaseException) and id(nested) not in seen:
            cause = nested
            continue
        inner = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = inner or cause.__cause__ or cause.__context__
    return True
