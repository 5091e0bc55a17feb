"""Per-user flood limit: N messages in a sliding window; one polite warning, then silence.

Runs before every other handler (group -1) and stops the update there when the
sender is over the limit. Users are keyed by their salted hash, like the logs.
Typed messages and button presses have separate allowances (browsing /faq and
rating answers is many presses, and must not use up the right to ask), and
/cancel and /help always get through: they are how a user gets unstuck.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from enum import Enum

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, TypeHandler

from handlers.common import Services, mentions_bot, services, user_hash

FLOOD_NOTICE = "您发送得太快了，请稍等一分钟再提问。"
FLOOD_ALERT = "操作太频繁，请稍后再试。"


class Verdict(Enum):
    ALLOW = "allow"
    WARN = "warn"    # first message over the limit: say so once
    QUIET = "quiet"  # later ones: ignore until the window has room again


class FloodLimiter:
    """Sliding-window counter per key. Refused messages are not counted, so a user
    is let back in as soon as their oldest accepted message leaves the window."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._warned: set[str] = set()
        self._calls = 0

    def hit(self, key: str) -> Verdict:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._calls += 1
        if self._calls % 1000 == 0:
            self._sweep(now)
        if len(hits) < self.limit:
            hits.append(now)
            self._warned.discard(key)
            return Verdict.ALLOW
        if key in self._warned:
            return Verdict.QUIET
        self._warned.add(key)
        return Verdict.WARN

    def _sweep(self, now: float) -> None:
        """Forget users idle for a whole window, so memory follows active users only."""
        idle = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]
        for key in idle:
            del self._hits[key]
            self._warned.discard(key)


ALWAYS_ALLOWED = ("/cancel", "/help")


def _always_allowed(update: Update) -> bool:
    message = update.message or update.edited_message
    command = ((message.text or "").split(maxsplit=1) or [""])[0].split("@", 1)[0] if message else ""
    return command.lower() in ALWAYS_ALLOWED


def _counts(update: Update) -> bool:
    """Only what the bot would answer counts: not inline queries (sent per keystroke),
    not group chatter it ignores anyway."""
    if update.effective_user is None:
        return False
    if update.callback_query is not None:
        return True
    message = update.message or update.edited_message
    if message is None:
        return False
    if message.chat.type == "private":
        return True
    return (message.text or "").startswith("/") or mentions_bot(message)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not _counts(update) or _always_allowed(update):
        return
    deps = services(context)
    limiter = deps.flood
    if update.callback_query is not None and deps.press_flood is not None:
        limiter = deps.press_flood
    verdict = limiter.hit(user_hash(context, update))
    if verdict is Verdict.ALLOW:
        return
    with contextlib.suppress(TelegramError):  # whatever happens, the update stops here
        if update.callback_query is not None:
            await update.callback_query.answer(FLOOD_ALERT)  # always answer, or the button keeps spinning
        elif verdict is Verdict.WARN:
            await context.bot.send_message(update.effective_chat.id, FLOOD_NOTICE)
    raise ApplicationHandlerStop


def register(application: Application, deps: Services) -> None:
    application.add_handler(TypeHandler(Update, gate), group=-1)
