"""SQLite storage for what the assistant remembers: logs, user state, subscribers.

Two modes. By default (command line, tests) every write is committed as it is
made. The bot calls `start_writer()`: from then on writes go to one writer thread
(knowledge/storage/writer.py) and return at once, so a locked, read-only or
broken database never holds up, nor fails, a reply. Reads made for the user
(sessions) do not wait for that queue: sessions saved but not yet committed are
served from memory. `db` (staff statistics, subscribers) waits up to
READ_YOUR_WRITES seconds for queued writes, so it sees what was just written.

User ids are stored only as salted hashes, session keys included; the
subscribers table alone keeps chat ids, because delivering announcements needs them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from knowledge.storage.writer import Health, Writer

log = logging.getLogger(__name__)

READ_YOUR_WRITES = 1.0  # seconds `db` waits for queued writes
READ_BUSY_MS = 200      # with the writer running, a read waits at most this long for a lock
SELFCHECK_PREFIX = "sc"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def hash_user(user_id: int | str, salt: str) -> str:
    """A salted, keyed hash of a user id: stable for statistics, not reversible."""
    return hmac.new(salt.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:20]


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any], verb: str = "insert") -> None:
    columns = ", ".join(row)
    db.execute(f"{verb} into {table} ({columns}) values ({', '.join('?' * len(row))})", list(row.values()))


class Store:
    """The assistant's database. Create with a path (or ":memory:" for tests)."""

    def __init__(self, path: str | Path, salt: str = "") -> None:
        self.path = str(path)
        self.salt = salt
        self.health = Health(Path(self.path).name)
        self.writer: Writer | None = None
        self._sessions: dict[str, tuple[int, dict[str, Any] | None]] = {}  # saved, not yet committed
        self._sessions_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._last_id = 0
        if self.path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite_utils.Database(sqlite3.connect(self.path, check_same_thread=False))
            try:
                self._db.enable_wal()
            except sqlite3.OperationalError as exc:  # read-only: reads still work
                self.health.fault("switching to WAL", exc)
        else:
            self._db = sqlite_utils.Database(memory=True)
        try:
            self._create_tables()
            self._hash_old_session_keys()
        except sqlite3.DatabaseError as exc:  # read-only, locked or damaged at start: serve anyway
            self.health.fault("creating tables", exc)

    def user_hash(self, user_id: int | str) -> str:
        return hash_user(user_id, self.salt)

    def session_key(self, chat_id: int, user_id: int) -> str:
        """A self-check's key: the chat and user, hashed like every stored id."""
        return f"{SELFCHECK_PREFIX}:{hash_user(f'{chat_id}:{user_id}', self.salt)}"

    # -- writes: immediate, or through the writer thread ------------------------

    def start_writer(self) -> None:
        """From now on writes are queued to a writer thread (the bot; never blocks the loop)."""
        if self.writer is None and self.path != ":memory:":
            self.writer = Writer(self.path, Path(self.path).name, self.health)
            # Reads stay on the caller's thread (the event loop): never wait long for a lock there.
            self._db.execute(f"pragma busy_timeout = {READ_BUSY_MS}")

    def _write(self, job: Callable[[sqlite_utils.Database], Any]) -> None:
        """Jobs use plain SQL, never sqlite-utils' insert (it commits on its own, which
        would split the writer's batch transaction)."""
        if self.writer is not None:
            self.writer.submit(job)
        else:
            with self._db.conn:
                job(self._db)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait for queued writes to be committed; False if they were not within timeout."""
        return self.writer.flush(timeout) if self.writer is not None else True

    @property
    def db(self) -> sqlite_utils.Database:
        """The database for reading, after the writes queued so far (waits at most READ_YOUR_WRITES)."""
        self.flush(READ_YOUR_WRITES)
        return self._db

    def integrity_problem(self) -> str | None:
        """None when SQLite's quick check passes, else what it found (a corrupt file that still opens)."""
        try:
            rows = [r[0] for r in self._db.execute("pragma quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None if rows == ["ok"] else "; ".join(rows[:3])

    def _new_id(self) -> int:
        """Question ids are made here, not by SQLite, so a reply can carry its id (for 👍/👎)
        before the row is written: microseconds since the epoch, strictly increasing."""
        self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
        return self._last_id

    # -- schema -----------------------------------------------------------------

    def _create_tables(self) -> None:
        db = self._db
        db["questions"].create(
            {
                "id": int, "ts": str, "user_hash": str, "chat_type": str, "channel": str,
                "text": str, "faq_id": str, "outcome": str, "confidence": float, "latency_ms": float,
            },
            pk="id", if_not_exists=True,
        )
        db["questions"].create_index(["ts"], if_not_exists=True)
        db["feedback"].create(
            {"id": int, "ts": str, "user_hash": str, "question_id": int, "faq_id": str, "rating": int},
            pk="id", if_not_exists=True,
        )
        db["sessions"].create(
            {"key": str, "kind": str, "state": str, "updated_at": str},
            pk="key", if_not_exists=True,
        )
        db["selfchecks"].create(
            {"id": int, "ts": str, "user_hash": str, "event": str, "answers": str, "verdict": str},
            pk="id", if_not_exists=True,
        )
        db["subscribers"].create(
            {"chat_id": int, "subscribed_at": str, "active": int, "blocked": int},
            pk="chat_id", if_not_exists=True,
        )

    # -- question and feedback logs ----------------------------------------------

    def log_question(
        self, *, user_hash: str, text: str, outcome: str, faq_id: str | None = None,
        confidence: float = 0.0, latency_ms: float = 0.0, chat_type: str = "private",
        channel: str = "telegram", ts: datetime | None = None,
    ) -> int:
        row = {
            "ts": iso(ts or utcnow()), "user_hash": user_hash, "chat_type": chat_type, "channel": channel,
            "text": text, "faq_id": faq_id, "outcome": outcome, "confidence": round(confidence, 4),
            "latency_ms": round(latency_ms, 3), "id": self._new_id(),
        }
        self._write(lambda db: _insert(db, "questions", row))
        return row["id"]

    def log_feedback(
        self, *, user_hash: str, rating: int, question_id: int | None = None, faq_id: str | None = None,
        ts: datetime | None = None,
    ) -> int:
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        row = {"ts": iso(ts or utcnow()), "user_hash": user_hash, "question_id": question_id,
               "faq_id": faq_id, "rating": rating, "id": self._new_id()}
        self._write(lambda db: _insert(db, "feedback", row))
        return row["id"]

    # -- per-user sessions (self-check progress and the like) --------------------

    def load_session(self, key: str, kind: str, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state, or None when absent or older than max_age (then it is dropped).
        A database that cannot be read counts as no session: the user starts afresh."""
        with self._sessions_lock:
            pending = self._sessions.get(key)
        if pending is not None:
            row = pending[1]
        else:
            try:
                row = self._db["sessions"].get(key)
            except sqlite_utils.db.NotFoundError:
                return None
            except sqlite3.Error as exc:
                self.health.fault("reading a session", exc)
                return None
        if row is None or row["kind"] != kind:
            return None
        if max_age is not None and datetime.fromisoformat(row["updated_at"]) < utcnow() - max_age:
            self.delete_session(key)
            return None
        return json.loads(row["state"])

    def _set_session(self, key: str, row: dict[str, Any] | None) -> None:
        """Remember the change in memory until the writer has committed it."""
        seq = next(self._seq)
        with self._sessions_lock:
            self._sessions[key] = (seq, row)

        def job(db: sqlite_utils.Database) -> None:
            if row is None:
                db.execute("delete from sessions where key = ?", [key])
            else:
                _insert(db, "sessions", row, "insert or replace")

        def forget() -> None:
            with self._sessions_lock:
                if self._sessions.get(key, (None,))[0] == seq:
                    del self._sessions[key]

        if self.writer is not None:
            future = self.writer.submit(job)
            # The memory copy goes once the batch is committed (not when the job ran: the
            # batch commits later, and a read in between would find neither). A dropped
            # write (e.g. read-only file): the session lives on in memory.
            future.add_done_callback(lambda f: self._keep(key, seq, row) if f.exception() else forget())
        else:
            with self._db.conn:
                job(self._db)
            forget()

    def _keep(self, key: str, seq: int, row: dict[str, Any] | None) -> None:
        with self._sessions_lock:
            if key not in self._sessions:
                self._sessions[key] = (seq, row)

    def save_session(self, key: str, kind: str, state: dict[str, Any]) -> None:
        self._set_session(key, {"key": key, "kind": kind, "state": json.dumps(state, ensure_ascii=False),
                                "updated_at": iso(utcnow())})

    def delete_session(self, key: str) -> None:
        self._set_session(key, None)

    def _hash_old_session_keys(self) -> None:
        """Self-checks saved before keys were hashed ("sc:<chat>:<user>") get their hashed key."""
        old = [r for r in self._db.execute("select key from sessions where key like ?", [f"{SELFCHECK_PREFIX}:%:%"])]
        with self._db.conn:
            for (key,) in old:
                _, chat_id, user_id = key.split(":", 2)
                self._db.execute("delete from sessions where key = ?", [self.session_key(chat_id, user_id)])
                self._db.execute("update sessions set key = ? where key = ?", [self.session_key(chat_id, user_id), key])

    def record_selfcheck(self, *, user_hash: str, event: str, answers: dict[str, Any] | None = None,
                         verdict: str | None = None, ts: datetime | None = None) -> int:
        """event is "started" or "finished"; a finished one carries answers and verdict."""
        row = {"ts": iso(ts or utcnow()), "user_hash": user_hash, "event": event,
               "answers": json.dumps(answers or {}, ensure_ascii=False), "verdict": verdict, "id": self._new_id()}
        self._write(lambda db: _insert(db, "selfchecks", row))
        return row["id"]

    # -- announcement subscribers ------------------------------------------------

    def subscribe(self, chat_id: int) -> bool:
        """True when newly (re)subscribed, False when already subscribed."""
        if self.is_subscribed(chat_id):
            return False
        row = {"chat_id": chat_id, "subscribed_at": iso(utcnow()), "active": 1, "blocked": 0}
        self._write(lambda db: _insert(db, "subscribers", row, "insert or replace"))
        return True

    def unsubscribe(self, chat_id: int) -> bool:
        row = self.db.execute("select active from subscribers where chat_id = ?", [chat_id]).fetchone()
        if row is None:
            return False
        self._write(lambda db: db.execute("update subscribers set active = 0 where chat_id = ?", [chat_id]))
        return bool(row[0])

    def mark_blocked(self, chat_id: int) -> None:
        self._write(lambda db: db.execute("update subscribers set blocked = 1 where chat_id = ?", [chat_id]))

    def active_subscribers(self) -> list[int]:
        return [r["chat_id"] for r in self.db["subscribers"].rows_where("active = 1 and blocked = 0", order_by="chat_id")]

    def is_subscribed(self, chat_id: int) -> bool:
        return bool(self.db.execute(
            "select 1 from subscribers where chat_id = ? and active = 1 and blocked = 0", [chat_id]).fetchone())

    def migrate_subscriber(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (Telegram's ChatMigrated): keep the subscription under the new id."""
        def job(db: sqlite_utils.Database) -> None:
            db.execute("delete from subscribers where chat_id = ?", [new_chat_id])
            db.execute("update subscribers set chat_id = ? where chat_id = ?", [new_chat_id, old_chat_id])

        if self.writer is not None:
            self.writer.submit(job)
        else:
            with self._db.conn:
                job(self._db)

    def subscriber_counts(self) -> dict[str, int]:
        """active (will receive), blocked (blocked the bot; skipped), unsubscribed."""
        row = self.db.execute(
            "select coalesce(sum(active = 1 and blocked = 0), 0), coalesce(sum(blocked = 1), 0), "
            "coalesce(sum(active = 0 and blocked = 0), 0) from subscribers").fetchone()
        return {"active": row[0], "blocked": row[1], "unsubscribed": row[2]}

    # -- retention ---------------------------------------------------------------

    def purge_older_than(self, days: int, now: datetime | None = None, *,
                         sessions_idle: timedelta | None = None) -> int:
        """Delete log rows older than `days`, and sessions untouched for as long (self-checks
        already after `sessions_idle`: they expire then anyway); returns how many went.
        With the writer running, the purge is queued and 0 is returned (it logs its count)."""
        now = now or utcnow()
        cutoff = iso(now - timedelta(days=days))
        idle_cutoff = iso(now - sessions_idle) if sessions_idle is not None else cutoff

        def job(db: sqlite_utils.Database) -> int:
            removed = 0
            for table in ("questions", "feedback", "selfchecks"):
                removed += db.execute(f"delete from {table} where ts < ?", [cutoff]).rowcount
            removed += db.execute("delete from sessions where updated_at < ? or (key like ? and updated_at < ?)",
                                  [cutoff, f"{SELFCHECK_PREFIX}:%", idle_cutoff]).rowcount
            log.info("retention: removed %d rows older than %d days", removed, days)
            return removed

        if self.writer is not None:
            self.writer.submit(job)
            return 0
        with self._db.conn:
            return job(self._db)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self._db.close()
