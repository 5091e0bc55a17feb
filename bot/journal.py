"""Updates survive a crash: journal each one as it is taken, answer leftovers at start.

PTB's Updater puts every fetched update into `application.update_queue` and only
then asks for the next batch, which confirms this one to Telegram; the webhook
server likewise answers Telegram after putting the update. `JournalQueue.put`
writes the update to the inbox (knowledge/storage/inbox.py) before it enters the
queue, so nothing is confirmed that is not on disk. `JournalledApplication`
erases it once handled, reply sent. `replay` queues, at start, what a killed
process had taken and not answered.

The journal never stands between a user and the answer: its write is awaited at
most JOURNAL_WAIT seconds, after which the update goes on anyway (durability is
given up for that update, not the reply).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application

from knowledge.storage.inbox import Inbox

log = logging.getLogger(__name__)

JOURNAL_WAIT = 1.0
INBOX_KEY = "inbox"


class JournalQueue(asyncio.Queue):
    """The update queue, journalling Updates on their way in; anything else passes as is."""

    def __init__(self, inbox: Inbox, wait: float = JOURNAL_WAIT) -> None:
        super().__init__()
        self.inbox = inbox
        self.wait = wait
        self.duplicates = 0

    async def put(self, item: Any) -> None:
        if isinstance(item, Update):
            future = self.inbox.take(item.update_id, item.to_json())
            if future is None:  # sent again by Telegram, or already replayed: answered once
                self.duplicates += 1
                log.info("update %d was already taken; not answered twice", item.update_id)
                return
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.wait)
            except TimeoutError:
                log.warning("inbox write slower than %.1f s: update %d goes on unjournalled", self.wait,
                            item.update_id)
            except Exception:  # the inbox's Health has logged it
                pass
        await super().put(item)


class JournalledApplication(Application):
    """Marks each update done in the inbox when its handling (reply included) is over,
    whether it succeeded or the error handler apologised: a poison update is not replayed."""

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            inbox: Inbox | None = self.bot_data.get(INBOX_KEY)
            if inbox is not None and isinstance(update, Update):
                inbox.done(update.update_id)


def replay(application: Application, inbox: Inbox, max_age: float) -> int:
    """Queue the updates a previous run took and did not answer (taken within max_age
    seconds); returns how many. Call before polling starts."""
    pending, dropped = inbox.pending(max_age)
    replayed = 0
    for update_id, payload in pending:
        try:
            update = Update.de_json(json.loads(payload), application.bot)
        except Exception as exc:  # a row we cannot read must not stop the start
            log.warning("inbox update %d could not be read (%s); skipped", update_id, exc)
            inbox.done(update_id)
            continue
        application.update_queue.put_nowait(update)  # not put(): it is journalled already
        replayed += 1
    if replayed or dropped:
        log.info("inbox: answering %d updates taken before the last stop; %d older than %d s dropped",
                 replayed, dropped, max_age)
    return replayed
