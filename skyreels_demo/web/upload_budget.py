"""What uploads may take: each visitor's bytes an hour, and the upload folder's whole budget,
with the sweep that deletes uploads no run holds.

Separate from the door, which decides what a request may be: this keeps the counts the door
asks (as an upload streams, and for a picture an MCP caller sent inline) and the folder they
count, and is what the app's timer sweeps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

import anyio.to_thread

from skyreels_demo.times import HOUR_S
from skyreels_demo.web.asgi import Refusal, mb

log = logging.getLogger(__name__)

MCP_REUPLOAD = "mcp-reupload"  # not a visitor: the bytes were counted when the caller sent them
SCAN_EVERY_S = 5.0  # the upload folder is walked at most this often; bytes since are added
FULL = "This app's upload space is full; try again in a few minutes."


def upload_folder() -> Path:
    """Where Gradio writes uploads (its cache): GRADIO_TEMP_DIR, else <tempdir>/gradio."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


class UploadBudget:
    """Bytes uploaded per visitor per hour, and the upload folder's bytes, counted and swept."""

    def __init__(
        self,
        limits: Any,
        folder: Path,
        held: Callable[[], Iterable[str | os.PathLike]],
        clock: Callable[[], float],
    ) -> None:
        self.limits = limits  # door.DoorLimits
        self.folder = folder
        self.held = held
        self.clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[list[float]]] = {}  # visitor -> [minute, bytes] buckets
        self._uploads: dict[str, float] = {}  # path Gradio answered with -> when
        self._scanned_at = -1e18
        self._scanned_bytes = 0
        self._added_since_scan = 0

    # -- a visitor's hour --

    def check_hour(self, who: str, declared: int | None) -> None:
        """Refuse an upload before it streams when `who` has no room left this hour for it."""
        now = self.clock()
        left = self.limits.upload_bytes_per_hour - self._spent_in_hour(who, now)
        if left <= 0 or (declared is not None and declared > left):
            raise self._over_hourly(who, now)

    async def take(self, who: str, size: int) -> None:
        """Count `size` bytes of `who`'s upload, refusing them past the hour's or folder's room."""
        now = self.clock()
        with self._lock:
            spent = self._spent_in_hour_locked(who, now)
            if spent + size > self.limits.upload_bytes_per_hour:
                raise self._over_hourly(who, now)
        await self.make_room(size)
        with self._lock:
            self._count_locked(who, size, now)

    def _count_locked(self, who: str, size: int, now: float) -> None:
        """Add `size` bytes to the folder's count and to `who`'s hour, in minute buckets."""
        self._added_since_scan += size
        if who == MCP_REUPLOAD:
            return
        buckets = self._spent.setdefault(who, deque())
        minute = now // 60 * 60
        if buckets and buckets[-1][0] == minute:
            buckets[-1][1] += size
        else:
            buckets.append([minute, size])

    def _spent_in_hour(self, who: str, now: float) -> int:
        with self._lock:
            return self._spent_in_hour_locked(who, now)

    def _spent_in_hour_locked(self, who: str, now: float) -> int:
        if who == MCP_REUPLOAD:
            return 0
        buckets = self._spent.get(who)
        if not buckets:
            return 0
        while buckets and buckets[0][0] <= now - HOUR_S:
            buckets.popleft()
        if not buckets:
            del self._spent[who]
            return 0
        return int(sum(size for _, size in buckets))

    def _over_hourly(self, who: str, now: float) -> Refusal:
        buckets = self._spent.get(who)
        wait = (buckets[0][0] + HOUR_S - now) if buckets else 60.0
        return Refusal(
            429,
            f"You have uploaded {mb(self.limits.upload_bytes_per_hour)} this hour; try again later.",
            retry_after_s=max(1.0, wait),
        )

    # -- the upload folder --

    async def make_room(self, size: int) -> None:
        """Refuse `size` more bytes in the upload folder if it would pass its budget, after first
        deleting the uploads that may go."""
        budget = self.limits.upload_folder_bytes
        used = self._known_folder_bytes()
        if used is None:
            used = await anyio.to_thread.run_sync(self.folder_bytes)
        if used + size <= budget:
            return
        await anyio.to_thread.run_sync(self.sweep)
        if await anyio.to_thread.run_sync(self.folder_bytes, True) + size > budget:
            raise Refusal(507, FULL)

    def _known_folder_bytes(self) -> int | None:
        with self._lock:
            if time.monotonic() - self._scanned_at < SCAN_EVERY_S:
                return self._scanned_bytes + self._added_since_scan
        return None

    def folder_bytes(self, rescan: bool = False) -> int:
        """What the upload folder holds: walked at most every few seconds, plus bytes since."""
        now = time.monotonic()
        with self._lock:
            if not rescan and now - self._scanned_at < SCAN_EVERY_S:
                return self._scanned_bytes + self._added_since_scan
        total = _tree_bytes(self.folder)
        with self._lock:
            self._scanned_at, self._scanned_bytes, self._added_since_scan = now, total, 0
            return total

    def keep_upload(self, who: str, data: bytes, name: str) -> Path:
        """Write `data` (a picture an MCP caller sent inline) into the upload folder as an upload
        of `who`'s: counted against their hourly allowance and the folder's budget like one sent
        to the upload route, and swept with the others. Runs on the event loop, so it never
        walks the folder: the last walk plus the bytes since."""
        now = self.clock()
        with self._lock:
            if self.limits.shared:
                if self._spent_in_hour_locked(who, now) + len(data) > self.limits.upload_bytes_per_hour:
                    raise self._over_hourly(who, now)
                if self._scanned_bytes + self._added_since_scan + len(data) > self.limits.upload_folder_bytes:
                    raise Refusal(507, FULL)
            self._count_locked(who, len(data), now)
        folder = self.folder / ("inline-" + hashlib.sha256(data).hexdigest()[:40])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[-60:] or "image")
        path.write_bytes(data)
        with self._lock:
            self._uploads[os.path.abspath(path)] = now
        return path

    def record_uploads(self, body: bytes) -> None:
        """Note the paths Gradio answered an upload with (a JSON list), to sweep them in time."""
        try:
            paths = json.loads(body)
        except ValueError:
            return
        if isinstance(paths, list):
            now = self.clock()
            with self._lock:
                for path in paths:
                    if isinstance(path, str):
                        self._uploads[os.path.abspath(path)] = now

    def sweep(self, held: Callable[[], Iterable[str | os.PathLike]] | None = None) -> int:
        """Delete uploads no run holds once `upload_keep_s` old (the app calls this on a timer),
        Gradio's temporary files left by broken uploads, and any deep link; returns files gone."""
        held_paths = {os.path.abspath(p) for p in (held or self.held)()}
        now = self.clock()
        keep_s = self.limits.upload_keep_s
        with self._lock:
            due = [p for p, at in self._uploads.items() if now - at >= keep_s]
        gone = 0
        for path in due:
            if path in held_paths or os.path.dirname(path) in held_paths:
                continue
            if _delete(Path(path), self.folder):
                gone += 1
            with self._lock:
                self._uploads.pop(path, None)
        gone += self._sweep_strays(now, keep_s)
        if gone:
            log.info("swept %d uploads from %s", gone, self.folder)
            with self._lock:
                self._scanned_at = -1e18  # walk it again next time
        return gone

    def _sweep_strays(self, now: float, keep_s: float) -> int:
        gone = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                # Gradio's parser writes each file as <folder>/tmpXXXX, then renames it into a
                # <sha>/ folder: one still here and old is from an upload that broke off.
                stray = entry.name.startswith("tmp") and entry.is_file() and now - entry.stat().st_mtime >= keep_s
            except FileNotFoundError:
                continue
            if stray and _delete(Path(entry.path), self.folder):
                gone += 1
            elif entry.name == "deep_links" and entry.is_dir():
                for file in Path(entry.path).rglob("*"):
                    gone += bool(file.is_file() and _delete(file, self.folder))
        return gone


def _tree_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _delete(path: Path, folder: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)
        return False
    if path.parent != folder:
        try:
            path.parent.rmdir()  # Gradio's <sha>/ folder, if this was its only file
        except OSError:
            pass
    return True
