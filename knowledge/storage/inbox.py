"""The inbox: every update taken from Telegram, kept until its reply has been sent.

Taking updates from getUpdates confirms the previous batch to Telegram, which then
never sends it again; a process killed after that would lose every question it
had taken but not yet answered. So each update is written here first (`take`),
and its payload erased once handled (`done`); at the next start `pending` gives
back what was taken and not handled, within a bounded age, to be answered then.

The update id stays as a tombstone for a day, so an update Telegram does send again
(taken but not confirmed before a crash) is recognised and answered once only.
Payloads hold chat ids, names and texts: they live only while a reply is owed.

A separate SQLite file from the assistant's log, with its own writer thread: a
process holding the log's lock, or a broken log, does not stop updates coming in.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import Future
from pathlib import Path

import sqlite_utils

from knowledge.storage.writer import Health, Writer

TOMBSTONE_SECONDS = 86_400  # Telegram keeps unconfirmed updates for 24 hours
KNOWN_MAX = 200_000


class Inbox:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.health = Health(Path(self.path).name)
        self._known: set[int] = set()
        self._taken_at: dict[int, float] = {}
        self._dones = 0
        self._open: dict[int, str] = {}  # taken at start and not handled: replayed by the caller
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.writer: Writer | None = None
        try:
            db = sqlite_utils.Database(sqlite3.connect(self.path))
            db.enable_wal()
            db.execute("create table if not exists inbox (update_id integer primary key, taken_at real, "
                       "done_at real, payload text)")
            db.execute("delete from inbox where done_at < ?", [time.time() - TOMBSTONE_SECONDS])
            db.conn.commit()
            rows = db.execute("select update_id, taken_at, payload from inbox where done_at is null").fetchall()
            self._known = {r[0] for r in db.execute("select update_id from inbox")}
            self._taken_at = {r[0]: r[1] for r in rows}
            self._open = {r[0]: r[2] for r in rows}
            db.conn.close()
            self.writer = Writer(self.path, Path(self.path).name, self.health)
        except sqlite3.Error as exc:  # no inbox: updates are still answered, just not journalled
            self.health.fault("opening the inbox", exc)

    def pending(self, max_age: float, now: float | None = None) -> tuple[list[tuple[int, str]], int]:
        """(update_id, payload) taken within max_age seconds and not handled, oldest first;
        and how many older ones were dropped (marked done without an answer)."""
        now = time.time() if now is None else now
        fresh, stale = [], []
        for update_id, payload in sorted(self._open.items()):
            (fresh if now - self._taken_at.get(update_id, 0) <= max_age else stale).append((update_id, payload))
        for update_id, _ in stale:
            self.done(update_id)
        self._open = {}
        return fresh, len(stale)

    def take(self, update_id: int, payload: str) -> Future | None:
        """Journal an update; None when it was already taken (a redelivery: not to be answered
        twice), else a future that completes when the row is committed."""
        if update_id in self._known:
            return None
        if len(self._known) > KNOWN_MAX:  # only recent ids can come again
            self._known = set(sorted(self._known)[KNOWN_MAX // 2:])
        self._known.add(update_id)
        if self.writer is None:
            future: Future = Future()
            future.set_result(None)
            return future
        now = time.time()
        return self.writer.submit(lambda db: db.execute(
            "insert or ignore into inbox (update_id, taken_at, payload) values (?, ?, ?)", [update_id, now, payload]))

    def done(self, update_id: int) -> None:
        """The update has been handled: erase its payload, keep its id for a while."""
        if self.writer is None:
            return
        now = time.time()
        self._dones += 1
        sweep = self._dones % 1000 == 0

        def job(db: sqlite_utils.Database) -> None:
            db.execute("update inbox set done_at = ?, payload = null where update_id = ?", [now, update_id])
            if sweep:
                db.execute("delete from inbox where done_at < ?", [now - TOMBSTONE_SECONDS])

        self.writer.submit(job)

    def flush(self, timeout: float | None = 10.0) -> bool:
        return self.writer.flush(timeout) if self.writer is not None else True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
