"""Every retry rule of the client, in one policy object.

Which requests may be sent again, after what, and how long to wait: reads and uploads cost
nothing, so they retry connection errors, 429 and 5xx with capped exponential back-off and
jitter, a server's Retry-After first; the paid submit is sent again only after a 429, which
created nothing; a poll is never retried inside the request, because the poll schedule owns
its timing and `follow` must keep ticking (and hear Stop) while it backs off.
"""

from __future__ import annotations

import email.utils
import enum
import random
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Mapping


class Call(enum.Enum):
    """What a request is, as far as trying it again goes."""

    READ = "read"  # downloads, balance, secrets: safe to repeat
    UPLOAD = "upload"  # costs nothing and creates nothing paid for
    PAID = "paid"  # a submit: repeating it may make (and bill) a second video
    PACED = "paced"  # a submit whose 429 the line waits out in view (line.py): never repeated here
    POLL = "poll"  # a task's result: the schedule decides when to ask again


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # reads and uploads: the first try and three more
    paid_attempts: int = 3  # a submit, each after a 429
    backoff_s: float = 0.25
    backoff_max_s: float = 8.0
    jitter_s: float = 0.25
    retry_after_cap_s: float = 30.0
    poll_failures: int = 5  # failed polls in a row before `follow` gives up
    transient_statuses: frozenset[int] = frozenset({500, 502, 503, 504})

    def may_retry(self, call: Call, attempt: int, status: int | None) -> bool:
        """After try number `attempt` (from 1) ended in `status` (None: no answer at all)."""
        if call is Call.POLL or call is Call.PACED:
            return False
        if call is Call.PAID:
            return status == 429 and attempt < self.paid_attempts
        retryable = status is None or status == 429 or status in self.transient_statuses
        return retryable and attempt < self.attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number `attempt + 1`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap_s)
        base = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return base + random.uniform(0, self.jitter_s)

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """A server's Retry-After in seconds (capped), or None when absent or unreadable.

        Seconds (fractions too) or an HTTP date; a negative or malformed value is no advice.
        """
        raw = (headers.get("Retry-After") or "").strip()
        try:
            seconds = float(raw)
        except ValueError:
            seconds = _seconds_until(raw)
            if seconds is None:
                return None
        if seconds != seconds or seconds < 0:  # NaN or negative
            return None
        return min(seconds, self.retry_after_cap_s)


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


DEFAULT_POLICY = RetryPolicy()
