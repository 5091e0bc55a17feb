"""Inline mode: "@bot 截止" in any chat offers matching answers to share, each with its citation."""

from __future__ import annotations

from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.constants import InlineQueryResultLimit, ParseMode
from telegram.ext import Application, ContextTypes, InlineQueryHandler

from handlers.common import Services, render_html, services
from knowledge.reply import Reply

MAX_RESULTS = 5
CACHE_SECONDS = 300  # answers only change when the knowledge base does


def _article(result_id: str, title: str, reply: Reply) -> InlineQueryResultArticle:
    first_line = reply.text.split("\n", 1)[0]
    return InlineQueryResultArticle(
        id=result_id[:InlineQueryResultLimit.MAX_ID_LENGTH],
        title=title,
        description=first_line[:100],
        input_message_content=InputTextMessageContent(render_html(reply.text), parse_mode=ParseMode.HTML),
    )


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Partial queries arrive on every keystroke, so they are not logged as questions."""
    assistant = services(context).assistant
    query = update.inline_query.query.strip()
    if query:
        results = [_article(r.faq_id or str(n), assistant.kb.entries[r.faq_id].question if r.faq_id else query, r)
                   for n, r in enumerate(assistant.search(query, limit=MAX_RESULTS))]
    else:  # nothing typed yet: the two things people share most
        results = [_article("deadline", "申报截止时间", assistant.deadline()),
                   _article("contact", "联系方式", assistant.contact())]
    await update.inline_query.answer(results, cache_time=CACHE_SECONDS, is_personal=False)


def register(application: Application, deps: Services) -> None:
    application.add_handler(InlineQueryHandler(on_inline_query))
