"""👍 / 👎 under an answer: recorded against the question's log row, acknowledged,
and the two buttons removed so a rating is given once."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from handlers.common import FEEDBACK_PREFIX, Services, services, user_hash

log = logging.getLogger(__name__)
THANKS = {1: "感谢您的评价！", -1: "感谢反馈，我们会改进这条回答。"}
MARK = {1: "（您的评价：👍 有帮助）", -1: "（您的评价：👎 没帮助）"}


def _without_feedback(markup: InlineKeyboardMarkup | None) -> InlineKeyboardMarkup | None:
    if markup is None:
        return None
    rows = [row for row in markup.inline_keyboard
            if not any(str(b.callback_data or "").startswith(FEEDBACK_PREFIX + ":") for b in row)]
    return InlineKeyboardMarkup(rows) if rows else None


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    try:
        _, rating_text, question_id, faq_id = query.data.split(":", 3)
        rating = int(rating_text)
        services(context).store.log_feedback(
            user_hash=user_hash(context, update), rating=rating,
            question_id=int(question_id), faq_id=faq_id or None,
        )
    except ValueError:
        log.warning("malformed feedback data %r", query.data)
        await query.answer()
        return
    await query.answer(THANKS[rating])
    message = query.message
    if message is None or not getattr(message, "text", None):
        return
    try:
        await query.edit_message_text(
            f"{message.text_html}\n\n<i>{MARK[rating]}</i>", reply_markup=_without_feedback(message.reply_markup),
        )
    except BadRequest as exc:  # e.g. the message is too old to edit; the rating is stored anyway
        log.info("feedback acknowledged without edit: %s", exc)


def register(application: Application, deps: Services) -> None:
    application.add_handler(CallbackQueryHandler(on_feedback, pattern=rf"^{FEEDBACK_PREFIX}:"))
