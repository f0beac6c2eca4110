"""The durable record of every run: SQLite through the standard library.

A run is written before its upload starts, and its task id the moment submit returns, so a
crash, a closed tab or a restart leaves a row that `resume` can finish. One file in the data
directory, WAL mode (readers never block the writer), one connection shared by the app's threads
behind a lock, and a schema version in `PRAGMA user_version` with forward migrations.
The API key is never stored: only which host a run went to and whose key it used.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from skyreels_demo.errors import QuotaExceeded
from skyreels_demo.status import FINISHED, IN_FLIGHT, FilmStatus, RunStatus, Word


class Mode(Word):
    """Where a run's requests went."""

    API = "api"
    PREVIEW = "preview"


class KeySource(Word):
    """Whose key paid for a run."""

    OWNER = "owner"
    VISITOR = "visitor"
    PREVIEW = "preview"


# What a person reads beside a run in History and `runs --json`, where the status alone says too little.
NOTES = {RunStatus.UNCONFIRMED: "WaveSpeed may have made this video; it is not known."}
# What History says of a run whose submit's answer was lost and whose task was found again.
RECOVERED_NOTE = "Its submit's answer was lost; its task was found again in WaveSpeed's list of predictions."


def was_recovered(statuses: Iterable[tuple[float, str]]) -> bool:
    """Whether a run's status history shows it recovered: unconfirmed, then submitted after all."""
    words = [status for _, status in statuses]
    return str(RunStatus.UNCONFIRMED) in words and str(RunStatus.SUBMITTED) in words[words.index(str(RunStatus.UNCONFIRMED)):]

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
# A search of History or `runs --find` looks for at most this many words.
MAX_SEARCH_WORDS = 8


@dataclass(frozen=True)
class Run:
    """One row of the store."""

    id: str
    created_at: float
    updated_at: float
    prompt: str
    seed: int
    image_sha256: str | None
    image_path: str | None
    image_url: str | None
    mode: Mode
    api_host: str
    task_id: str | None
    status: RunStatus
    submitted_at: float | None
    processing_at: float | None
    finished_at: float | None
    error_code: int | None
    error_message: str | None
    inference_ms: int | None
    output_url: str | None
    video_path: str | None
    visitor: str = ""
    key_source: KeySource = KeySource.OWNER
    nsfw: int = 0
    sweep: str | None = None
    model: str = ""
    requester: str = ""  # who asked, as the server decided: "hf:<user>", "ip:<address>", "local"
    fit: str = "crop"  # the framing chosen: "crop" or "pad"
    fps_prefix: int = 1  # whether the model's prompt prefix was asked for
    continued_from: str | None = None  # the run whose frame this run's image is
    film_id: str | None = None  # the film this run is a shot of
    shot: int | None = None  # its place in the film, from 0
    kept: int = 0  # a person marked this take as kept: never pruned
    ended_after: float | None = None  # the last check that found the task running (see finished_at)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_unfinished_task(self) -> bool:
        """Submitted and paid for, but its video is not saved yet."""
        return self.task_id is not None and not self.is_finished

    @property
    def note(self) -> str:
        """A sentence about the run's status where the word alone says too little, else ""."""
        return NOTES.get(self.status, "")

    @property
    def has_video(self) -> bool:
        return bool(self.video_path) and Path(self.video_path).exists()


_COLUMNS = tuple(f.name for f in fields(Run))


@dataclass(frozen=True)
class Limit:
    """At most `most` runs paid by `key_source` (and asked for by `requester`) since `since`."""

    since: float
    most: int
    key_source: KeySource
    refusal: str  # the sentence a person reads when the limit is reached
    requester: str | None = None  # None: everyone's runs count


@dataclass(frozen=True)
class Film:
    """A film: its shots in order, each an ordinary run whose image is the previous shot's last frame."""

    id: str
    created_at: float
    updated_at: float
    model: str
    visitor: str
    requester: str
    key_source: KeySource
    image_path: str | None  # the starting image, prepared
    fit: str
    fps_prefix: int
    shots_json: str  # [{"prompt": as typed, "seed": concrete}, ...]
    status: FilmStatus
    film_path: str | None
    error_message: str | None

    @property
    def shots(self) -> list[dict]:
        return json.loads(self.shots_json)

    @property
    def has_film(self) -> bool:
        return bool(self.film_path) and Path(self.film_path).exists()


_FILM_COLUMNS = tuple(f.name for f in fields(Film))


@dataclass(frozen=True)
class Durations:
    """When recorded runs ended, newest first, in seconds from their submit: (after, by,
    making_s) for each, the end having come after the last check that found the task running and
    by the first that found it done; making_s is WaveSpeed's own timing of the making
    (timings.inference), or None."""

    ends: tuple[tuple[float, float, float | None], ...]


# Runs recorded before `ended_after` was kept were checked about a second apart near their end.
DENSE_CHECKS_S = 1.0


class RunStore:
    """Thread-safe access to the runs file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
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
        # Switching a new file to WAL does not wait on the busy timeout: two processes opening
        # one fresh data dir at once (the app and `resume`) must take turns by hand.
        deadline = time.monotonic() + 10
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

    def _transaction(self):
        return _Transaction(self._db)

    # -- writing --

    def create(
        self,
        *,
        prompt: str,
        seed: int,
        mode: Mode,
        api_host: str,
        model: str,
        visitor: str = "",
        key_source: KeySource = KeySource.OWNER,
        sweep: str | None = None,
        requester: str = "",
        fit: str = "crop",
        fps_prefix: bool = True,
        continued_from: str | None = None,
        film_id: str | None = None,
        shot: int | None = None,
        within: Iterable[Limit] = (),
    ) -> Run:
        """Record a new run, unless one of the `within` limits is reached.

        Counting and inserting happen in one write transaction, so runs started at the same
        moment by one visitor can never overshoot a cap together.
        """
        now = time.time()
        run_id = uuid.uuid4().hex
        with self._lock, self._transaction():
            for limit in within:
                if self._count(limit) >= limit.most:
                    raise QuotaExceeded(limit.refusal)
            self._db.execute(
                "INSERT INTO runs (id, created_at, updated_at, prompt, seed, mode, api_host, status,"
                " visitor, key_source, sweep, model, requester, fit, fps_prefix, continued_from, film_id,"
                " shot) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, now, now, prompt, int(seed), str(mode), api_host, str(RunStatus.PREPARING), visitor,
                 str(key_source), sweep, model, requester, fit, int(bool(fps_prefix)), continued_from,
                 film_id, shot),
            )
            self._db.execute(
                "INSERT INTO run_statuses (run_id, at, status) VALUES (?,?,?)",
                (run_id, now, str(RunStatus.PREPARING)),
            )
        return self.get(run_id)

    def update(self, run_id: str, **changes: Any) -> Run:
        """Set fields; a new `status` is also appended to the run's status history.

        Only the recorder (recorder.py) changes a run's status; other fields are anyone's."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        now = time.time()
        changes = {name: str(value) if isinstance(value, Word) else value for name, value in changes.items()}
        changes["updated_at"] = now
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock, self._transaction():
            previous = self._db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if previous is None:
                raise KeyError(run_id)
            self._db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*changes.values(), run_id))
            status = changes.get("status")
            if status and status != previous["status"]:
                self._db.execute(
                    "INSERT INTO run_statuses (run_id, at, status) VALUES (?,?,?)", (run_id, now, status)
                )
        return self.get(run_id)

    # -- reading --

    def get(self, run_id: str) -> Run:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise KeyError(run_id)
        return row

    def by_task(self, task_id: str) -> Run | None:
        return self._one("SELECT * FROM runs WHERE task_id = ?", (task_id,))

    def recent(
        self,
        *,
        visitor: str | None = None,
        model: str | None = None,
        limit: int = 50,
        words: str = "",
        kept: bool = False,
    ) -> list[Run]:
        """Newest first; `visitor=None` means everyone's (the local, single-user view).

        Only runs of `model` (History asks for its video model's: a prompt written by the vision
        LLM is a run too, for caps, but not a video); None for every model. `words`: only runs
        whose prompt has every one of them (any case, anywhere); `kept`: only kept takes.
        """
        query, args = "SELECT * FROM runs WHERE 1", []
        if visitor is not None:
            query += " AND visitor = ?"
            args.append(visitor)
        if model is not None:
            query += " AND model = ?"
            args.append(model)
        for word in words.split()[:MAX_SEARCH_WORDS]:
            # A typed % or _ is a letter to look for, not a LIKE wildcard.
            query += " AND prompt LIKE ? ESCAPE '\\'"
            args.append("%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if kept:
            query += " AND kept = 1"
        return self._all(query + " ORDER BY created_at DESC LIMIT ?", (*args, limit))

    def unfinished(self, *, model: str | None = None) -> list[Run]:
        """Runs submitted and paid for whose video is not saved yet, oldest first.

        Only runs of `model` (the follower and `resume` ask for their video model's: only a
        video has anything to resume); None for every model.
        """
        placeholders = ",".join("?" * len(FINISHED))
        query = f"SELECT * FROM runs WHERE task_id IS NOT NULL AND status NOT IN ({placeholders})"
        args: list[Any] = [str(status) for status in FINISHED]
        if model is not None:
            query += " AND model = ?"
            args.append(model)
        return self._all(query + " ORDER BY created_at", args)

    def unconfirmed(self, *, model: str, since: float) -> list[Run]:
        """Runs of `model` since `since` whose submit's answer was lost, oldest first."""
        return self._all(
            "SELECT * FROM runs WHERE status = ? AND task_id IS NULL AND model = ? AND created_at >= ?"
            " ORDER BY created_at",
            (str(RunStatus.UNCONFIRMED), model, since),
        )

    def unanswered_submits(self, run: Run, since: float, until: float) -> list[Run]:
        """Other runs of `run`'s model and account (host and key; a visitor's: the same
        requester) whose submit went out between `since` and `until` and has no task id yet:
        sending now, or their answer lost too. Any of them could own a task found for `run`."""
        query = (
            "SELECT DISTINCT runs.* FROM runs JOIN run_statuses AS sent ON sent.run_id = runs.id"
            " WHERE sent.status = ? AND sent.at BETWEEN ? AND ? AND runs.task_id IS NULL"
            " AND runs.status IN (?, ?) AND runs.model = ? AND runs.api_host = ? AND runs.key_source = ?"
            " AND runs.id != ?"
        )
        args: list[Any] = [str(RunStatus.SUBMITTING), since, until, str(RunStatus.SUBMITTING),
                           str(RunStatus.UNCONFIRMED), run.model, run.api_host, str(run.key_source), run.id]
        if run.key_source == KeySource.VISITOR:
            query += " AND runs.requester = ?"
            args.append(run.requester)
        return self._all(query, args)

    # -- films --

    def create_film(
        self,
        *,
        model: str,
        shots: list[dict],
        key_source: KeySource,
        image_path: str | None,
        fit: str = "crop",
        fps_prefix: bool = True,
        visitor: str = "",
        requester: str = "",
    ) -> Film:
        now = time.time()
        film_id = "film-" + uuid.uuid4().hex[:16]
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO films (id, created_at, updated_at, model, visitor, requester, key_source,"
                " image_path, fit, fps_prefix, shots_json, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (film_id, now, now, model, visitor, requester, str(key_source), image_path, fit,
                 int(bool(fps_prefix)), json.dumps(shots), str(FilmStatus.MAKING)),
            )
        return self.film(film_id)

    def film(self, film_id: str) -> Film:
        with self._lock:
            row = self._db.execute("SELECT * FROM films WHERE id = ?", (film_id,)).fetchone()
        if row is None:
            raise KeyError(film_id)
        return _film(row)

    def update_film(self, film_id: str, **changes: Any) -> Film:
        unknown = set(changes) - set(_FILM_COLUMNS)
        if unknown:
            raise ValueError(f"unknown film fields: {sorted(unknown)}")
        changes = {name: str(value) if isinstance(value, Word) else value for name, value in changes.items()}
        changes["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock, self._transaction():
            self._db.execute(f"UPDATE films SET {assignments} WHERE id = ?", (*changes.values(), film_id))
        return self.film(film_id)

    def films(self, *, visitor: str | None = None, status: FilmStatus | None = None, limit: int = 50) -> list[Film]:
        """Newest first; `visitor=None` means everyone's."""
        query, args = "SELECT * FROM films WHERE 1", []
        if visitor is not None:
            query += " AND visitor = ?"
            args.append(visitor)
        if status is not None:
            query += " AND status = ?"
            args.append(str(status))
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_film(row) for row in rows]

    def shots_of(self, film_id: str) -> list[Run]:
        """Every run made for a film, oldest first (a shot made again appears once per try)."""
        return self._all("SELECT * FROM runs WHERE film_id = ? ORDER BY shot, created_at", (film_id,))

    def in_sweep(self, sweep: str) -> list[Run]:
        return self._all("SELECT * FROM runs WHERE sweep = ? ORDER BY created_at", (sweep,))

    def statuses(self, run_id: str) -> list[tuple[float, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT at, status FROM run_statuses WHERE run_id = ? ORDER BY at, rowid", (run_id,)
            ).fetchall()
        return [(row["at"], row["status"]) for row in rows]

    def count(self, limit: "Limit") -> int:
        """Runs that count against a limit: started since its time, not refused before submit."""
        with self._lock:
            return self._count(limit)

    def _count(self, limit: "Limit") -> int:
        query = "SELECT COUNT(*) FROM runs WHERE created_at >= ? AND key_source = ? AND status != ?"
        args: list[Any] = [limit.since, str(limit.key_source), str(RunStatus.REFUSED)]
        if limit.requester is not None:
            query += " AND requester = ?"
            args.append(limit.requester)
        return self._db.execute(query, args).fetchone()[0]

    def close_abandoned(self) -> int:
        """Runs a process that died left without a task id: before their submit nothing was
        paid, so they end refused; during it, a task may exist, so they end unconfirmed."""
        now = time.time()
        ends = {
            str(RunStatus.PREPARING): (
                RunStatus.REFUSED, "Stopped before the task was sent (the app restarted): nothing was paid for."
            ),
            str(RunStatus.SUBMITTING): (RunStatus.UNCONFIRMED, NOTES[RunStatus.UNCONFIRMED]),
        }
        with self._lock, self._transaction():
            rows = self._db.execute(
                "SELECT id, status FROM runs WHERE task_id IS NULL AND status IN (?, ?)", tuple(ends)
            ).fetchall()
            for row in rows:
                status, reason = ends[row["status"]]
                self._db.execute(
                    "UPDATE runs SET status = ?, error_message = ?, finished_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (str(status), reason, now, now, row["id"]),
                )
                self._db.execute(
                    "INSERT INTO run_statuses (run_id, at, status) VALUES (?,?,?)", (row["id"], now, str(status))
                )
        return len(rows)

    def with_files(self) -> list[Run]:
        """Finished runs that may still have a video or image on disk, oldest finished first."""
        placeholders = ",".join("?" * len(FINISHED))
        return self._all(
            f"SELECT * FROM runs WHERE status IN ({placeholders}) AND (video_path IS NOT NULL OR"
            " image_path IS NOT NULL) ORDER BY COALESCE(finished_at, created_at)",
            tuple(str(status) for status in FINISHED),
        )

    def in_flight(self) -> list[Run]:
        """Runs not finished yet (being prepared, sent, made or saved), oldest first."""
        placeholders = ",".join("?" * len(FINISHED))
        return self._all(
            f"SELECT * FROM runs WHERE status NOT IN ({placeholders}) ORDER BY created_at",
            tuple(str(status) for status in FINISHED),
        )

    def films_with_files(self) -> list[Film]:
        """Every film that may still have its starting picture or its cut on disk, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM films WHERE image_path IS NOT NULL OR film_path IS NOT NULL ORDER BY created_at"
            ).fetchall()
        return [_film(row) for row in rows]

    def image_users(self, image_path: str) -> int:
        """How many runs and films name this image file."""
        with self._lock:
            runs = self._db.execute("SELECT COUNT(*) FROM runs WHERE image_path = ?", (image_path,)).fetchone()[0]
            films = self._db.execute("SELECT COUNT(*) FROM films WHERE image_path = ?", (image_path,)).fetchone()[0]
        return runs + films

    def durations(self, model: str, api_host: str, limit: int = 50) -> Durations:
        """When this model's recent finished tasks on this host ended."""
        with self._lock:
            rows = self._db.execute(
                "SELECT submitted_at, ended_after, finished_at, inference_ms FROM runs"
                " WHERE model = ? AND api_host = ? AND status IN (?, ?) AND submitted_at IS NOT NULL"
                " AND finished_at IS NOT NULL ORDER BY created_at DESC LIMIT ?",
                (model, api_host, str(RunStatus.DONE), str(RunStatus.COMPLETED), limit),
            ).fetchall()
        ends = []
        for r in rows:
            after = r["ended_after"] if r["ended_after"] is not None else r["finished_at"] - DENSE_CHECKS_S
            making = r["inference_ms"] / 1000 if r["inference_ms"] else None
            ends.append((max(0.0, after - r["submitted_at"]), r["finished_at"] - r["submitted_at"], making))
        return Durations(ends=tuple(ends))

    # -- takes: kept by a person, shared by a token of their own --

    def keep(self, run_id: str, kept: bool = True) -> Run:
        """Mark a take as kept (never pruned) or not."""
        return self.update(run_id, kept=int(bool(kept)))

    def add_share(self, token: str, run_id: str) -> None:
        """A new share link for a run; the token is the caller's (takes.py makes it)."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO shares (token, run_id, created_at) VALUES (?,?,?)", (token, run_id, time.time())
            )

    def live_share(self, run_id: str) -> str | None:
        """The run's share token that is not withdrawn, if it has one."""
        with self._lock:
            row = self._db.execute(
                "SELECT token FROM shares WHERE run_id = ? AND withdrawn_at IS NULL ORDER BY created_at DESC",
                (run_id,),
            ).fetchone()
        return None if row is None else row["token"]

    def shared_run(self, token: str) -> Run | None:
        """The run a live (not withdrawn) share token names, else None."""
        return self._one(
            "SELECT runs.* FROM shares JOIN runs ON runs.id = shares.run_id"
            " WHERE shares.token = ? AND shares.withdrawn_at IS NULL",
            (token,),
        )

    def withdraw_shares(self, run_id: str) -> int:
        """Withdraw every live share link of a run; how many there were."""
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "UPDATE shares SET withdrawn_at = ? WHERE run_id = ? AND withdrawn_at IS NULL", (time.time(), run_id)
            )
        return cursor.rowcount

    def _one(self, query: str, args: tuple) -> Run | None:
        with self._lock:
            row = self._db.execute(query, args).fetchone()
        return None if row is None else _run(row)

    def _all(self, query: str, args: Iterable[Any]) -> list[Run]:
        with self._lock:
            rows = self._db.execute(query, tuple(args)).fetchall()
        return [_run(row) for row in rows]


_WORDS = {"status": RunStatus, "mode": Mode, "key_source": KeySource}


def _run(row: sqlite3.Row) -> Run:
    values = {name: row[name] for name in row.keys() if name in _COLUMNS}
    for name, kind in _WORDS.items():
        try:
            values[name] = kind(values[name])
        except ValueError:
            pass  # a word a newer version wrote: kept as it is
    return Run(**values)


def _film(row: sqlite3.Row) -> Film:
    values = {name: row[name] for name in row.keys() if name in _FILM_COLUMNS}
    for name, kind in (("status", FilmStatus), ("key_source", KeySource)):
        try:
            values[name] = kind(values[name])
        except ValueError:
            pass
    return Film(**values)


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
