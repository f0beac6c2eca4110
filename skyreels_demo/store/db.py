"""The runs file itself: one SQLite connection, its schema version and its migrations.

Separate from the records (runs.py, films.py, shares.py) because every kind of record shares
this one file and this one connection: WAL mode (readers never block the writer), one
connection shared by the app's threads behind a lock, writes in `BEGIN IMMEDIATE` transactions,
and a schema version in `PRAGMA user_version` with forward migrations. Another process on the
same file (the app and `resume`) waits its turn by SQLite's own busy timeout, but for the
switch to WAL, which takes turns by hand (`_switch_to_wal`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

# Each step takes the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    # 1: the runs table.
    """
    CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        prompt        TEXT NOT NULL,
        seed          INTEGER NOT NULL,
        image_sha256  TEXT,
        image_path    TEXT,
        image_url     TEXT,
        mode          TEXT NOT NULL,
        api_host      TEXT NOT NULL,
        task_id       TEXT UNIQUE,
        status        TEXT NOT NULL,
        submitted_at  REAL,
        processing_at REAL,
        finished_at   REAL,
        error_code    INTEGER,
        error_message TEXT,
        inference_ms  INTEGER,
        output_url    TEXT,
        video_path    TEXT
    );
    CREATE INDEX runs_by_status ON runs(status);
    """,
    # 2: who a run belongs to, whose key paid, NSFW flags, sweeps, and each status with its time.
    """
    ALTER TABLE runs ADD COLUMN visitor TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN key_source TEXT NOT NULL DEFAULT 'owner';
    ALTER TABLE runs ADD COLUMN nsfw INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN sweep TEXT;
    CREATE INDEX runs_by_visitor ON runs(visitor, created_at);
    CREATE INDEX runs_by_sweep ON runs(sweep);
    CREATE TABLE run_statuses (
        run_id TEXT NOT NULL REFERENCES runs(id),
        at     REAL NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX run_statuses_by_run ON run_statuses(run_id, at);
    """,
    # 3: which model a run used (durations are learned per model and host), who asked for it as
    # the server knows them (for caps; `visitor` is only the browser's id, for its history), and
    # the store's own word for a queued run instead of the API's.
    """
    ALTER TABLE runs ADD COLUMN model TEXT NOT NULL DEFAULT 'wavespeed-ai/SkyReels-V1';
    ALTER TABLE runs ADD COLUMN requester TEXT NOT NULL DEFAULT '';
    CREATE INDEX runs_by_requester ON runs(requester, created_at);
    UPDATE runs SET status = 'queued' WHERE status = 'created';
    UPDATE run_statuses SET status = 'queued' WHERE status = 'created';
    CREATE INDEX runs_by_model_host ON runs(model, api_host, created_at);
    """,
    # 4: what a take needs to be made again (the framing and prefix setting as chosen), which run
    # a shot continued, the film a shot belongs to and its place, takes kept by a person, share
    # links of their own, and films as records of their own.
    """
    ALTER TABLE runs ADD COLUMN fit TEXT NOT NULL DEFAULT 'crop';
    ALTER TABLE runs ADD COLUMN fps_prefix INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE runs ADD COLUMN continued_from TEXT;
    ALTER TABLE runs ADD COLUMN film_id TEXT;
    ALTER TABLE runs ADD COLUMN shot INTEGER;
    ALTER TABLE runs ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX runs_by_film ON runs(film_id, shot);
    CREATE TABLE films (
        id            TEXT PRIMARY KEY,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        model         TEXT NOT NULL,
        visitor       TEXT NOT NULL DEFAULT '',
        requester     TEXT NOT NULL DEFAULT '',
        key_source    TEXT NOT NULL,
        image_path    TEXT,
        fit           TEXT NOT NULL DEFAULT 'crop',
        fps_prefix    INTEGER NOT NULL DEFAULT 1,
        shots_json    TEXT NOT NULL,
        status        TEXT NOT NULL,
        film_path     TEXT,
        error_message TEXT
    );
    CREATE INDEX films_by_visitor ON films(visitor, created_at);
    CREATE TABLE shares (
        token        TEXT PRIMARY KEY,
        run_id       TEXT NOT NULL REFERENCES runs(id),
        created_at   REAL NOT NULL,
        withdrawn_at REAL
    );
    CREATE INDEX shares_by_run ON shares(run_id);
    """,
    # 5: when the last check that found a run's task still running was asked (its end came after
    # it, and by `finished_at`): checks are seconds apart, so the end is known between the two.
    """
    ALTER TABLE runs ADD COLUMN ended_after REAL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# How long a write waits for another process's (the app's, `resume`'s) before giving up.
BUSY_TIMEOUT_S = 10.0


class Database:
    """The runs file, opened and migrated: the connection every kind of record writes through."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._db.row_factory = sqlite3.Row
        self._switch_to_wal()
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _switch_to_wal(self) -> None:
        # Switching a new file to WAL can fail at once with "database is locked", the busy
        # timeout unasked (SQLite's deadlock guard, while another connection switches it too):
        # two processes opening one fresh data dir together (the app and `resume`) take turns
        # here (without this loop, test_runs' eight openers of one fresh file fail now and then).
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def migrate(self, to: int = SCHEMA_VERSION) -> None:
        """Apply missing migrations one at a time, each reading the version inside its own
        write transaction, so stores opened at once by several processes never apply one twice."""
        with self._lock:
            while True:
                with self._transaction():
                    current = self.version
                    if current > SCHEMA_VERSION:
                        raise RuntimeError(
                            f"{self.path} was written by a newer SkyReels Studio (schema {current}); "
                            "upgrade this one or point SKYREELS_DATA_DIR elsewhere."
                        )
                    if current >= to:
                        return
                    for statement in _statements(MIGRATIONS[current]):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {current + 1}")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)


def _statements(script: str) -> Iterator[str]:
    for statement in script.split(";"):
        if statement.strip():
            yield statement.strip()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
