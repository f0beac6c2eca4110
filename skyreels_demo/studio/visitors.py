"""Who is asking, as the server decides it: a signed-in Hugging Face account, else an address.

Caps count per requester, so nothing a client can choose for free may decide it: not a value in
the request body, not a browser id, not a header the client wrote. A signed-in account (the
Space's "Sign in with Hugging Face") is one requester wherever it connects from. Otherwise the
client's address counts, as the last trusted proxy saw it: behind a Space's proxy, that is the
entry the proxy appended to X-Forwarded-For (a client may put any entries of its own before
it); with no proxy, the TCP peer. IPv6 addresses count per /64, the block one household or
server is given, so rotating through it does not make a new visitor.

One caller arrives over loopback on another's behalf: Gradio's MCP server calls the app's own
queue for each tool call. It carries the MCP caller's identity, decided from the MCP request's
own connection, in a header sealed with a secret that lives only in this process
(`seal`); `identify` believes that header only from a loopback peer and with a good seal, so
no client can write one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Mapping

LOCAL = "local"
CALLER_HEADER = "x-skyreels-caller"  # the MCP caller's sealed identity, on the app's own loopback call
_SEAL_KEY = secrets.token_bytes(32)  # made anew by each process, never written anywhere


@dataclass(frozen=True)
class Requester:
    key: str  # "hf:<username>", "ip:<address or /64>", or LOCAL
    signed_in: bool = False

    @property
    def label(self) -> str:
        return self.key.split(":", 1)[-1]


def identify(
    *,
    username: str | None,
    peer: str | None,
    headers: Mapping[str, str] | None,
    proxy_hops: int,
) -> Requester:
    """The requester for one call. `proxy_hops`: trusted proxies in front of the app."""
    sealed = _header(headers or {}, CALLER_HEADER)
    if sealed and is_loopback(peer):
        caller = unseal(sealed)
        if caller is not None:
            return caller
    if username and username.strip():
        return Requester(f"hf:{username.strip().lower()}", signed_in=True)
    address = client_address(peer, headers or {}, proxy_hops)
    return Requester(f"ip:{address}") if address else Requester(LOCAL)


def client_address(peer: str | None, headers: Mapping[str, str], proxy_hops: int) -> str | None:
    """The client's address (an IPv6 one as its /64), trusting `proxy_hops` proxies' headers."""
    candidate = peer
    if proxy_hops > 0:
        forwarded = _header(headers, "x-forwarded-for")
        entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
        # Each proxy appends the address it saw. A platform's own inner hops add internal
        # addresses: pass over those from the right, then trust proxy_hops entries at most.
        while entries and _internal(entries[-1]):
            entries.pop()
        candidate = entries[-proxy_hops] if len(entries) >= proxy_hops else None
    return _normalised(candidate)


def seal(requester: Requester) -> str:
    """`requester` as a header value only this process can have written (see the docstring)."""
    body = f"{requester.key}|{int(requester.signed_in)}"
    return f"{body}|{_mac(body)}"


def unseal(value: str) -> Requester | None:
    """The requester a sealed header names, or None when its seal is not this process's."""
    body, _, mac = value.strip().rpartition("|")
    if not body or not hmac.compare_digest(mac, _mac(body)):
        return None
    key, _, signed_in = body.rpartition("|")
    return Requester(key, signed_in=signed_in == "1") if key else None


def _mac(body: str) -> str:
    return hmac.new(_SEAL_KEY, body.encode(), hashlib.sha256).hexdigest()


def is_loopback(peer: str | None) -> bool:
    """Whether `peer` (an address as the server sees it) is this machine's loopback."""
    try:
        return ipaddress.ip_address((peer or "").strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


_INTERNAL = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _internal(address: str) -> bool:
    """A loopback, link-local or private-network address: a platform's proxy, not a visitor."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or any(ip in net for net in _INTERNAL if ip.version == net.version)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value or ""


def _normalised(address: str | None) -> str | None:
    if not address:
        return None
    text = address.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
