"""Keeping the data directory within its budget: an age limit and a size budget for files.

Videos (`runs/`) and prepared images (`images/`) of finished runs go oldest first, once they are
older than the age limit or while the folder is over its size budget. A run that is not
finished (paid for, its video not saved yet) keeps everything, and so does a take a person kept
(its files still count against the budget, so the others go sooner); every run keeps its record,
so History still lists it with its prompt, seed and task id.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .runs import RunStore

log = logging.getLogger(__name__)

DAY_S = 86400.0


@dataclass(frozen=True)
class Pruned:
    files: int
    freed_bytes: int
    kept_bytes: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def prune(settings: Settings, store: RunStore, *, now: float | None = None) -> Pruned:
    """Delete what the age limit and size budget say must go; return what was done."""
    now = time.time() if now is None else now
    budget = int(settings.disk_budget_mb * 1_000_000)
    oldest_kept = now - settings.keep_days * DAY_S
    in_use = store.images_in_use()
    runs = store.with_files()
    # Every file finished runs hold, oldest first; an image several runs share is kept until
    # the last of them goes (or is still running).
    last_use: dict[str, float] = {}
    for run in runs:
        if run.image_path:
            last_use[run.image_path] = max(last_use.get(run.image_path, 0.0), run.finished_at or run.created_at)
    # A kept take is never pruned: neither its video nor the image it was made from.
    in_use |= {run.image_path for run in runs if run.kept and run.image_path}
    candidates: list[tuple[float, Path]] = []
    for run in runs:
        if run.video_path and not run.kept:
            candidates.append((run.finished_at or run.created_at, Path(run.video_path)))
    for image, used_at in last_use.items():
        if image not in in_use:
            candidates.append((used_at, Path(image)))
    candidates.sort(key=lambda item: item[0])
    folders = [settings.videos_dir, settings.images_dir, settings.films_dir]
    total = sum(_size(f) for folder in folders if folder.is_dir() for f in folder.iterdir() if f.is_file())
    files = freed = 0
    for finished_at, path in candidates:
        if finished_at >= oldest_kept and total <= budget:
            break
        size = _size(path)
        if not size:
            continue
        try:
            path.unlink()
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc)
            continue
        files += 1
        freed += size
        total -= size
    if files:
        log.info("retention: deleted %d files (%.1f MB); %.1f MB kept", files, freed / 1e6, total / 1e6)
    return Pruned(files, freed, total)


class Pruner:
    """`prune`, at most once every `every_s` seconds, however often it is asked."""

    def __init__(self, settings: Settings, store: RunStore, *, every_s: float = 300.0) -> None:
        self.settings, self.store, self.every_s = settings, store, every_s
        self._lock = threading.Lock()
        self._last = -float("inf")

    def maybe(self, *, now: float | None = None) -> Pruned | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._last < self.every_s:
                return None
            self._last = now
        try:
            return prune(self.settings, self.store)
        except OSError:
            log.exception("pruning the data directory failed")
            return None
