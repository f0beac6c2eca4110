"""Every retry and back-off rule, in one policy object.

Which requests may be sent again, after what, and how long to wait: reads and uploads cost
nothing, so they retry connection errors, 429 and 5xx with capped exponential back-off and
jitter, a server's Retry-After first; the paid submit is sent again only after a 429, which
created nothing. Two callers wait out a 429 themselves, in view, and ask this policy how long:
a poll is never retried inside the request, because the poll schedule owns its timing (WaveSpeed's
rule for checks) and `follow` must keep ticking (and hear Stop) while it backs off
(`poll_backoff`); a submit in the studio's line is sent again by the line, which holds the whole
account back as long (`slowdown`, `paced_attempts`). Whoever asks, a server's Retry-After is read
here once, capped at `longest_wait_s`, as is a request's or a poll's back-off; the line's own
fallback is the account's pace, which the tier sets.
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
    paced_attempts: int = 8  # a submit in the line (line.py), each after a 429 waited out in view
    poll_failures: int = 5  # failed polls in a row before `follow` gives up
    backoff_s: float = 0.25
    backoff_max_s: float = 8.0
    jitter_s: float = 0.25
    # A poll's gap doubles with each 429 in a row, at most this many times (then the cap holds it).
    poll_doublings: int = 5
    # No Retry-After, and no back-off of a request or a poll, is longer: never quiet for long.
    longest_wait_s: float = 30.0
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
        """Seconds to wait before try number `attempt + 1`: the server's Retry-After, else
        exponential back-off with jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.longest_wait_s)
        base = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return base + random.uniform(0, self.jitter_s)

    def poll_backoff(self, gap_s: float, in_a_row: int, retry_after: float | None) -> float:
        """Seconds before the next check of a task whose checks met `in_a_row` 429s in a row:
        the schedule's own `gap_s` doubled with each, never sooner than the server asked. No
        jitter: the rule for checks already spreads them, and the schedule's tests pin the doubling."""
        wait = gap_s * 2 ** min(in_a_row, self.poll_doublings)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(self.longest_wait_s, wait)

    def slowdown(self, retry_after: float | None, pace_s: float) -> float:
        """Seconds a paced submit (and its whole account) waits after a 429: the server's
        Retry-After, else one interval of the account's pace, which the 429 says was too quick."""
        return retry_after if retry_after is not None and retry_after > 0 else pace_s

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
        return min(seconds, self.longest_wait_s)


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


DEFAULT_POLICY = RetryPolicy()
