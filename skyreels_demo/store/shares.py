"""Share links of their own: the `shares` table, on the store's one connection.

Separate from runs.py because a link is not part of a run: a run may have several over time,
each withdrawn on its own, and a token names its run without saying its task id or run id.
The tokens themselves are the studio's to make (studio/takes.py); here they are only kept.
"""

from __future__ import annotations

import time

from skyreels_demo.store.db import Database
from skyreels_demo.store.records import Run, run_of


class ShareRecords(Database):
    """Writing and reading share links; `RunStore` is one of these."""

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
        with self._lock:
            row = self._db.execute(
                "SELECT runs.* FROM shares JOIN runs ON runs.id = shares.run_id"
                " WHERE shares.token = ? AND shares.withdrawn_at IS NULL",
                (token,),
            ).fetchone()
        return None if row is None else run_of(row)

    def withdraw_shares(self, run_id: str) -> int:
        """Withdraw every live share link of a run; how many there were."""
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "UPDATE shares SET withdrawn_at = ? WHERE run_id = ? AND withdrawn_at IS NULL", (time.time(), run_id)
            )
        return cursor.rowcount
