"""One hop of a fetch: the address read (what is connected to, what is asked for, and how it is
shown in the log), the connection made to an address already checked (TLS spoken to the host
name, so SNI and the certificate still hold: no second look-up a DNS rebind could change), and
the body read capped in bytes and in time.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from skyreels_demo.images.remote.refusals import MALFORMED, NOT_WEB, TLS, TOO_SLOW, UNREACHABLE, refused, too_big

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
SCHEMES = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Hop:
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


def shown(url: str) -> str:
    """The address for the log: scheme, host, port and path; never credentials or the query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<not a valid address>"
    path = parts.path if len(parts.path) <= 120 else parts.path[:117] + "..."
    return f"{parts.scheme}://{host}{port}{path}"


def parse(url: str) -> Hop:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except (ValueError, AttributeError):
        raise refused(MALFORMED, "not a valid URL") from None
    if scheme not in SCHEMES:
        raise refused(NOT_WEB, "scheme %r", scheme[:20])
    if not host:
        raise refused(MALFORMED, "no host in %s", shown(url))
    try:
        # The name as DNS and TLS know it (a Unicode name becomes its xn-- form).
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise refused(MALFORMED, "host name cannot be encoded: %s", shown(url)) from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Hop(
        scheme=scheme,
        host=host,
        port=port or SCHEMES[scheme],
        target=path + (f"?{query}" if query else ""),
        shown=shown(url),
    )


def connect(
    target: Hop, addresses: list[str], deadline: float, connect_timeout_s: float
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
            raise refused(TLS, "TLS with %s (%s) failed: %s", target.host, ip, exc) from None
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
        raise refused(TOO_SLOW, "%s did not answer in time: %r", target.shown, last)
    raise refused(UNREACHABLE, "%s could not be reached: %r", target.shown, last)


def read_body(
    response: urllib3.BaseHTTPResponse, target: Hop, max_bytes: int, deadline: float
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise refused(too_big(max_bytes), "%s declares %s bytes", target.shown, declared)
    body = bytearray()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise refused(TOO_SLOW, "%s took longer than the deadline to send", target.shown)
            _limit_next_read(response, remaining)
            # read1: whatever one receive brings, so the clock is looked at between drips.
            chunk = response.read1(min(CHUNK_BYTES, max_bytes + 1 - len(body)))
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise refused(
                    too_big(max_bytes),
                    "%s sent more than %d bytes (declared %s)",
                    target.shown,
                    max_bytes,
                    declared,
                )
    except (ReadTimeoutError, TimeoutError, socket.timeout):
        raise refused(TOO_SLOW, "%s stalled while sending", target.shown) from None
    except (ProtocolError, HTTPError, OSError) as exc:
        raise refused(UNREACHABLE, "%s broke off while sending: %r", target.shown, exc) from None
    log.info("Fetched %d bytes from %s", len(body), target.shown)
    return bytes(body)


def _limit_next_read(response: urllib3.BaseHTTPResponse, remaining: float) -> None:
    """Hold the next read to the time left, so a slow drip cannot outlast the deadline."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(0.01, remaining))
