"""Commands (/start /help /faq /check /deadline /contact /cancel), the start-menu
buttons ("cmd:<name>") and the /faq menu (topics -> questions, with 返回)."""

from __future__ import annotations

import html

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from handlers import selfcheck
from handlers.common import Services, send_reply, services

# Shown in Telegram's command menu (set_my_commands at start-up).
BOT_COMMANDS = (
    BotCommand("start", "开始：功能介绍"),
    BotCommand("faq", "常见问题（按主题浏览）"),
    BotCommand("check", "资格自测"),
    BotCommand("deadline", "申报截止时间"),
    BotCommand("contact", "联系方式"),
    BotCommand("subscribe", "订阅通知公告和截止提醒"),
    BotCommand("unsubscribe", "取消订阅"),
    BotCommand("help", "使用帮助"),
    BotCommand("cancel", "退出当前操作"),
)
FAQ_TITLE = "常见问题：请选择主题"
# Telegram's words for a message that can no longer be edited.
GONE = ("message to edit not found", "message can't be edited")
BACK = "« 返回"


async def check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/check, /start check and the 资格自测 button: all go to the self-check's one entry point
    (looked up at call time, so the self-check module can be swapped without touching this)."""
    await selfcheck.start_selfcheck(update, context)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if context.args and context.args[0] == "check":  # deep link t.me/<bot>?start=check
        await check(update, context)
        return
    await send_reply(context, update.effective_chat.id, services(context).assistant.welcome())


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_reply(context, update.effective_chat.id, services(context).assistant.help())


async def deadline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_reply(context, update.effective_chat.id, services(context).assistant.deadline())


async def contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_reply(context, update.effective_chat.id, services(context).assistant.contact())


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    had_choices = context.user_data.pop("choices", None) is not None
    stopped = await selfcheck.cancel_selfcheck(update, context)
    text = "已退出当前操作。" if stopped or had_choices else "当前没有进行中的操作。"
    await context.bot.send_message(update.effective_chat.id, text + "有问题可直接输入。")


# -- /faq menu -------------------------------------------------------------------


def topics_menu(context: ContextTypes.DEFAULT_TYPE) -> InlineKeyboardMarkup:
    topics = services(context).assistant.topics()
    buttons = [InlineKeyboardButton(name, callback_data=f"topic:{tid}") for tid, name in topics]
    return InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)])


def questions_menu(context: ContextTypes.DEFAULT_TYPE, topic_id: str) -> tuple[str, InlineKeyboardMarkup]:
    assistant = services(context).assistant
    name = dict(assistant.topics()).get(topic_id, "常见问题")
    rows = [[InlineKeyboardButton(q, callback_data=f"ask:{fid}")] for fid, q in assistant.topic_questions(topic_id)]
    rows.append([InlineKeyboardButton(BACK, callback_data="topics")])
    return f"<b>{html.escape(name)}</b>\n请选择问题：", InlineKeyboardMarkup(rows)


async def faq(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await context.bot.send_message(update.effective_chat.id, FAQ_TITLE, reply_markup=topics_menu(context))


async def on_topic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    if query.data == "topics":
        text, markup = FAQ_TITLE, topics_menu(context)
    else:
        text, markup = questions_menu(context, query.data.removeprefix("topic:"))
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        reason = str(exc).lower()
        if "not modified" in reason:  # pressed twice: harmless
            return
        if update.effective_chat is None or not any(s in reason for s in GONE):
            raise
        # The menu's message was deleted or is too old to edit: show the menu afresh.
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)


# -- start-menu buttons ------------------------------------------------------------

_ACTIONS = {
    "faq": faq,
    "check": check,
    "deadline": deadline,
    "contact": contact,
    "help": help_command,
}


NO_CHAT = "请在与我的对话中使用这个按钮：打开机器人，发送 /start。"


async def on_command_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if update.effective_chat is None:  # a button under an inline-mode message: no chat to answer in
        await query.answer(NO_CHAT, show_alert=True)
        return
    await query.answer()
    await _ACTIONS.get(query.data.removeprefix("cmd:"), help_command)(update, context)


def register(application: Application, deps: Services) -> None:
    application.add_handlers([
        CommandHandler("start", start),
        CommandHandler("help", help_command),
        CommandHandler("faq", faq),
        CommandHandler("check", check),
        CommandHandler("deadline", deadline),
        CommandHandler("contact", contact),
        CommandHandler("cancel", cancel),
        CallbackQueryHandler(on_command_button, pattern=r"^cmd:"),
        CallbackQueryHandler(on_topic, pattern=r"^(topic:|topics$)"),
    ])
