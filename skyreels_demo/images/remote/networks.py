"""Which internet addresses are public, written out: a host whose every address is public may be
fetched from; loopback, private, link-local, shared, documentation and other special blocks may
not, nor an IPv6 form that carries one of them (v4-mapped, NAT64, 6to4, Teredo).

Pure, with no network: the fetch (remote) asks it of every address a look-up gives.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

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
