"""The error handler: log the failure (never the token), apologise if we can, carry on."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from handlers.common import Services

log = logging.getLogger(__name__)
APOLOGY = "抱歉，处理您的消息时出了点问题，请稍后再试。"


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    kind = type(update).__name__ if update is not None else "no update"
    log.error("error while handling %s", kind, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    with contextlib.suppress(TelegramError):  # the apology must not fail in turn
        if update.callback_query is not None:
            await update.callback_query.answer(APOLOGY)
        elif update.effective_message is not None:
            await context.bot.send_message(update.effective_chat.id, APOLOGY)


def register(application: Application, deps: Services) -> None:
    application.add_error_handler(on_error)
