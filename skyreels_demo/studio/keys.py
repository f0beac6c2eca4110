"""A visitor's key: checked for its shape before any request, kept out of every log line, and
cut off for a visitor whose keys WaveSpeed keeps refusing.

A key is used and forgotten: it lives in its run's client only (access.py). These are the
lines of defence around that: `checked_key` refuses what cannot be a key (whitespace inside,
control characters, under 8 or over 200 characters) with a sentence before any request, so a crafted key
never reaches an HTTP header or an exception message; `KeyMask` masks every key this process
holds, and anything after "Bearer", in every log record (a second line of defence); and
`KeyRefusals` counts keys WaveSpeed refused per visitor, so guessing keys costs nothing here.

The mask holds the owner's key for the life of the process (`remember`), and a visitor's key
only while a run or a check uses it (`in_use`): once the last one ends, the mask forgets it
too, so a pasted key outlives its run nowhere in this process.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Iterator

from skyreels_demo.errors import BadInput
from skyreels_demo.times import HOUR_S

MAX_KEY_CHARS = 200
# WaveSpeed's keys are long; anything this short is a slip, refused before any request.
MIN_KEY_CHARS = 8
# After this many keys refused by WaveSpeed (401/403) in an hour, a visitor's own-key runs and
# key checks are refused before any request.
REFUSED_KEYS_PER_HOUR = 5
MASK = "[key hidden]"


def checked_key(api_key: str | None) -> str | None:
    """The key as typed, trimmed, or None for none; `BadInput` when it cannot be a key."""
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise BadInput("The WaveSpeed key must be text: paste it again.")
    key = api_key.strip()
    if not key:
        return None
    if len(key) < MIN_KEY_CHARS:
        raise BadInput(
            f"That is not a WaveSpeed key: it is only {len(key)} character{'s' if len(key) != 1 else ''} long; "
            "copy the whole key again from your WaveSpeed account."
        )
    if len(key) > MAX_KEY_CHARS:
        raise BadInput(
            f"That is not a WaveSpeed key: it is {len(key)} characters long, and keys are far "
            f"shorter (at most {MAX_KEY_CHARS}); copy the key again from your WaveSpeed account."
        )
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise BadInput(
            "That is not a WaveSpeed key: it has spaces, line breaks or other invisible characters "
            "inside; copy the key again from your WaveSpeed account."
        )
    return key


# -- masking ---------------------------------------------------------------------------------

_held_lock = threading.Lock()
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",;]+")
FOR_GOOD = -1
# Keys to mask: how many runs and checks use each now, or FOR_GOOD (the owner's). Only the mask
# holds them here, never a log or a file.
_held: dict[str, int] = {}


def remember(key: str) -> None:
    """Mask this key in every log line for the life of the process (the owner's key)."""
    if len(key) < 8:
        return  # too short to mask without masking ordinary words
    with _held_lock:
        _held[key] = FOR_GOOD


@contextmanager
def in_use(api_key: str | None) -> Iterator[None]:
    """Mask a visitor's key in every log line while the block runs (their run, or a check of
    the key); when the last block using it ends, the mask forgets it."""
    key = api_key.strip() if isinstance(api_key, str) else ""
    if len(key) < 8:
        yield  # no key, or too short to be one: nothing to mask
        return
    with _held_lock:
        if _held.get(key) != FOR_GOOD:
            _held[key] = _held.get(key, 0) + 1
    try:
        yield
    finally:
        with _held_lock:
            uses = _held.get(key)
            if uses is not None and uses != FOR_GOOD:
                if uses > 1:
                    _held[key] = uses - 1
                else:
                    del _held[key]


def mask(text: str) -> str:
    """`text` with every remembered key, and anything after "Bearer", hidden."""
    if not text:
        return text
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    with _held_lock:
        keys = list(_held)
    for key in keys:
        if key in text:
            text = text.replace(key, MASK)
    return text


class KeyMask(logging.Filter):
    """Masks keys in a record's message and its traceback before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: show it raw, masked
            message = f"{record.msg} {record.args}"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def install_key_mask(logger: logging.Logger | None = None) -> None:
    """Put the mask on every handler of `logger` (the root logger by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, KeyMask) for f in handler.filters):
            handler.addFilter(KeyMask())


# -- refused keys ----------------------------------------------------------------------------


class KeyRefusals:
    """Keys WaveSpeed refused, counted per visitor (as the server decided who they are)."""

    def __init__(self, most: int = REFUSED_KEYS_PER_HOUR, *, clock=time.time) -> None:
        self.most = most
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def refused(self, requester: str) -> None:
        with self._lock:
            times = self._recent(requester)
            times.append(self._clock())
            self._seen[requester] = times
            if len(self._seen) > 10_000:  # forget the visitor heard from least recently
                self._seen.pop(next(iter(self._seen)))

    def check(self, requester: str) -> None:
        """Refuses (BadInput) a visitor whose keys were refused too often in the last hour."""
        with self._lock:
            times = self._recent(requester)
        if len(times) >= self.most:
            raise BadInput(
                f"WaveSpeed refused {len(times)} keys from you in the last hour, so this app will "
                "not try another for a while: check the key in your WaveSpeed account, then come back later."
            )

    def _recent(self, requester: str) -> deque[float]:
        times = self._seen.pop(requester, deque())
        cutoff = self._clock() - HOUR_S
        while times and times[0] < cutoff:
            times.popleft()
        if times:
            self._seen[requester] = times
        return times
