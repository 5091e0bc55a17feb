"""Staff commands: /stats [days], /unanswered [days], /reload, /broadcast <text>.
(/unanswered's buttons and /learned are handlers/learning.py's.)

Who is staff is decided in one place, `StaffOnly`: a Telegram user id listed in
ADMIN_IDS, writing in a private chat (figures never land in a group). The staff
commands are registered with that filter, so for anyone else they do not exist:
the update falls through to `UnclaimedCommandHandler`, the reply to every command
no handler takes, and gets exactly what `/nosuchcommand` gets. Nothing says the
command exists.

Also here: the daily retention purge of the logs (at start, then every day).
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
    filters,
)

from handlers import subscriptions
from handlers.common import Services, services, split_text
from knowledge.errors import KnowledgeError
from knowledge.learning import records, suggestions
from knowledge.staff import chart, stats, unanswered
from knowledge.staff.broadcast import announcement

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase

log = logging.getLogger(__name__)

UNKNOWN_COMMAND = "抱歉，没有这个命令。请直接输入您的问题，或发送 /help 查看可用的命令。"
UNCLAIMED_GROUP = 100  # after every other handler group: it answers only what none of them took
DEFAULT_STATS_DAYS = 7
DEFAULT_UNANSWERED_DAYS = 30
MAX_DAYS = 366
BROADCAST_PREFIX = "bc"
PENDING_KEY = "broadcast_pending"   # user_data: the preview awaiting 确认发送
RUNNING_KEY = "broadcast_running"   # bot_data: one delivery at a time
PURGE_JOB = "retention-purge"

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


# -- who may: the one check ------------------------------------------------------------------


class StaffOnly(filters.UpdateFilter):
    """True for a staff member (user id in ADMIN_IDS) in a private chat. Every staff
    handler goes through this filter; nothing else decides access."""

    def __init__(self, admin_ids: Iterable[int]) -> None:
        super().__init__(name="StaffOnly")
        self.admin_ids = frozenset(admin_ids)

    def filter(self, update: Update) -> bool:
        user, chat = update.effective_user, update.effective_chat
        return bool(user and chat and chat.type == "private" and user.id in self.admin_ids)


# -- commands nobody handles (including staff commands from non-staff) ----------------------


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await context.bot.send_message(update.effective_chat.id, UNKNOWN_COMMAND)


class UnclaimedCommandHandler(BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]):
    """A /command that no handler in any group >= 0 accepts: in a private chat, or
    addressed to this bot by name in a group (other bots' commands are not ours).
    Asking the other handlers themselves keeps this correct whatever modules are
    registered, in whatever order."""

    def __init__(self, application: Application, callback: Callable[..., Awaitable[None]] = unknown_command) -> None:
        super().__init__(callback)
        self.application = application

    def check_update(self, update: object) -> bool:
        if not isinstance(update, Update) or update.message is None:
            return False
        message = update.message
        first = message.entities[0] if message.entities else None
        if first is None or first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
            return False
        _, _, target = message.parse_entity(first).partition("@")
        if target and target.lower() != (self.application.bot.username or "").lower():
            return False
        if message.chat.type != "private" and not target:
            return False
        for group, handlers in self.application.handlers.items():
            if group < 0:  # the flood gate sees everything and claims nothing
                continue
            for handler in handlers:
                if handler is self or isinstance(handler, TypeHandler):
                    continue
                if handler.check_update(update) not in (None, False):
                    return False
        return True


# -- helpers ----------------------------------------------------------------------------------


async def _send_text(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, **kwargs: Any) -> None:
    """Plain text, escaped, cut to Telegram's message size; kwargs go with the last piece."""
    pieces = [html.escape(p, quote=False) for p in split_text(text)]
    for n, piece in enumerate(pieces):
        await context.bot.send_message(chat_id, piece, **(kwargs if n == len(pieces) - 1 else {}))


def _days(context: ContextTypes.DEFAULT_TYPE, default: int) -> int | None:
    if not context.args:
        return default
    try:
        days = int(context.args[0])
    except ValueError:
        return None
    return days if 1 <= days <= MAX_DAYS else None


# -- /stats /unanswered ----------------------------------------------------------------------


async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = update.effective_chat.id
    days = _days(context, DEFAULT_STATS_DAYS)
    if days is None:
        await context.bot.send_message(chat_id, f"用法：/stats [天数]，天数为 1-{MAX_DAYS}，默认 {DEFAULT_STATS_DAYS}。")
        return
    deps = services(context)
    figures = stats.compute(deps.store, days)
    try:
        changes = records.read(deps.assistant.kb.source_dir)
    except KnowledgeError:  # reported where it matters: /learned, /reload, kb check
        changes = []
    learned = stats.learned_figures(deps.store, [(c.when, c.texts) for c in changes if c.kind != "ignored"])
    await _send_text(context, chat_id, stats.format_report(figures, deps.assistant.kb, learned))
    # matplotlib takes a few hundred ms: off the event loop (the object API is thread-safe).
    png = await asyncio.to_thread(chart.daily_chart_png, figures)
    await context.bot.send_photo(chat_id, InputFile(png, filename="stats.png"),
                                 caption=f"每日提问量（按结果），最近 {days} 天")


async def unanswered_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = update.effective_chat.id
    days = _days(context, DEFAULT_UNANSWERED_DAYS)
    if days is None:
        await context.bot.send_message(
            chat_id, f"用法：/unanswered [天数]，天数为 1-{MAX_DAYS}，默认 {DEFAULT_UNANSWERED_DAYS}。")
        return
    from handlers import learning  # (it builds on this module)

    deps = services(context)
    try:
        handled = records.read(deps.assistant.kb.source_dir)
    except KnowledgeError:
        handled = []
    # Questions staff already decided on (learned.yaml) are not shown again.
    asked = suggestions.not_handled(unanswered.collect(deps.store, days), handled)
    # Words via the engine here (its index is this thread's SQLite connection); the
    # grouping itself, quadratic in distinct questions, in a worker thread.
    prepared = unanswered.prepare(asked, deps.assistant.index.tokens)
    groups = await asyncio.to_thread(unanswered.cluster, prepared)
    await _send_text(context, chat_id, unanswered.format_groups(groups, days))
    # Then the biggest groups one by one, each with suggested entries and buttons.
    await learning.send_cards(context, chat_id, suggestions.cards(deps.assistant, groups, learning.CARDS))


# -- /reload ------------------------------------------------------------------------------------


def _changes(old: KnowledgeBase, new: KnowledgeBase) -> str:
    added = sorted(set(new.entries) - set(old.entries))
    removed = sorted(set(old.entries) - set(new.entries))
    changed = sorted(i for i in set(old.entries) & set(new.entries) if old.entries[i] != new.entries[i])
    if new.content_hash == old.content_hash:
        return "内容与当前版本相同。"
    parts = [f"{label} {len(ids)} 个" + (f"（{'、'.join(ids[:5])}{'…' if len(ids) > 5 else ''}）" if ids else "")
             for label, ids in (("新增", added), ("删除", removed), ("修改", changed))]
    return "条目" + "，".join(parts) + "。"


async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Validate and load the YAML again; swap the assistant only when that succeeded."""
    from knowledge.assistant import Assistant

    chat_id = update.effective_chat.id
    deps = services(context)
    old = deps.assistant
    try:
        # On the event loop on purpose: the index's SQLite connection must be made in the
        # thread that uses it, and no question is answered half by the old index, half by
        # the new one while it is rebuilt.
        new = Assistant.load(deps.settings.index_path, old.kb.source_dir, old.today)
    except KnowledgeError as exc:
        await _send_text(context, chat_id, f"❌ 知识库有错误，未更新，仍在使用原来的版本。\n{exc}")
        return
    except Exception as exc:  # e.g. the index file is not writable: same promise, keep serving
        log.exception("reload failed")
        await _send_text(context, chat_id, f"❌ 重新加载失败，仍在使用原来的版本：{type(exc).__name__}: {exc}")
        return
    deps.assistant = new
    due = subscriptions.schedule_reminder(context.application, deps)  # the deadline may have changed
    covered = sum(e.covered for e in new.kb.entries.values())
    text = (f"✅ 知识库已重新加载：{len(new.kb.entries)} 个条目（{covered} 个问答，"
            f"{len(new.kb.entries) - covered} 个“通知未涉及”）。{_changes(old.kb, new.kb)}")
    if due is not None:
        text += f"\n截止提醒将于 {due:%Y-%m-%d %H:%M}（北京时间）发送。"
    await _send_text(context, chat_id, text)


# -- /broadcast ----------------------------------------------------------------------------------


def _broadcast_text(update: Update) -> str:
    """The text after the command, line breaks kept (context.args would lose them)."""
    text = update.effective_message.text or ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


async def broadcast_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = update.effective_chat.id
    text = _broadcast_text(update)
    if not text:
        await context.bot.send_message(chat_id, "用法：/broadcast 通知内容（可以换行）。发送前会先给您预览。")
        return
    message = announcement(text)
    if len(split_text(message)) > 1:
        await context.bot.send_message(chat_id, "通知太长，超过一条 Telegram 消息的长度，请缩短后再发。")
        return
    token = secrets.token_hex(4)
    context.user_data[PENDING_KEY] = {"token": token, "text": message}
    count = services(context).store.subscriber_counts()["active"]
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton("确认发送", callback_data=f"{BROADCAST_PREFIX}:ok:{token}"),
        InlineKeyboardButton("取消", callback_data=f"{BROADCAST_PREFIX}:no:{token}"),
    ]])
    await context.bot.send_message(
        chat_id,
        f"<b>预览</b>（将发送给 {count} 位订阅者）：\n\n{html.escape(message, quote=False)}",
        reply_markup=keyboard,
    )


async def _edit(query: CallbackQuery, text: str) -> None:
    try:
        await query.edit_message_text(text)
    except BadRequest as exc:  # too old to edit, or unchanged: the outcome is reported anyway
        log.info("broadcast preview not edited: %s", exc)


async def _deliver_and_report(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str) -> None:
    deps = services(context)
    try:
        report = await subscriptions.deliver(context.bot, deps.store, text)
    finally:
        context.bot_data.pop(RUNNING_KEY, None)
    await context.bot.send_message(chat_id, report.text())


async def broadcast_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    _, action, token = (query.data.split(":", 2) + ["", ""])[:3]
    pending = context.user_data.get(PENDING_KEY)
    if not pending or pending["token"] != token:
        await query.answer("这个预览已失效，请重新发送 /broadcast。", show_alert=True)
        return
    if action != "ok":
        context.user_data.pop(PENDING_KEY, None)
        await query.answer("已取消")
        await _edit(query, "已取消，通知没有发送。")
        return
    if context.bot_data.get(RUNNING_KEY):
        await query.answer("上一条通知还在发送中，请等它发完再确认。", show_alert=True)
        return
    context.user_data.pop(PENDING_KEY, None)  # a second press cannot send it twice
    context.bot_data[RUNNING_KEY] = True
    count = services(context).store.subscriber_counts()["active"]
    await query.answer("开始发送")
    await _edit(query, f"正在发送给 {count} 位订阅者……完成后会发送报告。\n\n"
                       f"{html.escape(pending['text'], quote=False)}")
    # In the background: a long delivery must not hold this update (or the staff member) up.
    context.application.create_task(
        _deliver_and_report(context, update.effective_chat.id, pending["text"]), update=update)


# -- retention ------------------------------------------------------------------------------------


async def purge_logs(context: ContextTypes.DEFAULT_TYPE) -> None:
    deps = services(context)
    # Queued to the writer (it logs the count); finished self-checks go once expired.
    deps.store.purge_older_than(deps.settings.retention_days,
                                sessions_idle=timedelta(hours=deps.settings.selfcheck_ttl_hours))


# -- wiring -----------------------------------------------------------------------------------------


def register(application: Application, deps: Services) -> None:
    staff = StaffOnly(deps.settings.admin_ids)
    only = staff & filters.UpdateType.MESSAGE  # an edited /broadcast must not preview twice
    application.add_handlers([
        CommandHandler("stats", stats_command, filters=only),
        CommandHandler("unanswered", unanswered_command, filters=only),
        CommandHandler("reload", reload_command, filters=only),
        CommandHandler("broadcast", broadcast_command, filters=only),
        CallbackQueryHandler(_guarded(staff, broadcast_button), pattern=rf"^{BROADCAST_PREFIX}:"),
    ])
    application.add_handler(UnclaimedCommandHandler(application), group=UNCLAIMED_GROUP)
    if application.job_queue is not None:
        application.job_queue.run_repeating(purge_logs, interval=timedelta(days=1), first=0, name=PURGE_JOB)


def _guarded(staff: StaffOnly, callback: Handler) -> Handler:
    """Buttons cannot carry a filter: the same StaffOnly check, applied to the callback."""
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not staff.filter(update):  # (check_update would refuse any non-message update)
            await update.callback_query.answer()
            return
        await callback(update, context)
    return guarded
