"""Button presses are never left spinning, and browsing does not use up the right to ask
(issue 10, items 4 and 6)."""

from __future__ import annotations

import logging

import pytest

from handlers import questions
from handlers.commands import FAQ_TITLE, NO_CHAT
from handlers.errors import APOLOGY, UNKNOWN_BUTTON
from handlers.flood import FLOOD_ALERT, FLOOD_NOTICE

DEADLINE_Q = "申报截止时间是什么时候？"
EXPIRED = "Bad Request: query is too old and response timeout expired or query id is invalid"


@pytest.mark.parametrize("data", ["zzz", "A" * 64, "\x00", "cmd", "topic", "fb"])
async def test_unknown_callback_data_is_answered_with_a_toast(bot, data):
    welcome = await bot.ask(1401, "/start")
    ack = await bot.press(1401, welcome, data)
    assert ack.params["text"] == UNKNOWN_BUTTON


@pytest.mark.parametrize("data", ["cmd:faq", "cmd:help"])
async def test_press_under_an_inline_message_is_answered(bot, data, caplog):
    caplog.set_level(logging.ERROR)
    before = len(bot.api.calls_to("answerCallbackQuery"))
    bot.api.push({"callback_query": {"id": "cq-inline", "from": bot.api.user(1402), "chat_instance": "ci",
                                     "inline_message_id": "AAAA-inline", "data": data}})
    ack = await bot.api.wait_for_call("answerCallbackQuery", count=before + 1)
    assert ack.params["text"] == NO_CHAT
    await bot.api.settle(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_expired_press_is_one_log_line_and_the_answer_still_goes_out(bot, assistant, caplog):
    call = await bot.ask(1403, DEADLINE_Q)
    related = next(data for _, data in call.buttons if data.startswith("ask:"))
    bot.api.fail("answerCallbackQuery", 400, description=EXPIRED)
    caplog.set_level(logging.INFO)
    bot.api.press(1403, call, related)
    reply = await bot.api.wait_for_call("sendMessage", 1403, count=2)
    assert reply.text == assistant.answer_entry(related.removeprefix("ask:")).text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("expired" in r.getMessage() for r in caplog.records)


async def test_error_after_a_press_was_answered_apologises_in_the_chat(bot, monkeypatch):
    call = await bot.ask(1404, DEADLINE_Q)
    related = next(data for _, data in call.buttons if data.startswith("ask:"))

    def broken(*args, **kwargs):
        raise RuntimeError("engine broke")

    monkeypatch.setattr(questions, "log_question", broken)  # fails after query.answer()
    bot.api.press(1404, call, related)
    apology = await bot.api.wait_for_call("sendMessage", 1404, count=2)
    assert apology.text == APOLOGY


async def test_presses_have_their_own_allowance_and_cancel_always_works(start_bot, assistant):
    bot = await start_bot(flood_limit_per_minute=5, flood_press_limit_per_minute=40)
    welcome = await bot.ask(1405, "/start")
    for _ in range(25):  # browsing: far more presses than the typed-message limit
        ack = await bot.press(1405, welcome, "topics")
        assert ack.params.get("text") != FLOOD_ALERT
    answer = await bot.ask(1405, DEADLINE_Q)
    assert answer.text == assistant.answer(DEADLINE_Q).text
    for _ in range(6):  # now over the typed limit
        bot.api.message(1405, "你好")
    await bot.api.wait_for(lambda: any(c.text == FLOOD_NOTICE for c in bot.api.sent(1405)))
    await bot.api.settle(0.3)  # the greetings allowed before the limit are all out
    cancelled = await bot.ask(1405, "/cancel")
    assert "退出" in cancelled.text or "没有进行中" in cancelled.text
    helped = await bot.ask(1405, "/help")
    assert helped.text == assistant.help().text


async def test_menu_press_on_a_deleted_message_shows_the_menu_afresh(bot, caplog):
    caplog.set_level(logging.ERROR)
    gone = {"message_id": 999, "date": 0, "chat": bot.api.chat(1406), "from": bot.api.bot_user, "text": "旧菜单"}
    bot.api.press(1406, gone, "topics")
    menu = await bot.api.wait_for_call("sendMessage", 1406)
    assert menu.text == FAQ_TITLE
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
