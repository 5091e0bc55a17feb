"""SQLite storage for what the assistant remembers: logs, user state, subscribers.

One sqlite-utils Database per process. Every write is its own committed
transaction, so a killed process loses nothing already acknowledged.
User ids are stored only as salted hashes; the subscribers table alone keeps
chat ids, because delivering announcements needs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def hash_user(user_id: int | str, salt: str) -> str:
    """A salted, keyed hash of a user id: stable for statistics, not reversible."""
    return hmac.new(salt.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:20]


class Store:
    """The assistant's database. Create with a path (or ":memory:" for tests)."""

    def __init__(self, path: str | Path, salt: str = "") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
            self.db.enable_wal()
        else:
            self.db = sqlite_utils.Database(memory=True)
        self.path = str(path)
        self.salt = salt
        self._create_tables()

    def user_hash(self, user_id: int | str) -> str:
        return hash_user(user_id, self.salt)

    # -- schema -----------------------------------------------------------------

    def _create_tables(self) -> None:
        db = self.db
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
            "latency_ms": round(latency_ms, 3),
        }
        return int(self.db["questions"].insert(row).last_pk)

    def log_feedback(
        self, *, user_hash: str, rating: int, question_id: int | None = None, faq_id: str | None = None,
        ts: datetime | None = None,
    ) -> int:
        if rating not in (1, -1):
            raise ValueError("rating must be 1 or -1")
        row = {"ts": iso(ts or utcnow()), "user_hash": user_hash, "question_id": question_id,
               "faq_id": faq_id, "rating": rating}
        return int(self.db["feedback"].insert(row).last_pk)

    # -- per-user sessions (self-check progress and the like) --------------------

    def load_session(self, key: str, kind: str, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state, or None when absent or older than max_age (then it is dropped)."""
        try:
            row = self.db["sessions"].get(key)
        except sqlite_utils.db.NotFoundError:
            return None
        if row["kind"] != kind:
            return None
        if max_age is not None and datetime.fromisoformat(row["updated_at"]) < utcnow() - max_age:
            self.delete_session(key)
            return None
        return json.loads(row["state"])

    def save_session(self, key: str, kind: str, state: dict[str, Any]) -> None:
        self.db["sessions"].upsert(
            {"key": key, "kind": kind, "state": json.dumps(state, ensure_ascii=False), "updated_at": iso(utcnow())},
            pk="key",
        )

    def delete_session(self, key: str) -> None:
        self.db["sessions"].delete_where("key = ?", [key])

    def record_selfcheck(self, *, user_hash: str, event: str, answers: dict[str, Any] | None = None,
                         verdict: str | None = None, ts: datetime | None = None) -> int:
        """event is "started" or "finished"; a finished one carries answers and verdict."""
        row = {"ts": iso(ts or utcnow()), "user_hash": user_hash, "event": event,
               "answers": json.dumps(answers or {}, ensure_ascii=False), "verdict": verdict}
        return int(self.db["selfchecks"].insert(row).last_pk)

    # -- announcement subscribers ------------------------------------------------

    def subscribe(self, chat_id: int) -> bool:
        """True when newly (re)subscribed, False when already subscribed."""
        try:
            row = self.db["subscribers"].get(chat_id)
            if row["active"] and not row["blocked"]:
                return False
        except sqlite_utils.db.NotFoundError:
            pass
        self.db["subscribers"].upsert(
            {"chat_id": chat_id, "subscribed_at": iso(utcnow()), "active": 1, "blocked": 0}, pk="chat_id"
        )
        return True

    def unsubscribe(self, chat_id: int) -> bool:
        try:
            row = self.db["subscribers"].get(chat_id)
        except sqlite_utils.db.NotFoundError:
            return False
        self.db["subscribers"].update(chat_id, {"active": 0})
        return bool(row["active"])

    def mark_blocked(self, chat_id: int) -> None:
        self.db["subscribers"].update(chat_id, {"blocked": 1})

    def active_subscribers(self) -> list[int]:
        return [r["chat_id"] for r in self.db["subscribers"].rows_where("active = 1 and blocked = 0", order_by="chat_id")]

    def is_subscribed(self, chat_id: int) -> bool:
        return bool(self.db.execute(
            "select 1 from subscribers where chat_id = ? and active = 1 and blocked = 0", [chat_id]).fetchone())

    def migrate_subscriber(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (Telegram's ChatMigrated): keep the subscription under the new id."""
        with self.db.conn:
            self.db.execute("delete from subscribers where chat_id = ?", [new_chat_id])
            self.db.execute("update subscribers set chat_id = ? where chat_id = ?", [new_chat_id, old_chat_id])

    def subscriber_counts(self) -> dict[str, int]:
        """active (will receive), blocked (blocked the bot; skipped), unsubscribed."""
        row = self.db.execute(
            "select coalesce(sum(active = 1 and blocked = 0), 0), coalesce(sum(blocked = 1), 0), "
            "coalesce(sum(active = 0 and blocked = 0), 0) from subscribers").fetchone()
        return {"active": row[0], "blocked": row[1], "unsubscribed": row[2]}

    # -- retention ---------------------------------------------------------------

    def purge_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete log rows older than `days`; returns how many went."""
        cutoff = iso((now or utcnow()) - timedelta(days=days))
        removed = 0
        for table in ("questions", "feedback", "selfchecks"):
            before = self.db[table].count
            self.db[table].delete_where("ts < ?", [cutoff])
            removed += before - self.db[table].count
        return removed

    def close(self) -> None:
        self.db.close()
