"""Films as records of their own: the `films` table, on the store's one connection.

Separate from runs.py because a film is not a run: it names its shots in order (as JSON, so a
film keeps what each shot was asked to be), its starting picture and its cut, while each shot's
takes are ordinary runs that carry the film's id and their place (`RunStore.shots_of`).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from skyreels_demo.status import FilmStatus, Word
from skyreels_demo.store.db import Database
from skyreels_demo.store.records import FILM_COLUMNS, Film, KeySource, film_of


class FilmRecords(Database):
    """Writing and reading films; `RunStore` is one of these."""

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
        return film_of(row)

    def update_film(self, film_id: str, **changes: Any) -> Film:
        unknown = set(changes) - set(FILM_COLUMNS)
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
        return [film_of(row) for row in rows]

    def films_with_files(self) -> list[Film]:
        """Every film that may still have its starting picture or its cut on disk, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM films WHERE image_path IS NOT NULL OR film_path IS NOT NULL ORDER BY created_at"
            ).fetchall()
        return [film_of(row) for row in rows]
