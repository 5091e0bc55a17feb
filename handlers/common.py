"""What every Telegram handler shares: the services, rendering a Reply, sending it.

Handlers only translate between Telegram and the engine: the words come from
`knowledge.Assistant`; here they are escaped, given buttons and sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, MessageLimit
from telegram.error import TelegramError
from telegram.ext import ContextTypes, filters

from knowledge.reply import Outcome, Reply

if TYPE_CHECKING:
    from bot.config import Settings
    from handlers.flood import FloodLimiter
    from knowledge.assistant import Assistant
    from knowledge.storage.store import Store

log = logging.getLogger(__name__)

SERVICES_KEY = "services"
CALLBACK_DATA_MAX_BYTES = 64  # Telegram's limit on callback_data
FEEDBACK_PREFIX = "fb"


@dataclass
class Services:
    """Everything a handler needs, kept in application.bot_data[SERVICES_KEY]."""

    assistant: Assistant
    store: Store
    settings: Settings
    flood: FloodLimiter                       # typed messages
    press_flood: FloodLimiter | None = None  # button presses: their own, larger allowance


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data[SERVICES_KEY]


def chat_type(update: Update) -> str:
    return update.effective_chat.type if update.effective_chat else "unknown"


def user_hash(context: ContextTypes.DEFAULT_TYPE, update: Update) -> str:
    """The salted hash of the sender; raw ids are never stored."""
    user = update.effective_user
    return services(context).store.user_hash(user.id if user else 0)


# -- who is being spoken to ------------------------------------------------------


def mentions_bot(message: Message) -> bool:
    """True when a group message mentions this bot or replies to one of its messages."""
    bot = message.get_bot()
    reply_to = message.reply_to_message
    if reply_to is not None and reply_to.from_user is not None and reply_to.from_user.id == bot.id:
        return True
    username = (bot.username or "").lower()
    for entity, text in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items():
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
        if username and text.lower() == "@" + username:
            return True
    return False


def strip_mention(message: Message) -> str:
    """The text without "@thisbot", so the engine sees only the question."""
    text = message.text or ""
    username = message.get_bot().username
    if username:
        text = re.sub("@" + re.escape(username) + r"\b", " ", text, flags=re.IGNORECASE)
    return text.strip()


class _Addressed(filters.MessageFilter):
    """Private chats always; groups only when the bot is mentioned or replied to."""

    def filter(self, message: Message) -> bool:
        return message.chat.type == "private" or mentions_bot(message)


ADDRESSED = _Addressed(name="Addressed")


# -- rendering -------------------------------------------------------------------


def render_html(text: str) -> str:
    """Plain engine text -> Telegram HTML: every character escaped; the citation in italics."""
    lines = []
    for line in text.split("\n"):
        escaped = html.escape(line, quote=False)
        lines.append(f"<i>{escaped}</i>" if line.startswith("依据：") else escaped)
    return "\n".join(lines)


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Cut plain text into pieces whose rendered HTML fits one message, at line breaks
    where possible. Splitting before escaping means no tag or entity is ever cut."""
    if len(render_html(text)) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(render_html(candidate)) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while len(render_html(line)) > limit:  # one line longer than a message: hard cut
            lo, hi = 1, len(line)  # the longest prefix that fits, by bisection
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if len(render_html(line[:mid])) <= limit else (lo, mid - 1)
            pieces.append(line[:lo])
            line = line[lo:]
        current = line
    if current:
        pieces.append(current)
    return pieces


def _button(label: str, data: str) -> InlineKeyboardButton | None:
    if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
        log.warning("button %r dropped: callback data over %d bytes", label, CALLBACK_DATA_MAX_BYTES)
        return None
    return InlineKeyboardButton(label, callback_data=data)


def _rows(buttons: Iterable[InlineKeyboardButton | None], per_row: int) -> list[list[InlineKeyboardButton]]:
    kept = [b for b in buttons if b is not None]
    return [kept[i:i + per_row] for i in range(0, len(kept), per_row)]


def feedback_data(rating: int, question_id: int, faq_id: str | None) -> str:
    """"fb:<+1|-1>:<question log id>:<faq id>"; the faq id is dropped if it would not fit."""
    data = f"{FEEDBACK_PREFIX}:{rating:+d}:{question_id}:{faq_id or ''}"
    return data if len(data.encode()) <= CALLBACK_DATA_MAX_BYTES else f"{FEEDBACK_PREFIX}:{rating:+d}:{question_id}:"


def keyboard(reply: Reply, clause_labels: dict[str, str], question_id: int | None = None) -> InlineKeyboardMarkup | None:
    """查看原文 (one per cited clause), the engine's buttons, then 👍/👎 when the question was logged."""
    rows: list[list[InlineKeyboardButton]] = []
    if reply.outcome is Outcome.ANSWERED and reply.clauses:
        clauses = reply.clauses[:3]
        rows += _rows(
            (_button("📄 查看原文" if len(clauses) == 1 else f"📄 原文：{clause_labels.get(c, c)}", f"clause:{c}")
             for c in clauses), 1)
    # Short labels (the start menu) go two to a row; questions get a row each.
    per_row = 2 if reply.buttons and all(len(b.label) <= 6 for b in reply.buttons) else 1
    rows += _rows((_button(b.label, b.action) for b in reply.buttons), per_row)
    if question_id is not None and reply.outcome in (Outcome.ANSWERED, Outcome.UNKNOWN):
        rows += _rows((_button("👍 有帮助", feedback_data(1, question_id, reply.faq_id)),
                       _button("👎 没帮助", feedback_data(-1, question_id, reply.faq_id))), 2)
    return InlineKeyboardMarkup(rows) if rows else None


async def send_reply(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    reply: Reply,
    *,
    question_id: int | None = None,
    reply_to: int | None = None,
    note: str | None = None,
) -> list[Message]:
    """Send a Reply as one or more HTML messages; the keyboard goes on the last one."""
    assistant = services(context).assistant
    labels = {c: assistant.kb.clause_label(c) for c in reply.clauses if c in assistant.kb.clauses}
    markup = keyboard(reply, labels, question_id)
    text = f"{note}\n\n{reply.text}" if note else reply.text
    pieces = split_text(text)
    sent = []
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        sent.append(await context.bot.send_message(
            chat_id,
            render_html(piece),
            reply_markup=markup if last else None,
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and n == 0 else None,
        ))
    return sent


@contextlib.asynccontextmanager
async def typing_after(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> AsyncIterator[None]:
    """Show "typing" if the block is still running after settings.typing_delay_ms.

    A quick answer sends nothing extra (Telegram asks bots to use chat actions only
    when a reply takes noticeable time); a slow one, e.g. a reply waiting for the
    rate limiter or a document being generated, shows the user that work goes on.
    """
    delay = services(context).settings.typing_delay_ms / 1000

    async def keep_typing() -> None:
        await asyncio.sleep(delay)
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(4.5)  # the indicator lasts 5 s

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
