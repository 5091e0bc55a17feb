"""Any text is a question: ask the engine, log it, send its reply with buttons.

Also the buttons a reply carries: "ask:<faq_id>" (a related question or an
ambiguity candidate) and "clause:<id>" (查看原文).
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import replace

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from handlers.common import (
    ADDRESSED,
    Services,
    chat_type,
    send_reply,
    services,
    strip_mention,
    typing_after,
    user_hash,
)
from knowledge.assistant import MAX_QUESTION_CHARS
from knowledge.reply import Outcome, Reply

LONG_NOTE = f"（您的消息较长，以下根据前 {MAX_QUESTION_CHARS} 字作答。）"
CHOICES_KEY = "choices"  # user_data: the candidates of the last ambiguous reply, for "回复序号"


def log_question(context: ContextTypes.DEFAULT_TYPE, update: Update, text: str, reply: Reply, started: float) -> int:
    """One row per question: hashed user, chat type, text, match, confidence, outcome, latency."""
    return services(context).store.log_question(
        user_hash=user_hash(context, update), text=text, outcome=reply.outcome.value, faq_id=reply.faq_id,
        confidence=reply.confidence, latency_ms=(time.perf_counter() - started) * 1000,
        chat_type=chat_type(update), channel="telegram",
    )


def _numbered_choice(context: ContextTypes.DEFAULT_TYPE, text: str) -> str | None:
    """"2" right after "您是想问：1. … 2. …" picks the second candidate."""
    choices = context.user_data.get(CHOICES_KEY)
    digit = unicodedata.normalize("NFKC", text).strip().rstrip(".、")
    if choices and digit.isdigit() and 1 <= int(digit) <= len(choices):
        return choices[int(digit) - 1]
    return None


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    started = time.perf_counter()
    message = update.effective_message
    assistant = services(context).assistant
    text = message.text if message.chat.type == "private" else strip_mention(message)
    # In groups, and for an edited question, quote the message being answered.
    quote = message.message_id if (message.chat.type != "private" or update.edited_message) else None
    if not text.strip():  # just "@bot": introduce ourselves
        await send_reply(context, message.chat_id, assistant.welcome(), reply_to=quote)
        return
    async with typing_after(context, message.chat_id):
        choice = _numbered_choice(context, text)
        note = None
        if choice is not None:
            reply = assistant.answer_entry(choice)
        else:
            if len(text) > MAX_QUESTION_CHARS:
                text, note = text[:MAX_QUESTION_CHARS], LONG_NOTE
            reply = assistant.answer(text)
        if reply.outcome is Outcome.AMBIGUOUS:
            context.user_data[CHOICES_KEY] = list(reply.faq_ids)
        else:
            context.user_data.pop(CHOICES_KEY, None)
        question_id = log_question(context, update, text, reply, started)
        await send_reply(context, message.chat_id, reply, question_id=question_id, reply_to=quote, note=note)


async def on_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A question button: answered like the same question typed, and logged as one."""
    started = time.perf_counter()
    query = update.callback_query
    await query.answer()
    if update.effective_chat is None:
        return
    assistant = services(context).assistant
    faq_id = query.data.removeprefix("ask:")
    reply = assistant.answer_entry(faq_id)
    context.user_data.pop(CHOICES_KEY, None)
    entry = assistant.kb.entries.get(faq_id)
    question_id = log_question(context, update, entry.question if entry else faq_id, reply, started)
    await send_reply(context, update.effective_chat.id, reply, question_id=question_id)


async def on_clause(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """查看原文: the cited clause's full text."""
    query = update.callback_query
    await query.answer()
    if update.effective_chat is None:
        return
    reply = services(context).assistant.clause_reply(query.data.removeprefix("clause:"))
    # The clause itself is on screen: no 查看原文 button under it.
    await send_reply(context, update.effective_chat.id, replace(reply, clauses=()))


def register(application: Application, deps: Services) -> None:
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
    application.add_handlers([
        MessageHandler(messages & filters.TEXT & ~filters.COMMAND & ADDRESSED, on_text),
        CallbackQueryHandler(on_ask, pattern=r"^ask:"),
        CallbackQueryHandler(on_clause, pattern=r"^clause:"),
    ])
