"""Fetching a task's image: our own uploads from disk, anything else over loopback HTTP only.

The offline preview never reaches beyond this computer, so an image URL on another host is
refused from its text alone, before any name lookup or connection.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

import requests

from skyreels_demo.local_api.storage import MAX_UPLOAD_BYTES, UPLOADS_PATH, Storage


class ImageUnavailable(Exception):
    """The task's image could not be fetched; str() is the sentence the task fails with."""


def refuse_address(url: str) -> str | None:
    """Why the image at `url` may not be fetched (only loopback hosts are), or None.

    Decided from the URL text alone: no DNS lookup and no connection is made for a refused URL.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "The image could not be downloaded: the image URL is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "The image could not be downloaded: the image URL must be an http(s) address."
    if not is_loopback(host):
        return (
            f"The image could not be downloaded: the offline preview only fetches images from "
            f"this computer, not from {host}."
        )
    return None


def fetch_image(
    url: str, storage: Storage, http: requests.Session, *, own_port: int, restored: bool = False
) -> bytes:
    """The image bytes behind `url`, which `refuse_address` has already allowed.

    `own_port` is the port this backend listens on. `restored`: the task comes from an earlier
    run of this backend, so its URL names the port that run listened on; an upload of ours it
    names is read from storage all the same.
    """
    parts = urlsplit(url)
    if _names_own_upload(parts, own_port) or (restored and _names_kept_upload(parts, storage)):
        # Our own upload: read it from storage rather than calling ourselves over HTTP.
        path = storage.upload_path(parts.path.removeprefix(UPLOADS_PATH))
        if path is None:
            raise ImageUnavailable(
                "The image could not be downloaded: the server answered 404 Not Found."
            )
        return path.read_bytes()
    try:
        with http.get(url, timeout=(3, 10), stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise ImageUnavailable(
                    f"The image could not be downloaded: the server answered {answer.status_code}."
                )
            data = answer.raw.read(MAX_UPLOAD_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise ImageUnavailable(f"The image could not be downloaded: {type(exc).__name__}.") from exc
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageUnavailable("The image could not be downloaded: it is larger than 20 MB.")
    return data


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _names_own_upload(parts: SplitResult, own_port: int) -> bool:
    """Whether the URL points at this server's uploads."""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    return (
        port == own_port
        and parts.path.startswith(UPLOADS_PATH)
        and is_loopback(parts.hostname or "")
    )


def _names_kept_upload(parts: SplitResult, storage: Storage) -> bool:
    """Whether the URL names, on a loopback host and any port, an upload stored here."""
    return (
        parts.path.startswith(UPLOADS_PATH)
        and is_loopback(parts.hostname or "")
        and storage.upload_path(parts.path.removeprefix(UPLOADS_PATH)) is not None
    )
