"""End to end: the eligibility self-check in Telegram, through the fake Bot API server
and the real Application (see tests/test_telegram_e2e.py).

Expected texts come from the engine (knowledge.selfcheck.flow) itself, so these tests
check the Telegram side: one message edited as the user advances, the buttons and
their callback data, stale buttons, typed answers, questions mid-interview, the
state in SQLite (across a restart of the bot, per chat and user) and the 申请书.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta

import pytest
from docx import Document

from handlers import selfcheck as h
from knowledge.selfcheck.flow import SelfCheck, load_selfcheck
from knowledge.storage.store import iso, utcnow
from tests.conftest import BotHarness
from tests.fake_bot_api import BOT_USERNAME, Call

DEADLINE_Q = "申报截止时间是什么时候？"
GROUP = -1009876543210
# One answer per step that satisfies every condition (as in tests/test_selfcheck.py).
GOOD = {
    "org_type": "public_inst", "public_function": "yes", "legal_person": "yes", "field": "education",
    "std_basis": "yes", "accident": "none", "credit": "good", "support": "yes", "channel": "city_joint",
}
UNIT = "武汉市江汉区第一中学"


@pytest.fixture(scope="module")
def sc(kb) -> SelfCheck:
    return load_selfcheck(kb)


def labels(call: Call) -> list[str]:
    return [label for label, _ in call.buttons]


def data_of(call: Call, label: str) -> str:
    matches = [data for text, data in call.buttons if text == label]
    assert len(matches) == 1, (label, call.buttons)
    return matches[0]


def option_label(sc: SelfCheck, step_id: str, option_id: str) -> str:
    option = sc.flow.step(step_id).option(option_id)
    assert option is not None
    return option.label


def expected_state(sc: SelfCheck, answers: dict[str, str]) -> dict:
    """The engine's state after answering as given, in the flow's order."""
    state = sc.start()
    while not state["done"] and state["step"] in answers:
        state = sc.answer(state, answers[state["step"]], step_id=state["step"])
    return state


def step_text_of(sc: SelfCheck, state: dict) -> str:
    view = sc.view(state)
    assert view is not None
    return sc.render_step(view)


async def edit_after(bot: BotHarness, user_id: int, sent: Call, data: str, chat_id: int | None = None) -> Call:
    """Press a button under `sent`; return the edit of that message it causes."""
    chat_id = chat_id if chat_id is not None else user_id
    before = len(bot.api.calls_to("editMessageText", chat_id))
    bot.api.press(user_id, sent, data)
    return await bot.api.wait_for_call("editMessageText", chat_id, count=before + 1)


async def choose(bot: BotHarness, sc: SelfCheck, user_id: int, sent: Call, step_id: str, option_id: str,
                 chat_id: int | None = None) -> Call:
    return await edit_after(bot, user_id, sent, data_of(sent, option_label(sc, step_id, option_id)), chat_id)


async def run_path(bot: BotHarness, sc: SelfCheck, user_id: int, first: Call, answers: dict[str, str],
                   chat_id: int | None = None) -> Call:
    """Press the given answer at every step until the verdict; return the verdict's edit."""
    state = sc.start()
    call = first
    while not state["done"]:
        step = state["step"]
        call = await choose(bot, sc, user_id, call, step, answers[step], chat_id)
        state = sc.answer(state, answers[step], step_id=step)
    return call


def verdict_text(sc: SelfCheck, assistant, answers: dict[str, str]) -> str:
    state = expected_state(sc, answers)
    return sc.render_verdict(sc.verdict(state, assistant.today(), assistant.kb.meta))


def session_of(bot: BotHarness, chat_id: int, user_id: int) -> dict | None:
    return bot.store.load_session(h.session_key(bot.store, chat_id, user_id), h.KIND)


# -- starting ---------------------------------------------------------------------------------


async def test_check_shows_first_question_with_all_buttons(bot, sc):
    call = await bot.ask(1101, "/check")
    assert call.text == step_text_of(sc, sc.start())
    options = [label for _, label in sc.view(sc.start()).options]
    assert labels(call) == [*options, h.HELP, h.BACK, h.RESTART, h.QUIT]
    assert all(data.startswith("sc:") and len(data.encode()) <= 64 for _, data in call.buttons)
    session = session_of(bot, 1101, 1101)
    assert session["phase"] == "interview" and session["state"] == sc.start()
    rows = list(bot.store.db["selfchecks"].rows)
    assert [(r["event"], r["user_hash"]) for r in rows] == [("started", bot.store.user_hash(1101))]


async def test_deep_link_and_start_menu_button_start_it_too(bot, sc):
    deep = await bot.ask(1102, "/start check")
    assert deep.text == step_text_of(sc, sc.start())
    welcome = await bot.ask(1102, "/start")
    bot.api.press(1102, welcome, "cmd:check")
    button = await bot.api.wait_for_call("sendMessage", 1102, count=3)
    assert button.text == step_text_of(sc, sc.start())
    # The new interview replaced the first: its message lost its buttons, its buttons are stale.
    assert any(c.params["message_id"] == deep.result["message_id"]
               for c in bot.api.calls_to("editMessageReplyMarkup", 1102))
    ack = await bot.press(1102, deep, data_of(deep, "事业单位"))
    assert ack.params["text"] == h.STALE


# -- whole interviews ---------------------------------------------------------------------------


async def test_eligible_path_edits_one_message_then_verdict_and_document(bot, sc, assistant):
    first = await bot.ask(1103, "/check")
    verdict = await run_path(bot, sc, 1103, first, GOOD)
    # No chat noise: every step and the verdict are edits of the first message.
    assert len(bot.api.sent(1103)) == 1
    edits = bot.api.calls_to("editMessageText", 1103)
    assert len(edits) == len(sc.flow.steps)
    assert {c.params["message_id"] for c in edits} == {first.result["message_id"]}
    assert verdict.text == verdict_text(sc, assistant, GOOD)
    assert verdict.text.startswith("【自测结论】符合申报条件")
    assert labels(verdict) == [h.DOC, h.NEW]

    rows = list(bot.store.db["selfchecks"].rows)
    assert [r["event"] for r in rows] == ["started", "finished"]
    assert rows[1]["verdict"] == "eligible"
    assert json.loads(rows[1]["answers"]) == sc.summary_of_answers(expected_state(sc, GOOD))
    assert all(r["user_hash"] == bot.store.user_hash(1103) for r in rows)

    # 生成申请书: asks for the unit's name; the typed name goes into the document.
    await bot.press(1103, verdict, data_of(verdict, h.DOC))
    prompt = await bot.api.wait_for_call("sendMessage", 1103, count=2)
    assert prompt.text == h.UNIT_PROMPT and labels(prompt) == [h.DOC_NOW]
    bot.api.message(1103, UNIT)
    sent = await bot.api.wait_for_call("sendDocument", 1103)
    document = sent.params["document"]
    assert document["filename"] == "申请书.docx"
    text = "\n".join(p.text for p in Document(io.BytesIO(document["content"])).paragraphs)
    assert UNIT in text and "公共教育服务" in text
    assert bot.store.db["questions"].count == 0  # the name was not taken for a question

    # Again, without a unit name.
    await bot.press(1103, verdict, data_of(verdict, h.DOC))
    prompt = await bot.api.wait_for_call("sendMessage", 1103, count=3)
    await bot.press(1103, prompt, data_of(prompt, h.DOC_NOW))
    unnamed = await bot.api.wait_for_call("sendDocument", 1103, count=2)
    text = "\n".join(p.text for p in Document(io.BytesIO(unnamed.params["document"]["content"])).paragraphs)
    assert UNIT not in text and "公共教育服务" in text
    # The interview is over: text is a question again.
    answer = await bot.ask(1103, DEADLINE_Q)
    assert answer.text == assistant.answer(DEADLINE_Q).text


async def test_ineligible_individual_gets_verdict_at_once_without_document(bot, sc, assistant):
    first = await bot.ask(1104, "/check")
    verdict = await choose(bot, sc, 1104, first, "org_type", "individual")
    assert option_label(sc, "org_type", "individual") == "个人或未注册的团体"
    assert verdict.text == verdict_text(sc, assistant, {"org_type": "individual"})
    assert verdict.text.startswith("【自测结论】不符合申报条件")
    assert h.DOC not in labels(verdict)
    rows = list(bot.store.db["selfchecks"].rows)
    assert rows[-1]["event"] == "finished" and rows[-1]["verdict"] == "ineligible"
    # Nothing is kept of a finished interview that cannot give a 申请书,
    # and a 生成申请书 press forged for it is refused.
    assert session_of(bot, 1104, 1104) is None
    nonce = bot.api.sent(1104)[0].buttons[0][1].split(":")[2]  # sc:a:<nonce>:…
    ack = await bot.press(1104, verdict, f"sc:doc:{nonce}")
    assert ack.params["text"] == h.STALE


# -- navigation ----------------------------------------------------------------------------------


async def test_back_restart_help_and_quit(bot, sc):
    first = await bot.ask(1105, "/check")
    ack = await bot.press(1105, first, data_of(first, h.BACK))
    assert ack.params["text"] == h.FIRST_STEP  # nothing before the first question

    second = await choose(bot, sc, 1105, first, "org_type", "public_inst")
    assert second.text == step_text_of(sc, expected_state(sc, {"org_type": "public_inst"}))
    back = await edit_after(bot, 1105, second, data_of(second, h.BACK))
    assert back.text == step_text_of(sc, sc.start())
    assert session_of(bot, 1105, 1105)["state"] == sc.start()

    # 为什么问这个: the help and its citation, the options still there.
    helped = await edit_after(bot, 1105, back, data_of(back, h.HELP))
    assert helped.text == step_text_of(sc, sc.start()) + "\n\n" + sc.render_help(sc.view(sc.start()))
    assert "依据：" in helped.text and h.HELP not in labels(helped)
    third = await choose(bot, sc, 1105, helped, "org_type", "assoc")
    third = await choose(bot, sc, 1105, third, "public_function", "yes")
    assert third.text == step_text_of(sc, expected_state(sc, {"org_type": "assoc", "public_function": "yes"}))

    restarted = await edit_after(bot, 1105, third, data_of(third, h.RESTART))
    assert restarted.text == step_text_of(sc, sc.start())
    assert session_of(bot, 1105, 1105)["state"] == sc.start()
    assert [r["event"] for r in bot.store.db["selfchecks"].rows] == ["started", "started"]
    # A button from before the restart belongs to another interview.
    ack = await bot.press(1105, first, data_of(first, "事业单位"))
    assert ack.params["text"] == h.STALE

    quit_ = await edit_after(bot, 1105, restarted, data_of(restarted, h.QUIT))
    assert quit_.text == h.QUIT_TEXT and not quit_.buttons
    assert session_of(bot, 1105, 1105) is None
    ack = await bot.press(1105, restarted, data_of(restarted, "事业单位"))
    assert ack.params["text"] == h.STALE


async def test_cancel_command_ends_the_interview(bot, assistant):
    first = await bot.ask(1106, "/check")
    cancelled = await bot.ask(1106, "/cancel")
    assert cancelled.text.startswith("已退出当前操作")
    assert session_of(bot, 1106, 1106) is None
    ack = await bot.press(1106, first, data_of(first, "事业单位"))
    assert ack.params["text"] == h.STALE
    assert (await bot.ask(1106, "事业单位")).text == assistant.answer("事业单位").text  # a question again


async def test_old_buttons_get_a_notice_and_change_nothing(bot, sc):
    first = await bot.ask(1107, "/check")
    second = await choose(bot, sc, 1107, first, "org_type", "public_inst")
    state = session_of(bot, 1107, 1107)
    # The first question's button, pressed again after it was answered.
    ack = await bot.press(1107, first, data_of(first, "行政机构"))
    assert ack.params["text"] == "这个按钮属于之前的问题，请回答当前的问题。"
    for data in (f"sc:back:{state['id']}:org_type", f"sc:help:{state['id']}:org_type", "sc:a:zzzzzz:x:y", "sc:"):
        ack = await bot.press(1107, first, data)
        assert ack.params.get("text"), data
    await bot.api.settle(0.2)
    assert session_of(bot, 1107, 1107) == state
    assert len(bot.api.calls_to("editMessageText", 1107)) == 1

    # A finished interview's buttons: go on from the second question to the verdict.
    call = second
    s = expected_state(sc, {"org_type": "public_inst"})
    while not s["done"]:
        call = await choose(bot, sc, 1107, call, s["step"], GOOD[s["step"]])
        s = sc.answer(s, GOOD[s["step"]], step_id=s["step"])
    ack = await bot.press(1107, second, data_of(second, "有"))
    assert ack.params["text"] == h.STALE
    assert not bot.api.calls_to("sendMessage", 1107)[1:]  # no crash, no apology


# -- typed text ----------------------------------------------------------------------------------


async def test_typed_answers_count_as_presses(bot, sc, assistant):
    first = await bot.ask(1108, "/check")
    second = await bot.ask(1108, "事业单位")
    state = expected_state(sc, {"org_type": "public_inst"})
    assert second.text == "您选择的是：事业单位\n\n" + step_text_of(sc, state)  # echoes what it understood
    assert labels(second)[-3:] == [h.BACK, h.RESTART, h.QUIT]
    # The old message lost its buttons; they are stale anyway.
    stripped = bot.api.calls_to("editMessageReplyMarkup", 1108)
    assert [c.params["message_id"] for c in stripped] == [first.result["message_id"]]
    third = await bot.ask(1108, "有")  # a yes/no word
    assert third.text == "您选择的是：有\n\n" + step_text_of(
        sc, expected_state(sc, {"org_type": "public_inst", "public_function": "yes"}))
    fourth = await bot.ask(1108, "1")  # an option's number
    assert fourth.text == "您选择的是：有法人资格\n\n" + step_text_of(sc, expected_state(
        sc, {"org_type": "public_inst", "public_function": "yes", "legal_person": "yes"}))
    # Buttons under the newest message go on from there.
    fifth = await choose(bot, sc, 1108, fourth, "field", "education")
    assert fifth.text == step_text_of(sc, expected_state(
        sc, {k: GOOD[k] for k in ("org_type", "public_function", "legal_person", "field")}))
    assert bot.store.db["questions"].count == 0


async def test_question_mid_interview_is_answered_then_the_step_shown_again(bot, sc, assistant):
    first = await bot.ask(1109, "/check")
    second = await choose(bot, sc, 1109, first, "org_type", "assoc")
    answer = await bot.ask(1109, DEADLINE_Q)
    assert answer.text == assistant.answer(DEADLINE_Q).text
    again = await bot.api.wait_for_call("sendMessage", 1109, count=3)
    state = expected_state(sc, {"org_type": "assoc"})
    assert again.text == h.RESUME + "\n\n" + step_text_of(sc, state)
    assert labels(again) == labels(second)
    rows = list(bot.store.db["questions"].rows)
    assert [r["text"] for r in rows] == [DEADLINE_Q]  # logged like any question
    assert session_of(bot, 1109, 1109)["state"] == state
    # The step shown again works; the previous message's buttons were removed.
    third = await choose(bot, sc, 1109, again, "public_function", "yes")
    assert third.result["message_id"] == again.result["message_id"]


# -- persistence, expiry, isolation ------------------------------------------------------------------


async def test_interview_survives_a_restart_of_the_bot(start_bot, sc):
    bot = await start_bot()
    first = await bot.ask(1110, "/check")
    second = await choose(bot, sc, 1110, first, "org_type", "public_inst")
    third = await choose(bot, sc, 1110, second, "public_function", "yes")
    await bot.app.updater.stop()
    await bot.app.stop()
    await bot.app.shutdown()
    bot.store.close()

    again = await start_bot()  # a new process: same database, nothing in memory
    fourth = await choose(again, sc, 1110, third, "legal_person", "yes")
    state = expected_state(sc, {"org_type": "public_inst", "public_function": "yes", "legal_person": "yes"})
    assert fourth.text == step_text_of(sc, state)
    assert fourth.params["message_id"] == first.result["message_id"]


async def test_unfinished_interview_expires(start_bot, sc, assistant):
    bot = await start_bot(selfcheck_ttl_hours=2)
    first = await bot.ask(1111, "/check")
    key = h.session_key(bot.store, 1111, 1111)
    for _ in range(100):  # the message id is stored just after the message is sent
        if (session_of(bot, 1111, 1111) or {}).get("msg"):
            break
        await asyncio.sleep(0.02)
    bot.store.db["sessions"].update(key, {"updated_at": iso(utcnow() - timedelta(hours=3))})
    ack = await bot.press(1111, first, data_of(first, "事业单位"))
    assert ack.params["text"] == h.STALE
    assert (await bot.ask(1111, "事业单位")).text == assistant.answer("事业单位").text


async def test_users_in_a_group_each_have_their_own_interview(bot, sc):
    a = await bot.ask(2101, f"/check@{BOT_USERNAME}", chat_id=GROUP, chat_type="supergroup")
    b = await bot.ask(2102, f"/check@{BOT_USERNAME}", chat_id=GROUP, chat_type="supergroup")
    assert a.result["reply_to_message"]["from"]["id"] == 2101  # whose interview it is
    # B presses a button under A's message: refused, A's interview untouched.
    ack = await bot.press(2102, a, data_of(a, "事业单位"))
    assert ack.params["text"] == h.STALE
    assert session_of(bot, GROUP, 2101)["state"] == sc.start()
    a2 = await choose(bot, sc, 2101, a, "org_type", "public_inst", chat_id=GROUP)
    b2 = await choose(bot, sc, 2102, b, "org_type", "individual", chat_id=GROUP)
    assert a2.text == step_text_of(sc, expected_state(sc, {"org_type": "public_inst"}))
    assert b2.text.startswith("【自测结论】不符合申报条件")
    # The same user in a private chat has a separate interview.
    private = await bot.ask(2101, "/check")
    assert private.text == step_text_of(sc, sc.start())
    assert session_of(bot, GROUP, 2101)["state"] == expected_state(sc, {"org_type": "public_inst"})
    # A typed answer in the group (addressed to the bot) answers that user's own interview.
    typed = await bot.ask(2101, f"@{BOT_USERNAME} 有", chat_id=GROUP, chat_type="supergroup")
    assert typed.text == "您选择的是：有\n\n" + step_text_of(
        sc, expected_state(sc, {"org_type": "public_inst", "public_function": "yes"}))


async def test_twenty_users_interview_at_once_without_crossing(bot, sc, assistant):
    users = {3000 + n: ({**GOOD, "field": ("education", "elderly", "community")[n % 3]} if n % 2 == 0
                        else {**GOOD, "accident": "some"}) for n in range(20)}
    for user_id in users:
        bot.api.message(user_id, "/check")
    await bot.api.wait_for(lambda: all(bot.api.sent(u) for u in users), timeout=20)

    async def interview(user_id: int) -> Call:
        return await run_path(bot, sc, user_id, bot.api.sent(user_id)[0], users[user_id])

    verdicts = await asyncio.wait_for(asyncio.gather(*(interview(u) for u in users)), 60)
    for (user_id, answers), verdict in zip(users.items(), verdicts, strict=True):
        assert verdict.chat_id == user_id
        assert verdict.text == verdict_text(sc, assistant, answers)
        session = session_of(bot, user_id, user_id)
        if "申请书" in labels(verdict)[0]:  # kept for the document; an ineligible one is deleted
            assert session["phase"] == "done" and session["state"] == expected_state(sc, answers)
        else:
            assert session is None
    finished = [r for r in bot.store.db["selfchecks"].rows if r["event"] == "finished"]
    assert len(finished) == 20
    assert sorted(r["verdict"] for r in finished) == ["eligible"] * 10 + ["ineligible"] * 10
    assert all(len(bot.api.sent(u)) == 1 for u in users)  # edits only
