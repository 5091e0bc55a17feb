"""End to end: the real python-telegram-bot Application, the real engine and store,
against a fake Bot API server on 127.0.0.1 (tests/fake_bot_api.py).

Expected texts are taken from the engine itself, so these tests check the
Telegram side (what is sent, to whom, with which buttons) whatever the
knowledge base says. The fake server rejects malformed HTML, over-long texts and
over-long callback data as Telegram does, so every reply here is also checked
for escaping and limits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from handlers import selfcheck
from handlers.commands import BOT_COMMANDS, FAQ_TITLE
from handlers.feedback import THANKS
from handlers.flood import FLOOD_NOTICE
from handlers.media import TEXT_ONLY
from handlers.questions import LONG_NOTE
from knowledge.assistant import MAX_QUESTION_CHARS
from knowledge.reply import Outcome, Reply
from tests.fake_bot_api import BOT_USERNAME

DEADLINE_Q = "申报截止时间是什么时候？"
GROUP = -1001234567890


def labels(call):
    return [label for label, _ in call.buttons]


def datas(call):
    return [data for _, data in call.buttons]


def ambiguous_question(assistant) -> tuple[str, Reply]:
    """A question the engine finds ambiguous: which one is the knowledge base's business,
    so try a few vague ones, then two-character fragments of the FAQ questions."""
    tries = ["单位", "申报", "材料", "时间", "要求"]
    tries += [e.question[i:i + 2] for e in assistant.kb.entries.values() for i in range(len(e.question) - 1)]
    for q in tries:
        reply = assistant.answer(q)
        if reply.outcome is Outcome.AMBIGUOUS and len(reply.buttons) >= 2:
            return q, reply
    pytest.fail("no ambiguous question found in the knowledge base")


# -- /start, its buttons, the command menu -----------------------------------------------


async def test_start_welcome_buttons_and_command_menu(bot, assistant):
    call = await bot.ask(1001, "/start")
    assert call.text == assistant.welcome().text
    assert datas(call) == ["cmd:faq", "cmd:check", "cmd:deadline", "cmd:contact"]
    assert labels(call) == ["常见问题", "资格自测", "申报截止", "联系方式"]
    assert call.params["parse_mode"] == "HTML"
    commands = bot.api.calls_to("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in commands] == [c.command for c in BOT_COMMANDS]
    assert {"start", "help", "faq", "check", "deadline", "contact", "cancel", "subscribe", "unsubscribe"} == {
        c["command"] for c in commands}
    assert bot.api.calls_to("deleteWebhook")  # polling starts by clearing any webhook


async def test_start_menu_buttons(bot, assistant):
    welcome = await bot.ask(1002, "/start")

    ack = await bot.press(1002, welcome, "cmd:deadline")
    deadline = await bot.api.wait_for_call("sendMessage", 1002, count=2)
    assert ack.params["callback_query_id"]
    assert deadline.text == assistant.deadline().text

    await bot.press(1002, welcome, "cmd:contact")
    contact = await bot.api.wait_for_call("sendMessage", 1002, count=3)
    assert contact.text == assistant.contact().text and "87710317" in contact.text

    await bot.press(1002, welcome, "cmd:faq")
    menu = await bot.api.wait_for_call("sendMessage", 1002, count=4)
    assert menu.text == FAQ_TITLE
    assert labels(menu) == [name for _, name in assistant.topics()]

    await bot.press(1002, welcome, "cmd:check")
    check = await bot.api.wait_for_call("sendMessage", 1002, count=5)
    assert check.text  # the self-check's first message (placeholder until it lands)


async def test_check_command_deep_link_and_button_share_one_entry_point(bot, monkeypatch):
    entered = []

    async def spy(update, context):
        entered.append(update.effective_chat.id)
        await context.bot.send_message(update.effective_chat.id, "自测开始")

    monkeypatch.setattr(selfcheck, "start_selfcheck", spy)
    assert (await bot.ask(1003, "/check")).text == "自测开始"
    deep = await bot.ask(1003, "/start check")  # t.me/<bot>?start=check
    assert deep.text == "自测开始"
    await bot.press(1003, deep, "cmd:check")
    await bot.api.wait_for_call("sendMessage", 1003, count=3)
    assert entered == [1003, 1003, 1003]


async def test_help_deadline_contact_cancel_commands(bot, assistant):
    assert (await bot.ask(1004, "/help")).text == assistant.help().text
    assert (await bot.ask(1004, "/deadline")).text == assistant.deadline().text
    assert (await bot.ask(1004, "/contact")).text == assistant.contact().text
    assert "没有进行中的操作" in (await bot.ask(1004, "/cancel")).text


# -- /faq menu --------------------------------------------------------------------------


async def test_faq_topics_questions_answer_and_back(bot, assistant):
    menu = await bot.ask(1005, "/faq")
    topic_id, topic_name = assistant.topics()[0]
    assert (topic_name, f"topic:{topic_id}") in menu.buttons

    await bot.press(1005, menu, f"topic:{topic_id}")
    edited = await bot.api.wait_for_call("editMessageText", 1005)
    questions = assistant.topic_questions(topic_id)
    assert topic_name in edited.text
    assert edited.buttons[:-1] == [(q, f"ask:{fid}") for fid, q in questions]
    assert edited.buttons[-1] == ("« 返回", "topics")

    faq_id, _ = questions[0]
    await bot.press(1005, edited, f"ask:{faq_id}")
    answer = await bot.api.wait_for_call("sendMessage", 1005, count=2)
    assert answer.text == assistant.answer_entry(faq_id).text

    await bot.press(1005, edited, "topics")
    back = await bot.api.wait_for_call("editMessageText", 1005, count=2)
    assert back.text == FAQ_TITLE and labels(back) == [name for _, name in assistant.topics()]


# -- questions ----------------------------------------------------------------------------


async def test_question_gets_answer_citation_original_related_and_feedback_buttons(bot, assistant):
    expected = assistant.answer(DEADLINE_Q)
    call = await bot.ask(1006, DEADLINE_Q)
    assert call.text == expected.text
    assert "依据：" in call.text
    # The citation is rendered in italics; the fake server has parsed the HTML.
    assert any(e["type"] == "italic" for e in call.result["entities"])
    buttons = call.buttons
    assert buttons[0] == ("📄 查看原文", f"clause:{expected.clauses[0]}")
    assert buttons[1:1 + len(expected.buttons)] == [(b.label, b.action) for b in expected.buttons]
    assert [label for label, _ in buttons[-2:]] == ["👍 有帮助", "👎 没帮助"]

    # 查看原文 shows the clause's full text, without a second 查看原文 under it.
    await bot.press(1006, call, f"clause:{expected.clauses[0]}")
    clause = await bot.api.wait_for_call("sendMessage", 1006, count=2)
    assert clause.text == assistant.clause_text(expected.clauses[0])
    assert not clause.buttons

    # A related-question button is answered like the question typed.
    related = expected.buttons[0].action
    await bot.press(1006, call, related)
    answer = await bot.api.wait_for_call("sendMessage", 1006, count=3)
    assert answer.text == assistant.answer_entry(related.removeprefix("ask:")).text


async def test_question_is_logged_with_hashed_user(bot, assistant):
    reply = assistant.answer(DEADLINE_Q)
    await bot.ask(424242, DEADLINE_Q)
    rows = list(bot.store.db["questions"].rows)
    assert len(rows) == 1
    row = rows[0]
    assert row["text"] == DEADLINE_Q and row["channel"] == "telegram" and row["chat_type"] == "private"
    assert row["faq_id"] == reply.faq_id and row["outcome"] == reply.outcome.value
    assert row["confidence"] == pytest.approx(reply.confidence, abs=1e-3)
    assert 0 < row["latency_ms"] < 5_000
    assert row["user_hash"] == bot.store.user_hash(424242) and "424242" not in row["user_hash"]
    assert row["ts"]


async def test_ambiguous_question_and_candidate_press(bot, assistant):
    question, expected = ambiguous_question(assistant)
    call = await bot.ask(1007, question)
    assert call.text == expected.text
    assert call.buttons == [(b.label, b.action) for b in expected.buttons]  # one per candidate, no feedback
    assert all(data.startswith("ask:") for data in datas(call))

    second = expected.buttons[1].action
    await bot.press(1007, call, second)
    answer = await bot.api.wait_for_call("sendMessage", 1007, count=2)
    assert answer.text == assistant.answer_entry(second.removeprefix("ask:")).text

    # "回复序号": typing 1 after an ambiguous reply picks the first candidate.
    await bot.ask(1007, question)
    by_number = await bot.ask(1007, "1")
    assert by_number.text == assistant.answer_entry(expected.faq_ids[0]).text


async def test_feedback_press_is_recorded_committed_and_acknowledged(bot, assistant):
    call = await bot.ask(1008, DEADLINE_Q)
    thumbs_up = next(data for label, data in call.buttons if label.startswith("👍"))
    ack = await bot.press(1008, call, thumbs_up)
    assert ack.params["text"] == THANKS[1]

    (question_id,) = bot.store.db.execute("select id from questions").fetchone()
    # Read through a separate connection: once the writer's queue is flushed, the row is committed.
    assert bot.store.flush(5)
    with sqlite3.connect(bot.store.path) as other:
        rows = other.execute("select question_id, faq_id, rating, user_hash from feedback").fetchall()
    assert rows == [(question_id, assistant.answer(DEADLINE_Q).faq_id, 1, bot.store.user_hash(1008))]

    edited = await bot.api.wait_for_call("editMessageText", 1008)
    assert "👍" in edited.text
    assert not any(data.startswith("fb:") for data in datas(edited))  # rated once
    assert ("📄 查看原文", f"clause:{assistant.answer(DEADLINE_Q).clauses[0]}") in edited.buttons

    thumbs_down = next(data for label, data in call.buttons if label.startswith("👎"))
    await bot.press(1008, call, thumbs_down)
    await bot.api.wait_for(lambda: bot.store.db["feedback"].count == 2)
    assert [r["rating"] for r in bot.store.db["feedback"].rows] == [1, -1]


async def test_reply_html_is_escaped_and_long_replies_are_split(bot, assistant, monkeypatch):
    tricky = "<b>不是标签</b> & A&B <script> 1<2\n依据：通知第四条第3项"
    monkeypatch.setattr(assistant, "answer", lambda text: Reply(tricky, Outcome.ANSWERED, 1.0, "deadline",
                                                                 ("deadline",), ("四.3",)))
    call = await bot.ask(1009, "随便问问")
    assert call.text == tricky  # the fake server parsed the HTML: every character came through as text

    long_text = "\n".join(f"第{n}行：申报材料<&>说明" * 3 for n in range(300))
    monkeypatch.setattr(assistant, "answer", lambda text: Reply(long_text, Outcome.ANSWERED, 1.0, "deadline",
                                                                 ("deadline",), ("四.3",)))
    before = len(bot.api.sent(1009))
    bot.api.message(1009, "很长的回答")
    await bot.api.settle()
    parts = bot.api.sent(1009)[before:]
    assert len(parts) >= 2
    assert all(len(p.text) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts) == long_text  # split at line breaks, nothing lost
    assert all(not p.buttons for p in parts[:-1]) and parts[-1].buttons  # keyboard on the last part


async def test_long_message_is_answered_from_its_first_part(bot, assistant):
    text = DEADLINE_Q + "我们单位的情况是这样的。" * 100
    assert len(text) > MAX_QUESTION_CHARS
    call = await bot.ask(1010, text)
    assert call.text.startswith(LONG_NOTE)
    assert assistant.answer(text[:MAX_QUESTION_CHARS]).text in call.text


async def test_edited_message_is_answered_again(bot, assistant):
    update_id = bot.api.message(1011, "你好")
    await bot.api.wait_for_call("sendMessage", 1011)
    message_id = bot.api.injected[update_id]["message"]["message_id"]
    bot.api.edit(1011, message_id, DEADLINE_Q)
    again = await bot.api.wait_for_call("sendMessage", 1011, count=2)
    assert again.text == assistant.answer(DEADLINE_Q).text
    assert again.result["reply_to_message"]["message_id"] == message_id  # quotes the edited question


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice", "document", "location", "contact"])
async def test_non_text_gets_polite_text_only_reply(bot, kind):
    bot.api.non_text(1012, kind)
    call = await bot.api.wait_for_call("sendMessage", 1012)
    assert call.text == TEXT_ONLY.text and "请用文字提问" in call.text
    assert datas(call) == ["cmd:faq", "cmd:check", "cmd:deadline", "cmd:contact"]


# -- groups -----------------------------------------------------------------------------


async def test_group_ignores_chatter_answers_mentions_replies_and_commands(bot, assistant):
    bot.api.message(2001, DEADLINE_Q, chat_id=GROUP, chat_type="supergroup")
    bot.api.non_text(2001, "sticker", chat_id=GROUP, chat_type="supergroup")
    await bot.api.settle(0.5)
    assert bot.api.sent(GROUP) == []

    mention = await bot.ask(2001, f"@{BOT_USERNAME} {DEADLINE_Q}", chat_id=GROUP, chat_type="supergroup")
    assert mention.text == assistant.answer(DEADLINE_Q).text
    assert mention.result["reply_to_message"]["from"]["id"] == 2001  # quotes the asker

    reply = await bot.ask(2002, "联系电话是多少", chat_id=GROUP, chat_type="supergroup", reply_to=mention.result)
    assert reply.text == assistant.answer("联系电话是多少").text

    command = await bot.ask(2003, f"/deadline@{BOT_USERNAME}", chat_id=GROUP, chat_type="supergroup")
    assert command.text == assistant.deadline().text

    rows = list(bot.store.db["questions"].rows)
    assert [r["chat_type"] for r in rows] == ["supergroup", "supergroup"]
    await bot.api.settle()
    assert len(bot.api.sent(GROUP)) == 3


# -- inline mode -----------------------------------------------------------------------------


async def test_inline_query_offers_answers_with_citations(bot, assistant):
    bot.api.inline_query(3001, "截止")
    call = await bot.api.wait_for_call("answerInlineQuery")
    results = call.params["results"]
    expected = assistant.search("截止", limit=5)
    assert len(results) == len(expected) >= 1
    for result, reply in zip(results, expected, strict=True):
        assert result["type"] == "article"
        assert result["title"] == assistant.kb.entries[reply.faq_id].question
        content = result["input_message_content"]
        assert content["parse_mode"] == "HTML" and "依据：" in content["message_text"]

    bot.api.inline_query(3001, "")
    empty = await bot.api.wait_for_call("answerInlineQuery", count=2)
    assert [r["id"] for r in empty.params["results"]] == ["deadline", "contact"]


# -- load, limits, failures ---------------------------------------------------------------------


async def test_flood_of_30_messages_answers_20_warns_once_then_quiet(bot, assistant):
    now = [1000.0]
    bot.app.bot_data["services"].flood.clock = lambda: now[0]
    for n in range(30):
        bot.api.message(4001, f"{DEADLINE_Q}{n}")
    await bot.api.wait_for(lambda: len(bot.api.sent(4001)) >= 21)
    await bot.api.settle(0.5)
    sent = bot.api.sent(4001)
    assert len(sent) == 21
    assert [c.text for c in sent].count(FLOOD_NOTICE) == 1
    assert bot.store.db["questions"].count == 20

    now[0] += 61  # the window has passed: answered again
    call = await bot.ask(4001, DEADLINE_Q)
    assert call.text == assistant.answer(DEADLINE_Q).text


async def test_fifty_users_at_once_each_get_only_their_own_answer(bot, assistant):
    questions = [e.question for e in assistant.kb.entries.values()]
    asked = {5000 + n: questions[n % len(questions)] for n in range(50)}
    for user_id, question in asked.items():
        bot.api.message(user_id, question)
    await bot.api.wait_for(lambda: len(bot.api.sent()) >= 50, timeout=20)
    await bot.api.settle()
    assert len(bot.api.sent()) == 50
    for user_id, question in asked.items():
        replies = bot.api.sent(user_id)
        assert len(replies) == 1, user_id
        assert replies[0].text == assistant.answer(question).text
    assert bot.store.db["questions"].count == 50


async def test_rate_limits_are_applied_and_typing_shows_while_queued(start_bot, assistant):
    # Realistic-size limits, scaled so the test stays short: 2 messages/s overall.
    bot = await start_bot(rate_overall_per_second=2, typing_delay_ms=200)
    started = time.perf_counter()
    for user_id in range(6001, 6005):
        bot.api.message(user_id, DEADLINE_Q)
    await bot.api.wait_for(lambda: len(bot.api.sent()) >= 4)
    times = sorted(c.at for c in bot.api.sent())
    assert times[-1] - started >= 0.8  # 4 messages at 2/s (burst 2): the last waits ~1 s
    typing = bot.api.calls_to("sendChatAction")
    assert typing and all(c.params["action"] == "typing" for c in typing)
    waited = typing[0].chat_id
    assert typing[0].at < bot.api.sent(waited)[0].at  # shown before the queued reply went out


async def test_per_chat_limit_spaces_replies_in_one_chat(start_bot):
    bot = await start_bot(rate_per_chat_per_second=4, rate_chat_burst=1)
    for n in range(3):
        bot.api.message(6101, f"{DEADLINE_Q} {n}")
    await bot.api.wait_for(lambda: len(bot.api.sent(6101)) >= 3)
    times = [c.at for c in bot.api.sent(6101)]
    assert times[2] - times[0] >= 0.45  # 4/s without burst: 0.25 s apart


async def test_429_and_network_errors_are_retried(bot, assistant):
    bot.api.fail("sendMessage", 429, retry_after=1)
    call = await bot.ask(7001, DEADLINE_Q, timeout=10)
    assert call.text == assistant.answer(DEADLINE_Q).text
    assert bot.api.calls_to("sendMessage", 7001, ok_only=False)[0].error.startswith("Too Many Requests")

    bot.api.fail("sendMessage", 502)
    call = await bot.ask(7002, DEADLINE_Q, timeout=10)
    assert call.text == assistant.answer(DEADLINE_Q).text
    assert bot.api.calls_to("sendMessage", 7002, ok_only=False)[0].error == "Bad Gateway"


async def test_error_in_a_handler_is_logged_and_the_bot_carries_on(bot, assistant, monkeypatch, caplog):
    real_answer = assistant.answer

    def broken(text):
        if "炸" in text:
            raise RuntimeError("engine exploded")
        return real_answer(text)

    monkeypatch.setattr(assistant, "answer", broken)
    apology = await bot.ask(8001, "炸")
    assert "出了点问题" in apology.text
    assert "engine exploded" in caplog.text
    assert (await bot.ask(8001, DEADLINE_Q)).text == real_answer(DEADLINE_Q).text


async def test_many_updates_in_one_poll_are_processed_concurrently(bot):
    # 20 updates arrive in one getUpdates batch; with concurrent_updates they are
    # all answered without waiting for one another.
    for n in range(20):
        bot.api.message(9000 + n, "你好")
    await asyncio.wait_for(bot.api.wait_for(lambda: len(bot.api.sent()) >= 20), 10)
    assert len({c.chat_id for c in bot.api.sent()}) == 20
