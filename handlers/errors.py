"""The error handler: log the failure (never the token), apologise if we can, carry on.

A press gets its apology as a message in the chat: the press may have been
answered already (its spinner stopped), and a second answer is refused by
Telegram. Only without a chat (an inline-mode message) is the apology a toast.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from handlers.common import Services

log = logging.getLogger(__name__)
APOLOGY = "抱歉，处理您的消息时出了点问题，请稍后再试。"
UNKNOWN_BUTTON = "这个按钮已失效，请发送 /start 重新开始。"


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    kind = type(update).__name__ if update is not None else "no update"
    log.error("error while handling %s", kind, exc_info=context.error)
    if not isinstance(update, Update):
        return
    query = update.callback_query
    with contextlib.suppress(TelegramError):  # the apology must not fail in turn
        if query is not None:
            if update.effective_chat is None:
                await query.answer(APOLOGY)
                return
            with contextlib.suppress(TelegramError):
                await query.answer()  # stop the spinner, if nothing did
        if update.effective_chat is not None and (query is not None or update.effective_message is not None):
            await context.bot.send_message(update.effective_chat.id, APOLOGY)


async def on_unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press no handler claimed (old keyboards, forged data): answered, never left spinning."""
    await update.callback_query.answer(UNKNOWN_BUTTON)


def register(application: Application, deps: Services) -> None:
    # Last in group 0: only presses that no other handler matched reach it.
    application.add_handler(CallbackQueryHandler(on_unknown_button))
    application.add_error_handler(on_error)
