"""Nothing lost, nothing stuck (issue 10, items 1-3): a kill -9 loses no taken update,
a locked or broken database never holds up or spoils an answer, a broken index is rebuilt."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bot.telegram_app import _check_store
from handlers.errors import APOLOGY
from knowledge.answering.index import Index
from knowledge.storage.inbox import Inbox
from knowledge.storage.store import Store
from knowledge.storage.writer import Writer
from tests.fake_bot_api import TOKEN
from tests.test_config import run_main

DEADLINE_Q = "申报截止时间是什么时候？"


# -- 1. kill -9 during a burst ----------------------------------------------------------------


def bot_env(api, data: Path, **extra: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": api.base_url,
            "TELEGRAM_BASE_FILE_URL": api.base_file_url, "PILOT_DATA_DIR": str(data), "LOG_LEVEL": "WARNING",
            "TELEGRAM_RATE_PER_CHAT": "1000", "TELEGRAM_RATE_CHAT_BURST": "100", **extra}


async def test_kill_9_mid_burst_loses_no_taken_update(fake_api, tmp_path):
    users = range(5001, 5041)
    data = tmp_path / "data"
    # Slow replies (5 a second) so the kill comes while most updates are taken but unanswered.
    first = await run_main(bot_env(fake_api, data, TELEGRAM_RATE_OVERALL="5"), tmp_path)
    try:
        await fake_api.wait_for_call("setMyCommands", timeout=60)
        for user in users:
            fake_api.message(user, DEADLINE_Q)
        await fake_api.wait_for(lambda: len(fake_api.sent()) >= 5, timeout=30)
        await fake_api.wait_for(lambda: fake_api.get_updates_calls >= 2, timeout=10)  # the burst is confirmed
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    answered_before = {c.chat_id for c in fake_api.sent()}
    assert len(answered_before) < len(users)

    second = await run_main(bot_env(fake_api, data, TELEGRAM_RATE_OVERALL="1000"), tmp_path)
    try:
        await fake_api.wait_for(lambda: {c.chat_id for c in fake_api.sent()} >= set(users), timeout=60)
        await fake_api.settle(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.communicate(), 30)
    replies = [c.chat_id for c in fake_api.sent()]
    duplicated = len(replies) - len(set(replies))
    assert set(replies) == set(users)  # none lost
    assert duplicated <= 5  # only replies in flight at the kill can be sent twice


def test_inbox_replays_unfinished_updates_and_refuses_redeliveries(tmp_path):
    inbox = Inbox(tmp_path / "inbox.db")
    for update_id in (1, 2, 3):
        inbox.take(update_id, f'{{"update_id": {update_id}}}').result(5)
    inbox.done(2)
    inbox.close()  # a restart

    again = Inbox(tmp_path / "inbox.db")
    pending, dropped = again.pending(max_age=3600)
    assert [u for u, _ in pending] == [1, 3] and dropped == 0
    assert again.take(1, "{}") is None and again.take(2, "{}") is None  # Telegram sent them again: once only
    assert again.take(4, "{}") is not None
    again.close()
    with sqlite3.connect(tmp_path / "inbox.db") as db:  # a handled update keeps no payload (ids, names, text)
        assert db.execute("select payload from inbox where update_id = 2").fetchone() == (None,)


def test_inbox_drops_leftovers_older_than_the_bound(tmp_path):
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.take(7, "{}").result(5)
    inbox.close()
    again = Inbox(tmp_path / "inbox.db")
    pending, dropped = again.pending(max_age=60, now=time.time() + 3600)
    assert pending == [] and dropped == 1
    again.close()


# -- 2. a database lock does not freeze the bot ------------------------------------------------


def hold_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection holds BEGIN EXCLUSIVE on the database for `seconds`."""
    ready = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("begin exclusive")
        ready.set()
        time.sleep(seconds)
        db.execute("rollback")
        db.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(5)
    return thread


async def test_replies_do_not_wait_for_a_locked_database(bot, assistant):
    await bot.ask(1301, "你好")  # the database exists, WAL mode
    holder = hold_lock(bot.store.path, 4.0)
    started = time.perf_counter()
    answer = await bot.ask(1301, DEADLINE_Q, timeout=3)
    helped = await bot.ask(1302, "/help", timeout=3)
    elapsed = time.perf_counter() - started
    assert answer.text == assistant.answer(DEADLINE_Q).text and helped.text == assistant.help().text
    assert elapsed < 1.5
    await asyncio.to_thread(holder.join)
    assert await asyncio.to_thread(bot.store.flush, 10)  # the queued rows land once the lock goes
    assert [r["text"] for r in bot.store.db["questions"].rows] == ["你好", DEADLINE_Q]


# -- 3. read-only, corrupt: answer anyway, log once ------------------------------------------------


async def test_read_only_database_still_answers_and_logs_once(start_bot, assistant, monkeypatch, caplog):
    connect = Writer._connect

    def read_only(self):
        db = connect(self)
        db.execute("pragma query_only = 1")  # SQLite then refuses writes as for a read-only file
        return db

    monkeypatch.setattr(Writer, "_connect", read_only)
    bot = await start_bot()
    caplog.set_level(logging.ERROR)
    for n in range(5):
        reply = await bot.ask(1310 + n, DEADLINE_Q)
        assert reply.text == assistant.answer(DEADLINE_Q).text and reply.text != APOLOGY
    await asyncio.to_thread(bot.store.flush, 10)
    storage_errors = [r for r in caplog.records if "storage assistant.db" in r.getMessage()]
    assert len(storage_errors) == 1 and "readonly" in storage_errors[0].getMessage()


def corrupt(path: Path) -> None:
    """Overwrite pages in the middle of the file, as a bad disk would."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xde\xad\xbe\xef" * ((size - 4096 * 2) // 4))


def test_corrupt_database_that_still_opens_is_reported_at_start(tmp_path, capsys, caplog):
    path = tmp_path / "assistant.db"
    store = Store(path, "s")
    for n in range(300):
        store.log_question(user_hash="u", text=f"问题{n}" * 20, outcome="answered")
    store.close()
    corrupt(path)
    damaged = Store(path, "s")
    _check_store(damaged)
    assert "已损坏" in capsys.readouterr().err
    assert "damaged" in caplog.text
    damaged.close()


def test_corrupt_index_is_rebuilt(tmp_path, kb, caplog):
    path = tmp_path / "index.db"
    path.write_bytes(b"this is not a database" * 500)
    caplog.set_level(logging.WARNING)
    index = Index.open(path, kb)
    assert index.candidates(index.tokens("申报截止时间"))
    assert "rebuilding" in caplog.text
    index.db.close()


@pytest.mark.parametrize("bad", ["unreadable"])
def test_session_read_failure_counts_as_no_session(tmp_path, bad):
    store = Store(tmp_path / "assistant.db", "s")
    store._db.execute("drop table sessions")  # any read error: the user simply starts afresh
    assert store.load_session("sc:x", "selfcheck") is None
    store.close()
