"""Connections, bounded before a request exists.

Why: uvicorn counts every open connection against `limit_concurrency` and has no timeout for an
unfinished request head. 1,010 connections from one address that sent a request line and never
finished their headers made every other visitor get 503 for 40 s, and the door (door.py) could
do nothing: it sees requests, and those connections never became one.

So the server speaks HTTP through `guarded_protocol(limits)`, uvicorn's h11 protocol with two
bounds of its own:

- one address (the TCP peer: what the server sees before any header) holds at most
  `per_address` connections at once; the next is answered 503 and closed as it opens;
- a request head (request line and headers) must be complete within `head_timeout_s` of the
  connection opening, or of its first byte on a kept-alive connection; else it is closed. An
  idle kept-alive connection stays uvicorn's (`timeout_keep_alive`), as before.

h11 is named outright rather than uvicorn's "auto" (httptools when installed): one parser, the
one tested here, whose 16 KiB limit on an incomplete head also bounds what a slow head holds.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from skyreels_demo.config import Settings

log = logging.getLogger(__name__)

PER_ADDRESS = 32
HEAD_TIMEOUT_S = 5.0
_SENTENCE = b"Too many open connections from your address: try again in a moment.\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\nretry-after: 5\r\ncontent-length: %d\r\n\r\n%s" % (len(_SENTENCE), _SENTENCE)
)


@dataclass(frozen=True)
class ConnectionLimits:
    """`per_address` None: no cap per address (the head timeout always applies)."""

    per_address: int | None = PER_ADDRESS
    head_timeout_s: float = HEAD_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        # Behind a trusted proxy (SKYREELS_PROXY_HOPS > 0: a Space has one) every visitor arrives
        # as the proxy's address, so a cap per address would be one cap for everyone: 33 honest
        # visitors would lock out the rest. Who the visitor is lies in X-Forwarded-For, inside the
        # very head a half-open connection never finishes, so it cannot be counted here either.
        # There the cap is off, and the proxy, which sees the visitors' own addresses, is the
        # place for one; the head timeout stays, so whatever half-open connection the proxy
        # relays is closed within seconds, and `limit_concurrency` stays the global bound.
        # A laptop (shared mode off) is not capped either, as the door passes it through.
        capped = settings.shared and settings.proxy_hops == 0
        return cls(per_address=PER_ADDRESS if capped else None)


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with `limits`, for `uvicorn.Config(http=...)`. Each call makes a
    class with its own count of open connections per address (one per server)."""
    open_by_address: Counter[str] = Counter()
    warned: set[str] = set()

    class GuardedH11Protocol(H11Protocol):
        _address: str | None = None
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else None  # None on a Unix socket
            if address is not None and limits.per_address is not None:
                if open_by_address[address] >= limits.per_address:
                    if address not in warned:  # once until the address lets go of all of them
                        warned.add(address)
                        log.warning("%s holds %d connections: refusing more", address, limits.per_address)
                    transport.write(BUSY)  # best effort: a head already sent may turn it into a reset
                    transport.close()
                    return
            if address is not None:
                open_by_address[address] += 1
                self._address = address
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_timer()  # the head is complete: the request is the app's
            elif self._head_timer is None and not self.transport.is_closing():
                self._arm_head_timer()  # the first bytes of the next head on a kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            self._release()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            # The transport moves to a WebSocket protocol, which will hear connection_lost instead.
            self._disarm_head_timer()
            super().handle_websocket_upgrade(event)
            upgraded: Any = self.transport.get_protocol()
            lost = upgraded.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                self._release()
                lost(exc)

            upgraded.connection_lost = connection_lost

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(limits.head_timeout_s, self._head_timed_out)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def _release(self) -> None:
            address, self._address = self._address, None
            if address is not None:
                open_by_address[address] -= 1
                if open_by_address[address] <= 0:
                    del open_by_address[address]
                    warned.discard(address)

    return GuardedH11Protocol


def raise_open_files_limit(needed: int) -> int:
    """Raise this process's soft limit on open files to its hard limit, and return it.

    Every connection is a file descriptor, and at the limit asyncio stops accepting anyone for
    a second at a time: a soft limit of 1,024 (a common default) is below `limit_concurrency`
    plus the app's own files. Warns when even the hard limit is under `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.info("open files: raised the soft limit from %d to %d", soft, hard)
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("open files: could not raise the soft limit of %d: %s", soft, exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("open files: at most %d, under the %d the server may hold", soft, needed)
    return soft
