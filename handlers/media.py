"""Anything that is not text (sticker, photo, voice, file, location, contact …):
a polite "please use words", with the start buttons."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from handlers.common import Services, send_reply
from knowledge.answering.compose import START_BUTTONS
from knowledge.reply import Outcome, Reply

TEXT_ONLY = Reply("抱歉，我只能读懂文字。请用文字提问，例如“申报截止时间是什么时候？”，或点下方按钮。",
                  Outcome.SMALLTALK, 1.0, buttons=START_BUTTONS)


class _RepliesToBot(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        reply_to = message.reply_to_message
        return bool(reply_to and reply_to.from_user and reply_to.from_user.id == message.get_bot().id)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_reply(context, update.effective_chat.id, TEXT_ONLY)


def register(application: Application, deps: Services) -> None:
    # In groups only when sent in reply to the bot: other members' photos are not for us.
    wanted = filters.ChatType.PRIVATE | _RepliesToBot()
    application.add_handler(MessageHandler(
        filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL & wanted, on_non_text))
