"""Staff teach the assistant from the chat: buttons under /unanswered, and /learned.

Under each group of unanswered questions (sent after /unanswered's summary):
归入「<entry question>」 for up to three suggested entries, 通知未涉及 (asks for a
one-line answer, previews it, then saves) and 忽略. A change that would pull another
entry's own phrasing away is shown as a warning with 仍然保存 / 取消 first.
/learned lists recent changes, each with 撤销. The work is knowledge/learning's;
this module only talks to Telegram.

Button data (well under Telegram's 64 bytes): "lrn:a:<group id>:<n>" accept
suggestion n, "lrn:n:<group id>" not covered, "lrn:i:<group id>" ignore,
"lrn:s|f|x:<token>" save / save despite the warning / cancel a pending change,
"lrn:u:<record id>" undo. Groups are kept in the store's sessions (they outlive a
restart); pending changes only in memory. Only staff (ADMIN_IDS, private chat)
can press any of them: a press from anyone else is answered and changes nothing.
"""

from __future__ import annotations

import html
import logging
import secrets
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from handlers.common import Services, services, split_text
from handlers.staff import StaffOnly, _guarded
from knowledge.errors import KnowledgeError
from knowledge.learning import records, teach
from knowledge.learning.suggestions import Card, describe_card, handled_keys
from knowledge.staff.unanswered import key

log = logging.getLogger(__name__)

PREFIX = "lrn"
CARDS = 5            # groups sent with buttons after the /unanswered summary
LEARNED_SHOWN = 10   # records listed by /learned
LABEL_CHARS = 24     # of an entry's question on a button
GROUP_KIND = "learning_group"
GROUP_MAX_AGE = timedelta(days=30)
PENDING_KEY = "learning_pending"  # bot_data: token -> pending change
WAITING_KEY = "learning_waiting"  # bot_data: the filter holding who is typing a not-covered answer
CANCEL_WORDS = {"取消", "算了", "cancel"}

ASK_ANSWER = ("请用一句话说明通知没有写的内容，例如：“通知没有规定……，请以省联席会议办公室的答复为准。”\n"
              "直接发送即可（不超过 300 字），发送“取消”放弃。用户问到以下问题时将看到这句话：\n{example}")
STALE = "这组提问已失效，请重新发送 /unanswered。"
DONE_ALREADY = "这组提问已经处理过了（见 /learned）。"


class Waiting(filters.MessageFilter):
    """True for a message from a staff member who was asked for a not-covered answer."""

    def __init__(self) -> None:
        super().__init__(name="LearningWaiting")
        self.groups: dict[int, str] = {}  # user id -> group id

    def filter(self, message: Message) -> bool:
        return bool(message.from_user and message.from_user.id in self.groups)


# -- helpers ---------------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _by(context: ContextTypes.DEFAULT_TYPE, update: Update) -> str:
    """Who, as the store's salted hash: learned.yaml never holds a Telegram id."""
    return services(context).store.user_hash(update.effective_user.id)


def _pending(context: ContextTypes.DEFAULT_TYPE) -> dict[str, dict[str, Any]]:
    return context.bot_data.setdefault(PENDING_KEY, {})


def _save_card(deps: Services, card: Card) -> None:
    deps.store.save_session(f"{PREFIX}:{card.gid}", GROUP_KIND, card.to_state())


def _load_card(deps: Services, gid: str) -> Card | None:
    state = deps.store.load_session(f"{PREFIX}:{gid}", GROUP_KIND, GROUP_MAX_AGE)
    return Card.from_state(state) if state else None


def card_keyboard(card: Card) -> InlineKeyboardMarkup:
    rows = []
    for n, s in enumerate(card.suggestions):
        question = s.question if len(s.question) <= LABEL_CHARS else s.question[:LABEL_CHARS - 1] + "…"
        rows.append([InlineKeyboardButton(f"归入「{question}」", callback_data=f"{PREFIX}:a:{card.gid}:{n}")])
    rows.append([InlineKeyboardButton("通知未涉及", callback_data=f"{PREFIX}:n:{card.gid}"),
                 InlineKeyboardButton("忽略", callback_data=f"{PREFIX}:i:{card.gid}")])
    return InlineKeyboardMarkup(rows)


def _confirm_keyboard(token: str, save_label: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(save_label, callback_data=f"{PREFIX}:{token}"),
                                  InlineKeyboardButton("取消", callback_data=f"{PREFIX}:x:{token.split(':')[-1]}")]])


async def _edit(message: Message | None, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    if message is None:
        return
    try:
        await message.edit_text(_esc(text), reply_markup=markup)
    except BadRequest as exc:  # too old, or unchanged: the staff member got the callback answer anyway
        log.info("learning message not edited: %s", exc)


async def send_cards(context: ContextTypes.DEFAULT_TYPE, chat_id: int, cards: list[Card]) -> None:
    """One message per group with its buttons (called by /unanswered after its summary)."""
    deps = services(context)
    for number, card in enumerate(cards, 1):
        _save_card(deps, card)
        await context.bot.send_message(chat_id, _esc(describe_card(card, number, deps.assistant.kb)),
                                       reply_markup=card_keyboard(card))


async def _apply(update: Update, context: ContextTypes.DEFAULT_TYPE, change: records.Change, *, check: bool,
                 heading: str) -> None:
    """Save a change (or show its conflicts) and report on the pressed message."""
    query = update.callback_query
    deps = services(context)
    try:
        result = teach.propose(deps.assistant, change, check=check)
    except KnowledgeError as exc:
        await query.answer("未保存：知识库文件有错误", show_alert=True)
        await context.bot.send_message(update.effective_chat.id, _esc(f"❌ 未保存，知识库文件有错误：{exc}"))
        return
    except Exception as exc:  # e.g. learned.yaml not writable: say so; the assistant is as before
        log.exception("learning: saving failed")
        await query.answer("未保存", show_alert=True)
        await context.bot.send_message(update.effective_chat.id, _esc(f"❌ 未保存：{type(exc).__name__}: {exc}"))
        return
    if not result.saved:
        token = secrets.token_hex(4)
        _pending(context)[token] = {"change": change, "heading": heading}
        await query.answer("有冲突，请确认")
        await _edit(query.message, f"{heading}\n\n{teach.conflict_text(result)}", _confirm_keyboard(f"f:{token}", "仍然保存"))
        return
    await query.answer("已保存")
    await _edit(query.message, f"{heading}\n\n{teach.saved_text(result, deps.assistant.kb)}")


# -- the buttons --------------------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        await _on_button(update, context)
    except KnowledgeError as exc:  # learned.yaml broken by a hand edit since the last load
        await update.callback_query.answer("知识库文件有错误", show_alert=True)
        await context.bot.send_message(update.effective_chat.id, _esc(f"❌ 未处理，知识库文件有错误：{exc}"))


async def _on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    deps = services(context)
    parts = query.data.split(":")
    action, arg = (parts + ["", ""])[1:3]
    if action in ("a", "n", "i"):
        card = _load_card(deps, arg)
        if card is None:
            await query.answer(STALE, show_alert=True)
            return
        if {key(t) for t in card.texts} <= handled_keys(records.read(deps.assistant.kb.source_dir)):
            await query.answer(DONE_ALREADY, show_alert=True)
            return
        heading = query.message.text if query.message and query.message.text else card.example
        if action == "a":
            n = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else -1
            if not 0 <= n < len(card.suggestions) or card.suggestions[n].entry_id not in deps.assistant.kb.entries:
                await query.answer(STALE, show_alert=True)
                return
            change = teach.phrasings_change(deps.assistant, card, card.suggestions[n].entry_id, _by(context, update))
            await _apply(update, context, change, check=True, heading=heading)
        elif action == "i":
            await _apply(update, context, teach.ignore_change(deps.assistant, card, _by(context, update)), check=False,
                         heading=heading)
        else:
            context.bot_data[WAITING_KEY].groups[update.effective_user.id] = card.gid
            await query.answer()
            await context.bot.send_message(update.effective_chat.id, _esc(ASK_ANSWER.format(example=card.example)))
        return
    if action in ("s", "f", "x"):
        pending = _pending(context).pop(arg, None)
        if pending is None:
            await query.answer("这项操作已失效，请重新发送 /unanswered。", show_alert=True)
            return
        if action == "x":
            await query.answer("已取消")
            await _edit(query.message, f"{pending['heading']}\n\n已取消，没有保存。")
            return
        await _apply(update, context, pending["change"], check=action == "s", heading=pending["heading"])
        return
    if action == "u":
        await _undo(update, context, arg)
        return
    await query.answer()


async def on_answer_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The staff member's one-line not-covered answer: preview it before saving."""
    deps = services(context)
    waiting: Waiting = context.bot_data[WAITING_KEY]
    user_id = update.effective_user.id
    chat_id = update.effective_chat.id
    text = update.effective_message.text or ""
    if text.strip().lower() in CANCEL_WORDS:
        waiting.groups.pop(user_id, None)
        await context.bot.send_message(chat_id, "已取消，没有保存。")
        return
    card = _load_card(deps, waiting.groups.get(user_id, ""))
    if card is None:
        waiting.groups.pop(user_id, None)
        await context.bot.send_message(chat_id, STALE)
        return
    try:
        change = teach.not_covered_change(deps.assistant, card, text, _by(context, update))
    except ValueError as exc:
        await context.bot.send_message(chat_id, _esc(f"{exc}发送“取消”放弃。"))
        return
    waiting.groups.pop(user_id, None)
    token = secrets.token_hex(4)
    heading = f"“通知未涉及”：{card.example}"
    _pending(context)[token] = {"change": change, "heading": heading}
    contact = deps.assistant.kb.meta.contact
    shown = change.answer.replace("{{", "{").replace("}}", "}")
    preview = (f"预览：用户问“{card.example}”（及同组 {len(card.texts)} 种问法）时将看到：\n\n{shown}\n"
               f"（后面自动附上联系人 {contact.person}、电话 {contact.phone}）\n\n保存吗？")
    await context.bot.send_message(chat_id, _esc(preview), reply_markup=_confirm_keyboard(f"s:{token}", "保存"))


async def on_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.bot_data[WAITING_KEY].groups.pop(update.effective_user.id, None)
    await context.bot.send_message(update.effective_chat.id, "已取消，没有保存。")


# -- /learned and 撤销 ---------------------------------------------------------------------------------


def _learned_view(deps: Services) -> tuple[str, InlineKeyboardMarkup | None]:
    changes = teach.recent(deps.assistant, LEARNED_SHOWN)
    if not changes:
        return "还没有采纳过任何内容。在 /unanswered 中点按钮即可教会助手。", None
    kb = deps.assistant.kb
    lines = [f"📚 最近采纳的内容（新的在前，共显示 {len(changes)} 条；文件：{records.LEARNED_FILE}）"]
    lines += [f"{n}. {teach.describe(c, kb)}" for n, c in enumerate(changes, 1)]
    buttons = [InlineKeyboardButton(f"撤销 {n}", callback_data=f"{PREFIX}:u:{c.id}") for n, c in enumerate(changes, 1)]
    return "\n".join(lines), InlineKeyboardMarkup([buttons[i:i + 5] for i in range(0, len(buttons), 5)])


async def learned_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    deps = services(context)
    try:
        text, markup = _learned_view(deps)
    except KnowledgeError as exc:
        await context.bot.send_message(update.effective_chat.id, _esc(f"❌ {records.LEARNED_FILE} 有错误：{exc}"))
        return
    pieces = split_text(text)
    for n, piece in enumerate(pieces):
        await context.bot.send_message(update.effective_chat.id, _esc(piece),
                                       reply_markup=markup if n == len(pieces) - 1 else None)


async def _undo(update: Update, context: ContextTypes.DEFAULT_TYPE, change_id: str) -> None:
    query = update.callback_query
    deps = services(context)
    try:
        gone = teach.undo(deps.assistant, change_id)
    except KeyError:
        await query.answer("这条记录已经不在了（可能已撤销）。", show_alert=True)
        return
    except Exception as exc:  # KnowledgeError: the rest would not load (named); OSError: not writable
        if not isinstance(exc, KnowledgeError):
            log.exception("learning: undo failed")
        await query.answer("无法撤销", show_alert=True)
        await context.bot.send_message(update.effective_chat.id, _esc(f"❌ 无法撤销：{exc}"))
        return
    await query.answer("已撤销")
    await context.bot.send_message(
        update.effective_chat.id,
        _esc(f"↩️ 已撤销：{teach.describe(gone, deps.assistant.kb)}\n这些提问将重新出现在 /unanswered 中。"))
    text, markup = _learned_view(deps)
    await _edit(query.message, text, markup)


# -- wiring ------------------------------------------------------------------------------------------------


def register(application: Application, deps: Services) -> None:
    """Registered before the free-text handler, so a not-covered answer is not taken as a question."""
    staff = StaffOnly(deps.settings.admin_ids)
    waiting = application.bot_data.setdefault(WAITING_KEY, Waiting())
    messages = staff & filters.UpdateType.MESSAGE
    application.add_handlers([
        CommandHandler("learned", learned_command, filters=messages),
        CommandHandler("cancel", on_cancel, filters=messages & waiting),
        MessageHandler(messages & waiting & filters.TEXT & ~filters.COMMAND, on_answer_text),
        CallbackQueryHandler(_guarded(staff, on_button), pattern=rf"^{PREFIX}:"),
    ])
