"""Fetching a picture named by an http(s) address, without letting the address reach inward.

A visitor (through the API or MCP) may name the image by its web address; this server then
downloads it on the visitor's behalf, so the address must not be a way into this machine or
its network. The host is looked up once, every address it has must be public, the connection
goes to the address that was checked (no second lookup a DNS rebind could change), every
redirect is checked again the same way, and the body is capped in bytes and in time.

Each refusal is an `ImageRejected` with one sentence; the detail goes to the log, which never
holds the address's query string or credentials.

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
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from skyreels_demo.errors import ImageRejected
from skyreels_demo.images.limits import MAX_BYTES

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 5.0
# The whole fetch (look-ups, connections, redirects and body): a picture, not a film.
TIMEOUT_S = 20.0
CHUNK_BYTES = 64 * 1024
SCHEMES = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}
# Pictures fetched by address at once, each within TIMEOUT_S and MAX_BYTES; more wait their turn.
FETCHES_AT_ONCE = 3

Resolver = Callable[..., Sequence[tuple]]  # socket.getaddrinfo's shape
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# --- which addresses are public ------------------------------------------------------------

LOOPBACK = "loopback"
PRIVATE = "private"
LINK_LOCAL = "link-local"
SHARED = "shared (carrier-grade NAT)"
BENCHMARKING = "benchmarking"
DOCUMENTATION = "documentation"
MULTICAST = "multicast"
RESERVED = "reserved"

# Written out rather than read from ipaddress's is_private/is_global, whose lists change
# between Python releases (100.64.0.0/10 is neither private nor global in most of them).
_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", RESERVED),
        ("10.0.0.0/8", PRIVATE),
        ("100.64.0.0/10", SHARED),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", LINK_LOCAL),
        ("172.16.0.0/12", PRIVATE),
        ("192.0.0.0/24", RESERVED),
        ("192.0.2.0/24", DOCUMENTATION),
        ("192.88.99.0/24", RESERVED),  # the retired 6to4 relay anycast
        ("192.168.0.0/16", PRIVATE),
        ("198.18.0.0/15", BENCHMARKING),
        ("198.51.100.0/24", DOCUMENTATION),
        ("203.0.113.0/24", DOCUMENTATION),
        ("224.0.0.0/4", MULTICAST),
        ("240.0.0.0/4", RESERVED),  # and 255.255.255.255
        ("::1/128", LOOPBACK),
        # A local-use NAT64 prefix maps onto whatever the operator's own translator reaches.
        ("64:ff9b:1::/48", PRIVATE),
        ("::/8", RESERVED),  # unspecified, IPv4-compatible and other retired forms
        ("100::/64", RESERVED),  # discard
        ("2001:2::/48", BENCHMARKING),
        ("2001:db8::/32", DOCUMENTATION),
        ("3fff::/20", DOCUMENTATION),
        ("fc00::/7", PRIVATE),
        ("fe80::/10", LINK_LOCAL),
        ("fec0::/10", PRIVATE),  # the retired site-local
        ("ff00::/8", MULTICAST),
    )
)
_V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(address: Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (v4-mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return ()
    if address in _V4_MAPPED or address in _NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address in _SIX_TO_FOUR:
        return (ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF),)
    if address in _TEREDO:
        server, client = address.teredo  # the client's address is stored inverted
        return (server, client)
    return ()


def non_public_kind(address: Address | str, *, allow_loopback: bool = False) -> str | None:
    """What kind of non-public address this is (`LOOPBACK`, `PRIVATE`, ...), or None if public.

    An IPv6 form that carries an IPv4 address (v4-mapped, NAT64, 6to4, Teredo) is judged by
    the address it carries, with loopback never allowed there: the test switch is for
    127.0.0.1 and ::1 themselves.
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(int(address))  # fe80::1%eth0 is judged as fe80::1
    inner = embedded_ipv4(address)
    if inner:
        kinds = [non_public_kind(carried) for carried in inner]
        return next((kind for kind in kinds if kind is not None), None)
    for network, kind in _NETWORKS:
        if address.version == network.version and address in network:
            return None if kind == LOOPBACK and allow_loopback else kind
    # Anything else Python knows to be not global (new special-purpose blocks): refused too.
    if not address.is_global:
        return RESERVED
    return None


# --- the sentences -------------------------------------------------------------------------


def _refused(sentence: str, why: str, *args: object) -> ImageRejected:
    log.info("Image address refused: " + why, *args)
    return ImageRejected(sentence)


_THIS_SERVER = (
    "That image address points to this server itself, so it was not fetched: "
    "upload the file instead."
)
_INSIDE = (
    "That image address points inside a private network, so it was not fetched: "
    "upload the file instead."
)
_NOT_PUBLIC = (
    "That image address is not a public internet address, so it was not fetched: "
    "upload the file instead."
)
_KIND_SENTENCES = {LOOPBACK: _THIS_SERVER, PRIVATE: _INSIDE, SHARED: _INSIDE, LINK_LOCAL: _INSIDE}
_NOT_WEB = (
    "Only http and https image addresses can be fetched, so this one was not: "
    "upload the file instead."
)
_MALFORMED = (
    "That image address is not a valid web address, so it was not fetched: "
    "check it, or upload the file instead."
)
_UNKNOWN_HOST = (
    "The image address's host name could not be found, so it was not fetched: "
    "check the address, or upload the file instead."
)
_UNREACHABLE = (
    "The image address could not be reached, so the picture was not fetched: "
    "check the address, or upload the file instead."
)
_TOO_SLOW = (
    "The image address took too long to answer, so the picture was not fetched: "
    "try again later, or upload the file instead."
)
_TLS = (
    "The image address's secure connection could not be verified, so the picture was not "
    "fetched: upload the file instead."
)


def _too_big(max_bytes: int) -> str:
    return (
        f"The picture at that address is larger than {max_bytes / 1_000_000:g} MB, so it was not "
        "fetched: use a smaller picture, or upload the file."
    )


# --- fetching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One hop's address, split into what is connected to and what is asked for."""

    scheme: str
    host: str  # as the server knows itself: the Host header and the TLS name
    port: int
    target: str  # path and query, as sent on the request line
    shown: str  # for the log: no credentials, no query string

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


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
        target = _parse(url)
        addresses = _public_addresses(target, resolve, deadline, allow_loopback=allow_loopback)
        response = _connect(target, addresses, deadline, connect_timeout_s)
        try:
            if response.status in REDIRECTS and response.headers.get("Location"):
                log.info("Image address %s redirects (%d)", target.shown, response.status)
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                reason = http.client.responses.get(response.status, "")
                shown = f"{response.status} {reason}".strip()
                raise _refused(
                    f"The image address answered {shown}, so the picture was not fetched: "
                    "check the address, or upload the file instead.",
                    "%s answered %d",
                    target.shown,
                    response.status,
                )
            return _read_body(response, target, max_bytes, deadline)
        finally:
            response.close()  # and its connection: one pool, one use
    raise _refused(
        f"That image address redirects more than {MAX_REDIRECTS} times, so it was not fetched: "
        "use the picture's own address, or upload the file instead.",
        "more than %d redirects, the last to %s",
        MAX_REDIRECTS,
        _shown(url),
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
        return f"ImageAddress({_shown(self.url)!r})"

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
            log.exception("fetching the image address %s failed", _shown(self.url))
            raise ImageRejected(_UNFETCHED) from None
        return then(data)


def _shown(url: str) -> str:
    """The address for the log: scheme, host, port and path; never credentials or the query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<not a valid address>"
    path = parts.path if len(parts.path) <= 120 else parts.path[:117] + "..."
    return f"{parts.scheme}://{host}{port}{path}"


def refuse_inward_literal(url: str, *, allow_loopback: bool = False) -> None:
    """Refuse (ImageRejected) an image address that names a non-public host outright: an IP
    address, or localhost. A name is not looked up here: WaveSpeed fetches it from its own
    network, where this machine's private ones are not reachable."""
    target = _parse(url)
    host = target.host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        if allow_loopback:
            return
        raise _refused(_THIS_SERVER, "%s names this machine", target.shown)
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name
    kind = non_public_kind(address, allow_loopback=allow_loopback)
    if kind is not None:
        raise _refused(_KIND_SENTENCES.get(kind, _NOT_PUBLIC), "%s is a %s address", target.shown, kind)


def _parse(url: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except (ValueError, AttributeError):
        raise _refused(_MALFORMED, "not a valid URL") from None
    if scheme not in SCHEMES:
        raise _refused(_NOT_WEB, "scheme %r", scheme[:20])
    if not host:
        raise _refused(_MALFORMED, "no host in %s", _shown(url))
    try:
        # The name as DNS and TLS know it (a Unicode name becomes its xn-- form).
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise _refused(_MALFORMED, "host name cannot be encoded: %s", _shown(url)) from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return _Target(
        scheme=scheme,
        host=host,
        port=port or SCHEMES[scheme],
        target=path + (f"?{query}" if query else ""),
        shown=_shown(url),
    )


def _public_addresses(
    target: _Target, resolve: Resolver, deadline: float, *, allow_loopback: bool
) -> list[str]:
    """Every address the host has, each checked; refused if any one of them is not public."""
    try:
        infos = _within(deadline, resolve, target.host, target.port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise _refused(_TOO_SLOW, "look-up of %s timed out", target.host) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise _refused(_UNKNOWN_HOST, "look-up of %s failed: %s", target.host, exc) from None
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise _refused(_NOT_PUBLIC, "%s resolved to an unreadable address", target.host) from None
        kind = non_public_kind(address, allow_loopback=allow_loopback)
        if kind is not None:
            # One inward address is enough to refuse: which one a connection gets is not ours.
            raise _refused(
                _KIND_SENTENCES.get(kind, _NOT_PUBLIC),
                "%s resolves to %s, a %s address",
                target.host,
                address,
                kind,
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise _refused(_UNKNOWN_HOST, "%s has no IPv4 or IPv6 address", target.host)
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


def _connect(
    target: _Target, addresses: list[str], deadline: float, connect_timeout_s: float
) -> urllib3.BaseHTTPResponse:
    """The response's head from the first checked address that answers; its body unread."""
    last: Exception | None = None
    for ip in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        timeout = urllib3.Timeout(connect=min(connect_timeout_s, remaining), read=remaining)
        pool_kwargs: dict = {}
        if target.scheme == "https":
            # Connect to the IP, but speak TLS to the host: SNI and the certificate check.
            pool_kwargs = dict(server_hostname=target.host, cert_reqs="CERT_REQUIRED")
        pool_class = urllib3.HTTPSConnectionPool if target.scheme == "https" else urllib3.HTTPConnectionPool
        pool = pool_class(ip, target.port, timeout=timeout, retries=False, maxsize=1, **pool_kwargs)
        try:
            return pool.urlopen(
                "GET",
                target.target,
                headers={
                    "Host": target.host_header,
                    "Accept": "image/*",
                    # Compressed bodies could inflate past the cap inside one read.
                    "Accept-Encoding": "identity",
                    "User-Agent": "SkyReels-V1-Studio",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except SSLError as exc:
            raise _refused(_TLS, "TLS with %s (%s) failed: %s", target.host, ip, exc) from None
        except ReadTimeoutError as exc:
            last = exc
            break  # it connected, then stalled: another address would not give the time back
        except (HTTPError, OSError) as exc:
            last = exc
        log.info("Image host %s at %s: %r", target.host, ip, last)
    # urllib3's NewConnectionError (refused, unroutable) is a ConnectTimeoutError too.
    timed_out = isinstance(last, (ConnectTimeoutError, ReadTimeoutError)) and not isinstance(
        last, NewConnectionError
    )
    if last is None or timed_out:  # None: the deadline passed before any address was tried
        raise _refused(_TOO_SLOW, "%s did not answer in time: %r", target.shown, last)
    raise _refused(_UNREACHABLE, "%s could not be reached: %r", target.shown, last)


def _read_body(
    response: urllib3.BaseHTTPResponse, target: _Target, max_bytes: int, deadline: float
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise _refused(_too_big(max_bytes), "%s declares %s bytes", target.shown, declared)
    body = bytearray()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _refused(_TOO_SLOW, "%s took longer than the deadline to send", target.shown)
            _limit_next_read(response, remaining)
            # read1: whatever one receive brings, so the clock is looked at between drips.
            chunk = response.read1(min(CHUNK_BYTES, max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise _refused(
                    _too_big(max_bytes),
                    "%s sent more than %d bytes (declared %s)",
                    target.shown,
                    max_bytes,
                    declared,
                )
    except (ReadTimeoutError, TimeoutError, socket.timeout):
        raise _refused(_TOO_SLOW, "%s stalled while sending", target.shown) from None
    except (ProtocolError, HTTPError, OSError) as exc:
        raise _refused(_UNREACHABLE, "%s broke off while sending: %r", target.shown, exc) from None
    log.info("Fetched %d bytes from %s", len(body), target.shown)
    return bytes(body)


def _limit_next_read(response: urllib3.BaseHTTPResponse, remaining: float) -> None:
    """Hold the next read to the time left, so a slow drip cannot outlast the deadline."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(0.01, remaining))
