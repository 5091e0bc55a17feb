"""Raw chat and user ids stay out of the database (subscribers aside) and the logs
(issue 10, item 7)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from datetime import timedelta

from bot.config import Settings
from bot.telegram_app import configure_logging
from handlers import selfcheck as h
from handlers.subscriptions import deliver
from knowledge.storage.store import Store, iso, utcnow

USER = 7654321


async def test_session_keys_are_hashed(bot):
    await bot.ask(USER, "/check")
    assert await asyncio.to_thread(bot.store.flush, 5)
    keys = [r["key"] for r in bot.store.db["sessions"].rows]
    assert keys == [h.session_key(bot.store, USER, USER)]
    assert str(USER) not in keys[0]


def test_old_raw_session_keys_are_hashed_at_open(tmp_path):
    path = tmp_path / "assistant.db"
    Store(path, "salt").close()
    with sqlite3.connect(path) as db:
        db.execute("insert into sessions values (?, 'selfcheck', '{\"id\": \"n\"}', ?)",
                   [f"sc:{USER}:{USER}", iso(utcnow())])
    store = Store(path, "salt")
    assert [r["key"] for r in store.db["sessions"].rows] == [store.session_key(USER, USER)]
    assert store.load_session(store.session_key(USER, USER), "selfcheck") == {"id": "n"}
    store.close()


def test_purge_deletes_expired_and_old_sessions(tmp_path):
    store = Store(tmp_path / "assistant.db", "salt")
    store.save_session(store.session_key(1, 1), "selfcheck", {"id": "old"})
    store.save_session(store.session_key(2, 2), "selfcheck", {"id": "new"})
    store.save_session("reminder:x", "reminder", {"sent": True})
    store.db.execute("update sessions set updated_at = ? where key = ?",
                     [iso(utcnow() - timedelta(hours=30)), store.session_key(1, 1)])
    store.db.conn.commit()
    removed = store.purge_older_than(365, sessions_idle=timedelta(hours=24))
    assert removed == 1
    assert sorted(r["key"] for r in store.db["sessions"].rows) == sorted([store.session_key(2, 2), "reminder:x"])
    store.close()


async def test_delivery_logs_hashed_chat_ids(bot, caplog):
    caplog.set_level(logging.INFO)
    bot.store.subscribe(602)  # never talked to the fake server: 400 chat not found
    bot.api.fail("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    await deliver(bot.app.bot, bot.store, "通知")
    assert "602" not in caplog.text
    assert bot.store.user_hash(602) in caplog.text


def test_library_update_dumps_stay_off_at_debug_unless_asked(tmp_path):
    root = logging.getLogger()
    old_level = root.level
    try:
        configure_logging(Settings(log_level="DEBUG", data_dir=tmp_path))
        assert logging.getLogger("telegram").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("telegram.ext.Updater").getEffectiveLevel() == logging.INFO
        configure_logging(dataclasses.replace(Settings(log_level="DEBUG"), log_telegram_debug=True))
        assert logging.getLogger("telegram").getEffectiveLevel() == logging.DEBUG
    finally:
        logging.getLogger("telegram").setLevel(logging.NOTSET)
        root.setLevel(old_level)


def test_debug_setting_is_read():
    assert Settings.from_env({"LOG_TELEGRAM_DEBUG": "1", "USER_HASH_SALT": "s"}).log_telegram_debug
    assert not Settings.from_env({"USER_HASH_SALT": "s"}).log_telegram_debug
