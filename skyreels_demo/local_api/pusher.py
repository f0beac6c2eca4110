"""Webhooks from the offline backend: when a task ends, POST its result where the submit said,
signed as WaveSpeed signs them, with switches that lose, delay, repeat or mis-sign a delivery.

Deliveries go only to loopback addresses, like every fetch this backend makes.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import requests

from skyreels_demo.local_api.fetch import refuse_address
from skyreels_demo.status import ApiWord

if TYPE_CHECKING:
    from skyreels_demo.local_api.backend import LocalBackend

FAULTS = ("lost", "delayed", "duplicated", "bad_signature")
SECRET_PREFIX = "whsec_"


def signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """WaveSpeed's signature: hex HMAC-SHA256 of "id.timestamp.body", keyed by the secret without
    its prefix. Written here, not borrowed from the app, so the app's check is tested against a
    signer it does not share."""
    key = secret.removeprefix(SECRET_PREFIX).encode()
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class Pusher(threading.Thread):
    """Watches tasks that asked for a webhook and delivers each one's end once it comes."""

    def __init__(self, backend: LocalBackend) -> None:
        super().__init__(name="local-api-webhooks", daemon=True)
        self.backend = backend
        self.secret = SECRET_PREFIX + secrets.token_urlsafe(24)
        self.delivered: list[dict[str, Any]] = []  # what was sent (for tests), newest last
        self._due: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._faults: collections.deque[tuple[str, float]] = collections.deque()
        # Not `_stop`: that would shadow Thread._stop, which join() calls.
        self._halt = threading.Event()
        self._http = requests.Session()
        self._http.trust_env = False

    def arm(self, fault: str, seconds: float = 0.0) -> None:
        """The next delivery is lost, delayed by `seconds`, sent twice, or signed wrongly."""
        if fault not in FAULTS:
            raise ValueError(f"unknown webhook fault {fault!r}; use one of {', '.join(FAULTS)}")
        with self._cond:
            self._faults.append((fault, seconds))

    def watch(self, task_id: str, at: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (at, task_id))
            self._cond.notify()

    def stop(self) -> None:
        self._halt.set()
        with self._cond:
            self._cond.notify()

    def run(self) -> None:
        while not self._halt.is_set():
            with self._cond:
                now = time.time()
                if not self._due or self._due[0][0] > now:
                    wait = (self._due[0][0] - now) if self._due else None
                    self._cond.wait(timeout=wait)
                    continue
                _, task_id = heapq.heappop(self._due)
            try:
                self._consider(task_id)
            except Exception:  # one bad delivery must not end the others
                logging.getLogger(__name__).exception("webhook for task %s failed", task_id)

    def _consider(self, task_id: str) -> None:
        record = self.backend.find_task(task_id)
        if record is None or not record.webhook:
            return
        status = record.status
        if status == ApiWord.DELETED:
            return  # kept past its retention: nothing is sent any more
        if status not in (ApiWord.COMPLETED, ApiWord.FAILED):
            self.watch(task_id, time.time() + 0.05)  # the render may still be finishing
            return
        with self._cond:
            fault, seconds = self._faults.popleft() if self._faults else ("", 0.0)
        if fault == "lost":
            return
        if fault == "delayed":
            time.sleep(seconds)
        copies = 2 if fault == "duplicated" else 1
        self._deliver(record.webhook, self._body(record, status), bad=fault == "bad_signature", copies=copies)

    def _body(self, record, status: str) -> bytes:
        from skyreels_demo.local_api.routes.tasks import task_data

        data = task_data(record, self.backend.model_of(record), self.backend.base_url, self.backend.clock())
        body = {
            "id": data["id"],
            "model": data["model"],
            "input": {"prompt": record.prompt, "image": record.image_url, "seed": record.seed},
            "urls": data["urls"],
            "has_nsfw_contents": data["has_nsfw_contents"],
            "status": status,
            "created_at": data["created_at"],
            "error": data["error"],
        }
        if status == ApiWord.COMPLETED:
            body["outputs"] = data["outputs"]
        return json.dumps(body).encode()

    def _deliver(self, url: str, body: bytes, *, bad: bool, copies: int) -> None:
        if refuse_address(url) is not None:
            return  # never beyond this machine
        webhook_id = f"msg_{uuid.uuid4().hex}"
        stamp = str(int(time.time()))
        signed = signature(SECRET_PREFIX + "not-the-secret" if bad else self.secret, webhook_id, stamp, body)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": f"v3,{signed}",
        }
        for _ in range(copies):
            try:
                answer = self._http.post(url, data=body, headers=headers, timeout=5, allow_redirects=False)
                outcome = answer.status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            self.delivered.append({"url": url, "id": webhook_id, "at": time.time(), "answer": outcome})
