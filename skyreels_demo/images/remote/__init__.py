"""Fetching a picture named by an http(s) address, without letting the address reach inward.

A visitor (through the API or MCP) may name the image by its web address; this server then
downloads it on the visitor's behalf, so the address must not be a way into this machine or
its network. The host is looked up once, every address it has must be public, the connection
goes to the address that was checked (no second lookup a DNS rebind could change), every
redirect is checked again the same way, and the body is capped in bytes and in time.

Each refusal is an `ImageRejected` with one sentence; the detail goes to the log, which never
holds the address's query string or credentials.

This package's face is here: `fetch_image` (the hops, each address checked, the redirects),
`ImageAddress` and `refuse_inward_literal`. Its parts, each a logger under this one:
    networks.py   which addresses are public (pure, no network)
    hop.py        one hop: the address read, the connection to a checked IP, the capped body
    refusals.py   the sentences a visitor is told, and the detail the log is told

An address an API or MCP client names arrives as an `ImageAddress`, and nothing is fetched until
the run it belongs to has been admitted by the caps (the studio asks for it then): then it is
fetched, and made into the model's frame, on a small pool of threads of its own
(`FETCHES_AT_ONCE`), never on the pool the server and Gradio share, and once however many runs
share it (variations).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin

from skyreels_demo.errors import ImageRejected
from skyreels_demo.images.limits import MAX_BYTES
from skyreels_demo.images.remote.hop import Hop, connect, parse, read_body, shown
from skyreels_demo.images.remote.networks import non_public_kind
from skyreels_demo.images.remote.refusals import (
    NOT_PUBLIC,
    THIS_SERVER,
    TOO_SLOW,
    UNKNOWN_HOST,
    not_public,
    refused,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 5.0
# The whole fetch (look-ups, connections, redirects and body): a picture, not a film.
TIMEOUT_S = 20.0
REDIRECTS = {301, 302, 303, 307, 308}
# Pictures fetched by address at once, each within TIMEOUT_S and MAX_BYTES; more wait their turn.
FETCHES_AT_ONCE = 3

Resolver = Callable[..., Sequence[tuple]]  # socket.getaddrinfo's shape


def fetch_image(
    url: str,
    *,
    allow_loopback: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout_s: float = TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    resolve: Resolver = socket.getaddrinfo,
) -> bytes:
    """The bytes at an http(s) address whose every hop is public, or `ImageRejected`.

    `allow_loopback` lets addresses on this machine through (tests serve pictures on
    127.0.0.1); nothing else that is not public is ever allowed. `resolve` has
    `socket.getaddrinfo`'s signature, so tests can answer look-ups without any DNS.
    """
    deadline = time.monotonic() + timeout_s
    for _hop in range(MAX_REDIRECTS + 1):
        target = parse(url)
        addresses = _public_addresses(target, resolve, deadline, allow_loopback=allow_loopback)
        response = connect(target, addresses, deadline, connect_timeout_s)
        try:
            if response.status in REDIRECTS and response.headers.get("Location"):
                log.info("Image address %s redirects (%d)", target.shown, response.status)
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                reason = http.client.responses.get(response.status, "")
                answered = f"{response.status} {reason}".strip()
                raise refused(
                    f"The image address answered {answered}, so the picture was not fetched: "
                    "check the address, or upload the file instead.",
                    "%s answered %d",
                    target.shown,
                    response.status,
                )
            return read_body(response, target, max_bytes, deadline)
        finally:
            response.close()  # and its connection: one pool, one use
    raise refused(
        f"That image address redirects more than {MAX_REDIRECTS} times, so it was not fetched: "
        "use the picture's own address, or upload the file instead.",
        "more than %d redirects, the last to %s",
        MAX_REDIRECTS,
        shown(url),
    )


# --- an address, fetched once its run may go ---------------------------------------------------

_UNFETCHED = "The image address could not be fetched: check it, or upload the file instead."
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fetch_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=FETCHES_AT_ONCE, thread_name_prefix="image-address")
        return _pool


class ImageAddress:
    """A picture an API or MCP client named by its http(s) address, not fetched yet.

    `fetch` is asked for only once the run is admitted (caps.py, in the studio); the first call
    starts the fetch (and `then`, the frame's preparation) on this module's own pool and every
    later call gets the same `Future`, so the variations of one request fetch the picture once.
    Its repr, like the log, never holds the address's query string or credentials.
    """

    def __init__(self, url: str) -> None:
        self.url = url.strip()
        self._lock = threading.Lock()
        self._future: Future | None = None

    def __repr__(self) -> str:
        return f"ImageAddress({shown(self.url)!r})"

    def fetch(self, then: Callable[[bytes], Any], *, allow_loopback: bool = False) -> Future:
        """The `Future` of `then(picture bytes)`: `ImageRejected` with a sentence on a refusal."""
        with self._lock:
            if self._future is None:
                self._future = _fetch_pool().submit(self._fetch_then, then, allow_loopback)
            return self._future

    def _fetch_then(self, then: Callable[[bytes], Any], allow_loopback: bool) -> Any:
        try:
            data = fetch_image(self.url, allow_loopback=allow_loopback)
        except ImageRejected:
            raise
        except Exception:  # an API client must get a sentence, never a traceback
            log.exception("fetching the image address %s failed", shown(self.url))
            raise ImageRejected(_UNFETCHED) from None
        return then(data)


def refuse_inward_literal(url: str, *, allow_loopback: bool = False) -> None:
    """Refuse (ImageRejected) an image address that names a non-public host outright: an IP
    address, or localhost. A name is not looked up here: WaveSpeed fetches it from its own
    network, where this machine's private ones are not reachable."""
    target = parse(url)
    host = target.host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        if allow_loopback:
            return
        raise refused(THIS_SERVER, "%s names this machine", target.shown)
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name
    kind = non_public_kind(address, allow_loopback=allow_loopback)
    if kind is not None:
        raise refused(not_public(kind), "%s is a %s address", target.shown, kind)


def _public_addresses(
    target: Hop, resolve: Resolver, deadline: float, *, allow_loopback: bool
) -> list[str]:
    """Every address the host has, each checked; refused if any one of them is not public."""
    try:
        infos = _within(deadline, resolve, target.host, target.port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise refused(TOO_SLOW, "look-up of %s timed out", target.host) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise refused(UNKNOWN_HOST, "look-up of %s failed: %s", target.host, exc) from None
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise refused(NOT_PUBLIC, "%s resolved to an unreadable address", target.host) from None
        kind = non_public_kind(address, allow_loopback=allow_loopback)
        if kind is not None:
            # One inward address is enough to refuse: which one a connection gets is not ours.
            raise refused(
                not_public(kind),
                "%s resolves to %s, a %s address",
                target.host,
                address,
                kind,
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise refused(UNKNOWN_HOST, "%s has no IPv4 or IPv6 address", target.host)
    return addresses


def _within(deadline: float, call: Callable, *args, **kwargs):
    """`call(*args)` in a thread of its own, given up on at the deadline (getaddrinfo has none).

    A daemon thread, so a look-up that hangs never holds up the process's exit.
    """
    outcome: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as exc:  # handed to the caller as it is
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="image-lookup", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError("the look-up outlasted the deadline")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]

