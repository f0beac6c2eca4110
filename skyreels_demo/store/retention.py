"""One disk budget and one sweeper for every file the app writes in its data directory.

What the app writes is named in one place (`Settings.written_paths`): videos (`runs/`),
prepared images (`images/`), cut films (`films/`), frames picked to continue a shot
(`frames/`), take zips (`takes/<run id>/`), sweep reports (`sweeps/<sweep>/`), the offline
preview backend's tasks, uploads and renders (`preview-backend/`), and the run store. All of it
counts against the size budget; everything but the run store (and the browser secret) is swept
here, oldest first, once it is older than the age limit or while the folder is over budget.

Never deleted: a kept take's files (its video, its image and its zip), whatever a run still in
flight or a film still being made needs, and anything written in the last hour, so a video
saved a second ago is never the one that goes, however full the disk. A video's or a cut's age
is its record's (when it was saved, or cut); a picture's is the last run or film that used it;
a loose file's (a frame, a zip, a report, a preview file) is its own. Every run keeps its
record, so History still lists it with its prompt, seed and task id; a film keeps its record
when its cut goes.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from skyreels_demo.config import Settings
from skyreels_demo.store.records import Mode
from skyreels_demo.store.runs import RunStore
from skyreels_demo.status import FilmStatus
from skyreels_demo.times import DAY_S, HOUR_S

log = logging.getLogger(__name__)

# Nothing written in the last hour is deleted, to make room or otherwise.
FRESH_S = HOUR_S
# How often the sweeper runs at most (the server asks every minute, and after each saved video).
EVERY_S = 60.0


@dataclass(frozen=True)
class Pruned:
    files: int
    freed_bytes: int
    kept_bytes: int


@dataclass(frozen=True)
class Holding:
    """Something on disk the sweeper deletes as a unit: one file, or a folder (a take's zip, a
    sweep's report), with the time it was last needed and what kind of thing it is."""

    path: Path
    at: float
    kind: str


def _size(path: Path) -> int:
    try:
        if path.is_dir() and not path.is_symlink():
            return sum(_size(child) for child in path.iterdir())
        return path.lstat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    """When a file, or anything in a folder, was last written."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                newest = max(newest, _mtime(child))
        return newest
    except OSError:
        return 0.0


def _entries(folder: Path) -> Iterator[Path]:
    try:
        yield from folder.iterdir()
    except OSError:
        return


def disk_use(settings: Settings) -> int:
    """Bytes the app has written in its data directory: what the budget counts."""
    return sum(_size(path) for path in settings.written_paths)


def _key(path: str | os.PathLike) -> Path:
    """One spelling of a path, so a record's path and a listed file compare equal."""
    return Path(os.path.abspath(path))


def holdings(settings: Settings, store: RunStore) -> tuple[list[Holding], set[Path]]:
    """Everything the sweeper may delete, oldest first, and what it must keep whatever its age."""
    key = _key
    kept: set[Path] = set()
    by_time: dict[Path, Holding] = {}

    def claim(path: str | Path | None, at: float, kind: str) -> None:
        if not path:
            return
        path = key(path)
        before = by_time.get(path)
        if before is None or before.at < at:
            by_time[path] = Holding(path, at, kind)

    finished = store.with_files()
    in_flight = store.in_flight()
    films = store.films_with_files()
    # Kept takes, runs in flight and films being made keep what they need.
    for run in finished:
        if run.kept:
            kept |= {key(p) for p in (run.video_path, run.image_path) if p}
            kept.add(key(settings.takes_dir / run.id))
    for run in in_flight:
        kept |= {key(p) for p in (run.video_path, run.image_path) if p}
    making = [film for film in films if film.status == FilmStatus.MAKING]
    for film in making:
        if film.image_path:
            kept.add(key(film.image_path))
        for shot in store.shots_of(film.id):
            kept |= {key(p) for p in (shot.video_path, shot.image_path) if p}
    # Records' files, by their records' times.
    for run in finished:
        at = run.finished_at or run.created_at
        claim(run.video_path, at, "video")
        claim(run.image_path, at, "image")
    for film in films:
        claim(film.image_path, film.updated_at, "image")
        claim(film.film_path, film.updated_at, "film")
    named = set(by_time) | kept
    # Loose files, by their own times: frames, zips, reports, the preview's files, and anything in
    # the records' folders no record names (a frame kept by an older version, a crash's debris).
    loose = [
        ("frame", settings.frames_dir),
        ("take zip", settings.takes_dir),
        ("sweep report", settings.sweeps_dir),
        ("preview file", settings.preview_dir / "uploads"),
        ("preview file", settings.preview_dir / "renders"),
        ("preview file", settings.preview_dir / "tasks"),
        ("stray file", settings.videos_dir),
        ("stray file", settings.images_dir),
        ("stray file", settings.films_dir),
    ]
    preview_since = min((run.created_at for run in in_flight if run.mode == Mode.PREVIEW), default=None)
    for kind, folder in loose:
        for path in _entries(folder):
            path = key(path)
            if path in named:
                continue
            at = _mtime(path)
            if kind == "preview file" and preview_since is not None and at >= preview_since - 1:
                kept.add(path)  # a preview run in flight may still need it
                continue
            by_time[path] = Holding(path, at, kind)
    oldest_first = sorted((h for h in by_time.values() if h.path not in kept), key=lambda h: h.at)
    return oldest_first, kept


def prune(settings: Settings, store: RunStore, *, now: float | None = None) -> Pruned:
    """Delete what the age limit and the size budget say must go; return what was done."""
    now = time.time() if now is None else now
    budget = int(settings.disk_budget_mb * 1_000_000)
    oldest_kept = now - settings.keep_days * DAY_S
    fresh_since = now - FRESH_S
    candidates, _kept = holdings(settings, store)
    total = disk_use(settings)
    files = freed = 0
    kinds: dict[str, int] = {}
    for holding in candidates:
        if holding.at >= fresh_since or (holding.at >= oldest_kept and total <= budget):
            break  # oldest first: every one after this is younger still
        size = _size(holding.path)
        if not _delete(holding.path):
            continue
        files += 1
        freed += size
        total -= size
        kinds[holding.kind] = kinds.get(holding.kind, 0) + 1
    if files:
        what = ", ".join(f"{count} {kind}{'s' if count != 1 else ''}" for kind, count in sorted(kinds.items()))
        log.info("retention: deleted %s (%.1f MB); %.1f MB kept", what, freed / 1e6, total / 1e6)
    if total > budget:
        log.info(
            "the data directory holds %.1f MB, over its %.0f MB budget: what is left is kept, in flight or "
            "less than an hour old", total / 1e6, settings.disk_budget_mb,
        )
    return Pruned(files, freed, total)


def _delete(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            return False
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)
        return False
    return True


class Pruner:
    """`prune`, at most once every `every_s` seconds, however often it is asked."""

    def __init__(self, settings: Settings, store: RunStore, *, every_s: float = EVERY_S) -> None:
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


def forget_image(store: RunStore, image_path: str | None, *, users: int = 1) -> bool:
    """Delete a kept image that no more than `users` records name (a run refused for its key
    keeps nothing); whether it was deleted."""
    if not image_path or store.image_users(image_path) > users:
        return False
    return _delete(Path(image_path))
