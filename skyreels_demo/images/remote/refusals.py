"""What a visitor is told when an image address is refused, and what the log is told.

Each refusal is an `ImageRejected` with one sentence; the detail goes to the log (a child of the
remote package's logger), which never holds the address's query string or credentials: callers
pass `Hop.shown` or a host, never the address itself.
"""

from __future__ import annotations

import logging

from skyreels_demo.errors import ImageRejected
from skyreels_demo.images.remote.networks import LINK_LOCAL, LOOPBACK, PRIVATE, SHARED

log = logging.getLogger(__name__)


def refused(sentence: str, why: str, *args: object) -> ImageRejected:
    """The error to raise, its detail logged."""
    log.info("Image address refused: " + why, *args)
    return ImageRejected(sentence)


THIS_SERVER = (
    "That image address points to this server itself, so it was not fetched: "
    "upload the file instead."
)
INSIDE = (
    "That image address points inside a private network, so it was not fetched: "
    "upload the file instead."
)
NOT_PUBLIC = (
    "That image address is not a public internet address, so it was not fetched: "
    "upload the file instead."
)
NOT_WEB = (
    "Only http and https image addresses can be fetched, so this one was not: "
    "upload the file instead."
)
MALFORMED = (
    "That image address is not a valid web address, so it was not fetched: "
    "check it, or upload the file instead."
)
UNKNOWN_HOST = (
    "The image address's host name could not be found, so it was not fetched: "
    "check the address, or upload the file instead."
)
UNREACHABLE = (
    "The image address could not be reached, so the picture was not fetched: "
    "check the address, or upload the file instead."
)
TOO_SLOW = (
    "The image address took too long to answer, so the picture was not fetched: "
    "try again later, or upload the file instead."
)
TLS = (
    "The image address's secure connection could not be verified, so the picture was not "
    "fetched: upload the file instead."
)


def too_big(max_bytes: int) -> str:
    return (
        f"The picture at that address is larger than {max_bytes / 1_000_000:g} MB, so it was not "
        "fetched: use a smaller picture, or upload the file."
    )


def not_public(kind: str) -> str:
    """The sentence for an address of this kind (networks.py)."""
    return {LOOPBACK: THIS_SERVER, PRIVATE: INSIDE, SHARED: INSIDE, LINK_LOCAL: INSIDE}.get(kind, NOT_PUBLIC)
