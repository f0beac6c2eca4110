"""Runs waiting for WaveSpeed's webhooks, by the token in their webhook URL and by task id.

A verified call (wavespeed/webhooks.py checks its signature) only wakes the run's follower, which
then fetches the result with its own authenticated GET: the video URL never comes from the
unauthenticated body. The secret is fetched with the key that submitted the task. The owner's is
kept for the process; a visitor's lives only in its run's entry here and goes with it. No secret
is logged.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import Mapping

from skyreels_demo.errors import StudioError
from skyreels_demo.wavespeed.client import WaveSpeedClient
from skyreels_demo.wavespeed.webhooks import ROUTE, SEEN_IDS, Refused, verify

log = logging.getLogger(__name__)


@dataclass
class Waiting:
    """One run that expects a webhook."""

    token: str
    secret: str = field(repr=False)
    pushed: threading.Event = field(default_factory=threading.Event)
    task_id: str = ""


class WebhookHub:
    """Runs waiting for webhooks, by the token in their webhook URL and by task id."""

    def __init__(self, public_url: str | None = None, local_url: str | None = None) -> None:
        # Where WaveSpeed reaches this app; where the offline preview (on this machine) does.
        self.public_url = public_url.rstrip("/") if public_url else None
        self.local_url = local_url.rstrip("/") if local_url else None
        self._lock = threading.Lock()
        self._by_token: dict[str, Waiting] = {}
        self._by_task: dict[str, Waiting] = {}
        self._owner_secrets: dict[str, str] = {}  # base URL -> the owner's secret
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def base_for(self, preview: bool) -> str | None:
        return self.local_url if preview else self.public_url

    def expect(self, client: WaveSpeedClient, *, preview: bool, owner: bool) -> Waiting | None:
        """Ready a run for a webhook: its token and the secret to check it with; None if this
        app cannot be reached or the secret cannot be had (the run then polls as usual)."""
        if self.base_for(preview) is None:
            return None
        try:
            secret = self._secret(client, cache=owner or preview)
        except StudioError as exc:
            log.warning("webhooks off for this run: the secret could not be read (%s)", exc.sentence)
            return None
        waiting = Waiting(token=secrets.token_urlsafe(18), secret=secret)
        with self._lock:
            self._by_token[waiting.token] = waiting
        return waiting

    def url(self, waiting: Waiting, *, preview: bool) -> str:
        return f"{self.base_for(preview)}{ROUTE}/{waiting.token}"

    def submitted(self, waiting: Waiting, task_id: str) -> None:
        with self._lock:
            waiting.task_id = task_id
            self._by_task[task_id] = waiting

    def pushed_event(self, task_id: str | None) -> threading.Event | None:
        """The event a verified webhook sets for this task, if one is expected."""
        with self._lock:
            waiting = self._by_task.get(task_id or "")
        return waiting.pushed if waiting is not None else None

    def forget(self, task_id: str | None = None, waiting: Waiting | None = None) -> None:
        """The run no longer needs its webhook: drop its entry and (a visitor's) secret."""
        with self._lock:
            waiting = waiting or self._by_task.get(task_id or "")
            if waiting is not None:
                self._by_token.pop(waiting.token, None)
                self._by_task.pop(waiting.task_id, None)

    def receive(self, token: str, headers: Mapping[str, str], body: bytes) -> str:
        """Verify a call for the run named by `token` and wake it; raises Refused otherwise."""
        with self._lock:
            waiting = self._by_token.get(token)
        if waiting is None:
            raise Refused(401, "no run expects this webhook")
        payload = verify(waiting.secret, headers, body)
        if waiting.task_id and payload["id"] != waiting.task_id:
            raise Refused(401, "the webhook is for another task")
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self._lock:
            if webhook_id in self._seen:
                return "already seen"
            self._seen[webhook_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        waiting.pushed.set()
        log.info("webhook for task %s: %s", payload["id"], payload.get("status"))
        return "ok"

    def _secret(self, client: WaveSpeedClient, *, cache: bool) -> str:
        if cache:
            with self._lock:
                known = self._owner_secrets.get(client.base_url)
            if known:
                return known
        secret = client.webhook_secret()
        if cache:
            with self._lock:
                self._owner_secrets[client.base_url] = secret
        return secret


