"""The eligibility self-check in Telegram: a thin adapter over knowledge.selfcheck.flow.

Entry points: `/check`, `/start check` and the 资格自测 button (commands.py) call
start_selfcheck; /cancel calls cancel_selfcheck. One message per interview is
edited as the user advances; its buttons carry callback data

    sc:a:<nonce>:<step>:<option>   an answer
    sc:back:<nonce>:<step>         上一步
    sc:help:<nonce>:<step>         为什么问这个
    sc:restart:<nonce>             重新开始
    sc:quit:<nonce>                退出
    sc:doc:<nonce>                 生成申请书 (asks for the unit's name)
    sc:docnow:<nonce>              不填单位名称，直接生成
    sc:new                         重新自测 (a fresh interview)

The nonce names one interview (new on every start and restart), and the step id
the question a button belongs to, so a button of an old, finished or other
user's interview is answered with a short notice instead of changing anything.

Progress lives in the Store (sessions, kind "selfcheck"), keyed by a salted hash
of chat id and user id (no raw id is stored), so it survives a restart of the bot
and two users never share one. A finished interview is kept for the 申请书 until it
expires (SELFCHECK_TTL_HOURS); the retention purge then deletes it.
Session: {"id": nonce, "phase": "interview" | "unit" | "done", "state": the engine's
state, "msg": the interview message id, "status": the verdict's status once done,
"prompt": the id of the message asking for the unit's name}.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
from datetime import timedelta
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from handlers import questions
from handlers.common import (
    ADDRESSED,
    Services,
    render_html,
    services,
    split_text,
    strip_mention,
    typing_after,
)
from knowledge.selfcheck.application_form import build_application_form
from knowledge.selfcheck.flow import (
    CAUTION,
    ELIGIBLE,
    InvalidAnswer,
    SelfCheck,
    StaleState,
    StepView,
    load_selfcheck,
)
from knowledge.storage.store import Store

log = logging.getLogger(__name__)

KIND = "selfcheck"
PREFIX = "sc"
ENGINE_KEY = "selfcheck"
LOCKS_KEY = "selfcheck_locks"
LOCK_STRIPES = 64

# Phases of a session.
INTERVIEW, UNIT, DONE = "interview", "unit", "done"

# Button labels.
HELP = "❓ 为什么问这个"
BACK = "« 上一步"
RESTART = "🔄 重新开始"
QUIT = "✖ 退出"
DOC = "📝 生成申请书"
DOC_NOW = "不填单位名称，直接生成"
NEW = "🔄 重新自测"

# Texts (answerCallbackQuery notices are at most 200 characters).
STALE = "这个按钮已失效（自测已结束、已过期、已重新开始，或不是您的自测）。发送 /check 可开始新的自测。"
FIRST_STEP = "已经是第一个问题了。"
QUIT_TEXT = "已退出资格自测。可随时发送 /check 重新开始。"
RESUME = "您的资格自测还在进行中，请继续回答："
UNIT_PROMPT = ("请直接输入申报单位（试点承担单位）的名称，将填入申请书；"
               "也可以点下方按钮，不填单位名称，直接生成。")
UNIT_AGAIN = "如需生成申请书，请输入单位名称，或点下方按钮直接生成。"
DOC_CAPTION = "已按您的自测回答预填申请书，其余内容请补全后按通知要求报送。"
DOC_FILENAME = "申请书.docx"
UNIT_NAME_MAX = 60


# -- plumbing -------------------------------------------------------------------------


def engine(context: ContextTypes.DEFAULT_TYPE) -> SelfCheck:
    return context.application.bot_data[ENGINE_KEY]


def session_key(store: Store, chat_id: int, user_id: int) -> str:
    """One interview per user per chat: private chats and groups never share one."""
    return store.session_key(chat_id, user_id)


def _key(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    if update.effective_chat is None or update.effective_user is None:
        return None
    return session_key(services(context).store, update.effective_chat.id, update.effective_user.id)


def _max_age(deps: Services) -> timedelta:
    return timedelta(hours=deps.settings.selfcheck_ttl_hours)


def _load(context: ContextTypes.DEFAULT_TYPE, key: str) -> dict[str, Any] | None:
    deps = services(context)
    session = deps.store.load_session(key, KIND, _max_age(deps))
    return session if isinstance(session, dict) and "id" in session else None


def _save(context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any]) -> None:
    services(context).store.save_session(key, KIND, session)


def _lock(context: ContextTypes.DEFAULT_TYPE, key: str) -> asyncio.Lock:
    """Updates run concurrently: one user's presses are handled one at a time."""
    locks: list[asyncio.Lock] = context.application.bot_data[LOCKS_KEY]
    return locks[hash(key) % len(locks)]


def _record(context: ContextTypes.DEFAULT_TYPE, update: Update, event: str,
            answers: dict[str, Any] | None = None, verdict: str | None = None) -> None:
    user = update.effective_user
    store = services(context).store
    store.record_selfcheck(user_hash=store.user_hash(user.id if user else 0), event=event,
                           answers=answers, verdict=verdict)


def _new_session(sc: SelfCheck) -> dict[str, Any]:
    return {"id": secrets.token_hex(3), "phase": INTERVIEW, "state": sc.start(), "msg": None}


# -- rendering ------------------------------------------------------------------------


def step_keyboard(view: StepView, nonce: str, *, with_help: bool = True) -> InlineKeyboardMarkup:
    """The options, then 为什么问这个, then 上一步 / 重新开始 / 退出."""
    options = [InlineKeyboardButton(label, callback_data=f"{PREFIX}:a:{nonce}:{view.step_id}:{oid}")
               for oid, label in view.options]
    per_row = 2 if all(len(label) <= 7 for _, label in view.options) else 1
    rows = [options[i:i + per_row] for i in range(0, len(options), per_row)]
    if with_help:
        rows.append([InlineKeyboardButton(HELP, callback_data=f"{PREFIX}:help:{nonce}:{view.step_id}")])
    rows.append([
        InlineKeyboardButton(BACK, callback_data=f"{PREFIX}:back:{nonce}:{view.step_id}"),
        InlineKeyboardButton(RESTART, callback_data=f"{PREFIX}:restart:{nonce}"),
        InlineKeyboardButton(QUIT, callback_data=f"{PREFIX}:quit:{nonce}"),
    ])
    return InlineKeyboardMarkup(rows)


def step_text(view: StepView, *, with_help: bool = False, note: str | None = None) -> str:
    """Plain text of the current question (optionally with its help and a note before it)."""
    text = SelfCheck.render_step(view)
    if with_help:
        text += "\n\n" + SelfCheck.render_help(view)
    return f"{note}\n\n{text}" if note else text


def verdict_keyboard(nonce: str, status: str) -> InlineKeyboardMarkup:
    rows = []
    if status in (ELIGIBLE, CAUTION):
        rows.append([InlineKeyboardButton(DOC, callback_data=f"{PREFIX}:doc:{nonce}")])
    rows.append([InlineKeyboardButton(NEW, callback_data=f"{PREFIX}:new")])
    return InlineKeyboardMarkup(rows)


def unit_keyboard(nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(DOC_NOW, callback_data=f"{PREFIX}:docnow:{nonce}")]])


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the pressed message; pressing the same button twice ("not modified") is harmless."""
    try:
        await query.edit_message_text(render_html(text), reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def _strip_keyboard(context: ContextTypes.DEFAULT_TYPE, chat_id: int, message_id: int | None) -> None:
    """Remove the buttons of a message the interview has moved away from (best effort)."""
    if message_id is None:
        return
    with contextlib.suppress(TelegramError):
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)


async def _send_long(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str,
                     markup: InlineKeyboardMarkup | None, *, edit: CallbackQuery | None = None,
                     reply_to: int | None = None) -> int | None:
    """Show text (editing `edit`'s message for the first part when given, else sending);
    further parts of an over-long text are sent after it, the keyboard on the last one.
    Returns the id of the message carrying the keyboard."""
    pieces = split_text(text)
    carrier: int | None = None
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        keys = markup if last else None
        if n == 0 and edit is not None:
            await _edit(edit, piece, keys)
            carrier = edit.message.message_id if edit.message is not None else None
        else:
            sent = await context.bot.send_message(
                chat_id, render_html(piece), reply_markup=keys,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to and n == 0 else None)
            carrier = sent.message_id
    return carrier


# -- entry points ---------------------------------------------------------------------


async def start_selfcheck(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Begin a new interview: a fresh nonce, the first question in a new message."""
    key = _key(update, context)
    if key is None:
        return
    chat_id = update.effective_chat.id
    sc = engine(context)
    async with _lock(context, key):
        old = _load(context, key)
        if old is not None and old.get("phase") != DONE:
            await _strip_keyboard(context, chat_id, old.get("msg"))
        session = _new_session(sc)
        _save(context, key, session)  # before sending: a quick first press finds it
        _record(context, update, "started")
        view = sc.view(session["state"])
        assert view is not None
        # In a group, quote the /check so everyone sees whose interview it is.
        message = update.message
        reply_to = message.message_id if message is not None and message.chat.type != "private" else None
        sent = await context.bot.send_message(
            chat_id, render_html(step_text(view)), reply_markup=step_keyboard(view, session["id"]),
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None)
        session["msg"] = sent.message_id
        _save(context, key, session)


async def cancel_selfcheck(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """End a self-check in progress (or a pending 申请书 question); True if there was one."""
    key = _key(update, context)
    if key is None:
        return False
    async with _lock(context, key):
        session = _load(context, key)
        if session is None:
            return False
        services(context).store.delete_session(key)
        if session.get("phase") == DONE:
            return False
        await _strip_keyboard(context, update.effective_chat.id, session.get("msg"))
        await _strip_keyboard(context, update.effective_chat.id, session.get("prompt"))
        return True


# -- buttons --------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    parts = (query.data or "").split(":")
    action = parts[1] if len(parts) > 1 else ""
    if action == "new":
        await query.answer()
        await start_selfcheck(update, context)
        return
    key = _key(update, context)
    if key is None or len(parts) < 3 or query.message is None:
        await query.answer(STALE)
        return
    nonce = parts[2]
    async with _lock(context, key):
        session = _load(context, key)
        if session is None or session.get("id") != nonce:
            await query.answer(STALE)
            return
        handler = _ACTIONS.get(action)
        if handler is None:
            await query.answer(STALE)
            return
        await handler(update, context, key, session, parts[3:])


def _on_current_step(session: dict[str, Any], args: list[str]) -> bool:
    """A step button (back, help) is live only on the step it was made for."""
    return session["phase"] == INTERVIEW and args == [session["state"].get("step")]


async def _drop_stale(context: ContextTypes.DEFAULT_TYPE, key: str, query: Any, exc: StaleState) -> None:
    """The stored interview cannot go on (the flow was edited): forget it and say why."""
    services(context).store.delete_session(key)
    await query.answer(str(exc))


async def _on_answer(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                     args: list[str]) -> None:
    query = update.callback_query
    if session["phase"] != INTERVIEW or len(args) != 2:
        await query.answer(STALE)
        return
    step_id, option_id = args
    sc = engine(context)
    try:
        state = sc.answer(session["state"], option_id, step_id=step_id)
    except StaleState as exc:
        await _drop_stale(context, key, query, exc)
        return
    except InvalidAnswer as exc:
        await query.answer(str(exc))
        return
    await _advance(update, context, key, session, state, edit=query)


async def _advance(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                   state: dict[str, Any], *, edit: CallbackQuery | None = None, note: str = "") -> None:
    """Store the new state, then show the next question or the verdict (editing the
    pressed message, or in a new message after a typed answer, with note first: "您选择的是：……")."""
    sc = engine(context)
    chat_id = update.effective_chat.id
    session = {**session, "state": state}
    view = sc.view(state)
    keep = True
    if view is None:
        deps = services(context)
        verdict = sc.verdict(state, deps.assistant.today(), deps.assistant.kb.meta)
        session.update(phase=DONE, status=verdict.status)
        keep = verdict.status in (ELIGIBLE, CAUTION)  # kept only for the 申请书, until it expires
        if keep:
            _save(context, key, session)
        else:
            services(context).store.delete_session(key)
        _record(context, update, "finished", sc.summary_of_answers(state), verdict.status)
        text, markup = sc.render_verdict(verdict), verdict_keyboard(session["id"], verdict.status)
    else:
        _save(context, key, session)
        text, markup = step_text(view), step_keyboard(view, session["id"])
    if note:
        text = f"{note}\n\n{text}"
    if edit is not None:
        await edit.answer()
        carrier = await _send_long(context, chat_id, text, markup, edit=edit)
    else:
        await _strip_keyboard(context, chat_id, session.get("msg"))
        carrier = await _send_long(context, chat_id, text, markup)
    if carrier != session.get("msg") and (view is not None or keep):
        session["msg"] = carrier
        _save(context, key, session)


async def _on_back(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                   args: list[str]) -> None:
    query = update.callback_query
    state = session["state"]
    if not _on_current_step(session, args):
        await query.answer(STALE)
        return
    if not state.get("history"):
        await query.answer(FIRST_STEP)
        return
    try:
        state = engine(context).back(state)
    except StaleState as exc:
        await _drop_stale(context, key, query, exc)
        return
    await _advance(update, context, key, session, state, edit=query)


async def _on_help(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                   args: list[str]) -> None:
    query = update.callback_query
    state = session["state"]
    if not _on_current_step(session, args):
        await query.answer(STALE)
        return
    try:
        view = engine(context).view(state)
    except StaleState as exc:
        await _drop_stale(context, key, query, exc)
        return
    assert view is not None
    await query.answer()
    await _edit(query, step_text(view, with_help=True), step_keyboard(view, session["id"], with_help=False))


async def _on_restart(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                      args: list[str]) -> None:
    query = update.callback_query
    if session["phase"] != INTERVIEW:
        await query.answer(STALE)
        return
    sc = engine(context)
    fresh = {**_new_session(sc), "msg": query.message.message_id}
    _save(context, key, fresh)
    _record(context, update, "started")
    view = sc.view(fresh["state"])
    assert view is not None
    await query.answer()
    await _edit(query, step_text(view), step_keyboard(view, fresh["id"]))


async def _on_quit(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                   args: list[str]) -> None:
    query = update.callback_query
    services(context).store.delete_session(key)
    await query.answer()
    await _edit(query, QUIT_TEXT, None)


async def _on_doc(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                  args: list[str]) -> None:
    """生成申请书: ask for the unit's name (typed next), or offer to generate without it."""
    query = update.callback_query
    if session["phase"] not in (DONE, UNIT) or session.get("status") not in (ELIGIBLE, CAUTION):
        await query.answer(STALE)
        return
    chat_id = update.effective_chat.id
    await _strip_keyboard(context, chat_id, session.get("prompt"))
    session = {**session, "phase": UNIT}
    _save(context, key, session)
    await query.answer()
    prompt = await context.bot.send_message(chat_id, render_html(UNIT_PROMPT), reply_markup=unit_keyboard(session["id"]))
    session["prompt"] = prompt.message_id
    _save(context, key, session)


async def _on_doc_now(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                      args: list[str]) -> None:
    query = update.callback_query
    if session["phase"] != UNIT or session.get("status") not in (ELIGIBLE, CAUTION):
        await query.answer(STALE)
        return
    await query.answer()
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(reply_markup=None)
    await _send_document(update, context, key, session, None)


_ACTIONS = {
    "a": _on_answer,
    "back": _on_back,
    "help": _on_help,
    "restart": _on_restart,
    "quit": _on_quit,
    "doc": _on_doc,
    "docnow": _on_doc_now,
}


async def _send_document(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, session: dict[str, Any],
                         unit_name: str | None) -> None:
    """The pre-filled 申请书 as a Word document; the session goes back to "done" so it
    can be generated again (e.g. with another unit name)."""
    chat_id = update.effective_chat.id
    answers = engine(context).form_answers(session["state"])
    _save(context, key, {**session, "phase": DONE, "prompt": None})
    async with typing_after(context, chat_id):
        buffer = io.BytesIO()
        await asyncio.to_thread(build_application_form, answers, unit_name, buffer)
        buffer.seek(0)
        await context.bot.send_document(chat_id, InputFile(buffer, filename=DOC_FILENAME), caption=DOC_CAPTION)


# -- typed text during an interview ------------------------------------------------------


class _InSelfCheck(filters.MessageFilter):
    """A message from a user whose interview (or 申请书 name question) is in progress."""

    def __init__(self, deps: Services) -> None:
        super().__init__(name="InSelfCheck")
        self.deps = deps

    def filter(self, message: Message) -> bool:
        if message.from_user is None:
            return False
        session = self.deps.store.load_session(session_key(self.deps.store, message.chat.id, message.from_user.id), KIND,
                                               _max_age(self.deps))
        return isinstance(session, dict) and session.get("phase") in (INTERVIEW, UNIT)


def _looks_like_question(text: str) -> bool:
    return text.endswith(("?", "？")) or len(text) > UNIT_NAME_MAX or "\n" in text


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed answer counts as pressing its option; other text is answered as a
    question, then the current step is shown again with its buttons."""
    message = update.effective_message
    key = _key(update, context)
    if key is None or message is None:
        return
    text = (message.text if message.chat.type == "private" else strip_mention(message)).strip()
    async with _lock(context, key):
        session = _load(context, key)
        if session is None or session.get("phase") not in (INTERVIEW, UNIT):
            await questions.on_text(update, context)  # finished meanwhile: an ordinary question
            return
        sc = engine(context)
        if session["phase"] == UNIT:
            if text and not _looks_like_question(text):
                await _strip_keyboard(context, message.chat_id, session.get("prompt"))
                await _send_document(update, context, key, session, text)
                return
            await questions.on_text(update, context)
            prompt = await context.bot.send_message(message.chat_id, render_html(UNIT_AGAIN),
                                                    reply_markup=unit_keyboard(session["id"]))
            await _strip_keyboard(context, message.chat_id, session.get("prompt"))
            _save(context, key, {**session, "prompt": prompt.message_id})
            return
        state = session["state"]
        if not sc.is_current(state):
            services(context).store.delete_session(key)
            await questions.on_text(update, context)
            return
        reading = sc.read_text(state, text)
        if reading.option_id is not None:
            await _advance(update, context, key, session, sc.answer(state, reading.option_id, step_id=state["step"]),
                           note=reading.note)
            return
        if not reading.note:
            await questions.on_text(update, context)
        view = sc.view(state)
        assert view is not None
        await _strip_keyboard(context, message.chat_id, session.get("msg"))
        # Words the buttons cannot stand for (e.g. 乡镇 support) are explained; the question is asked again.
        carrier = await _send_long(context, message.chat_id, step_text(view, note=reading.note or RESUME),
                                   step_keyboard(view, session["id"]))
        _save(context, key, {**session, "msg": carrier})


def register(application: Application, deps: Services) -> None:
    """The engine over the notice's clauses, the buttons, and typed text during an interview
    (registered before questions.py's handler, so it sees that text first)."""
    application.bot_data[ENGINE_KEY] = load_selfcheck(deps.assistant.kb)
    application.bot_data[LOCKS_KEY] = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
    application.add_handlers([
        CallbackQueryHandler(on_button, pattern=rf"^{PREFIX}:"),
        MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND & ADDRESSED
                       & _InSelfCheck(deps), on_text),
    ])
