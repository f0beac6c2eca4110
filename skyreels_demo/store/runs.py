"""The durable record of every run: the `runs` table and its status history.

A run is written before its upload starts, and its task id the moment submit returns, so a
crash, a closed tab or a restart leaves a row that `resume` can finish. `RunStore` is the one
face the rest of the app holds: the runs here, films (films.py) and share links (shares.py),
all on one connection to one file (db.py); the values it hands out are in records.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

from skyreels_demo.errors import QuotaExceeded
from skyreels_demo.status import FINISHED, RunStatus, Word
from skyreels_demo.store.films import FilmRecords
from skyreels_demo.store.records import NOTES, RUN_COLUMNS, Durations, KeySource, Limit, Mode, Run, run_of
from skyreels_demo.store.shares import ShareRecords

# A search of History or `runs --find` looks for at most this many words.
MAX_SEARCH_WORDS = 8
# Runs recorded before `ended_after` was kept were checked about a second apart near their end.
DENSE_CHECKS_S = 1.0


class RunStore(FilmRecords, ShareRecords):
    """Thread-safe access to the runs file: runs, and (inherited) films and share links."""

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
        unknown = set(changes) - set(RUN_COLUMNS)
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

    def keep(self, run_id: str, kept: bool = True) -> Run:
        """Mark a take as kept by a person (never pruned) or not."""
        return self.update(run_id, kept=int(bool(kept)))

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

    # -- what the caps, the disk and the schedule ask --

    def count(self, limit: Limit) -> int:
        """Runs that count against a limit: started since its time, not refused before submit."""
        with self._lock:
            return self._count(limit)

    def _count(self, limit: Limit) -> int:
        query = "SELECT COUNT(*) FROM runs WHERE created_at >= ? AND key_source = ? AND status != ?"
        args: list[Any] = [limit.since, str(limit.key_source), str(RunStatus.REFUSED)]
        if limit.requester is not None:
            query += " AND requester = ?"
            args.append(limit.requester)
        return self._db.execute(query, args).fetchone()[0]

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

    def _one(self, query: str, args: tuple) -> Run | None:
        with self._lock:
            row = self._db.execute(query, args).fetchone()
        return None if row is None else run_of(row)

    def _all(self, query: str, args: Iterable[Any]) -> list[Run]:
        with self._lock:
            rows = self._db.execute(query, tuple(args)).fetchall()
        return [run_of(row) for row in rows]
