"""Staff tools end to end: the real Application (staff and subscription handlers
included) against the fake Bot API server, with a real store.

Who may: staff commands from anyone else get exactly the unknown-command reply.
Figures: /stats equals counts worked out from seeded rows. /reload: a broken file
keeps the old knowledge base and names the error; a fixed one answers the new entry
at once. /broadcast: 100 subscribers, one of whom blocked the bot (403).
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from handlers import MODULES, staff, subscriptions
from handlers.common import SERVICES_KEY
from knowledge.answering.index import Index
from knowledge.assistant import Assistant
from knowledge.loader import DATA_DIR
from knowledge.staff.broadcast import ANNOUNCEMENT_HEAD, reminder_key
from knowledge.staff.stats import OFFICE_TZ
from tests.conftest import AFTER_DEADLINE, BEFORE_DEADLINE
from tests.fake_bot_api import BOT_USERNAME, ApiError
from tests.test_stats import expected, seed

STAFF = 7001
USER = 7002
GROUP = -1009876543210
STAFF_COMMANDS = ["/stats", "/stats 30", "/unanswered", "/unanswered 7", "/reload", "/broadcast 明天停止受理"]


def add_send_photo(api) -> None:
    """sendPhoto for the chart, unless the fake server has it already."""
    if not hasattr(api, "_api_sendphoto"):
        api._api_sendphoto = lambda params: api._new_bot_message(
            params, photo=[{"file_id": "chart", "file_unique_id": "chart-u", "width": 800, "height": 440}])


@pytest.fixture
async def staff_bot(start_bot):
    """start(**settings) -> harness with STAFF in ADMIN_IDS and the staff and subscription handlers."""

    async def start(**overrides):
        harness = await start_bot(admin_ids=frozenset({STAFF}), **overrides)
        deps = harness.app.bot_data[SERVICES_KEY]
        for module in (subscriptions, staff):
            if module not in MODULES:  # until handlers/__init__.py lists them
                module.register(harness.app, deps)
        add_send_photo(harness.api)
        return harness

    return start


def services(harness):
    return harness.app.bot_data[SERVICES_KEY]


# -- who is staff ---------------------------------------------------------------------------------


async def test_non_staff_get_the_unknown_command_reply_and_no_figures(staff_bot):
    bot = await staff_bot()
    store = bot.store
    store.log_question(user_hash="x", text="有没有补贴", outcome="unknown")
    store.subscribe(424242)
    bot.api.chat(424242)
    unknown = await bot.ask(USER, "/nosuchcommand")
    assert unknown.text == staff.UNKNOWN_COMMAND and not unknown.buttons
    for command in STAFF_COMMANDS:
        reply = await bot.ask(USER, command)
        assert reply.text == unknown.text and not reply.buttons, command
    await bot.api.settle()
    assert not bot.api.calls_to("sendPhoto")
    assert not bot.api.sent(424242)  # nothing was broadcast
    assert len(bot.api.sent(USER)) == 1 + len(STAFF_COMMANDS)  # one reply each, nothing more
    # A forged 确认发送 press does nothing either.
    bot.api.press(USER, unknown, "bc:ok:deadbeef")
    answer = await bot.api.wait_for_call("answerCallbackQuery")
    assert not answer.params.get("text")
    await bot.api.settle()
    assert not bot.api.sent(424242)

    # Known commands are still answered once, and only once.
    before = len(bot.api.sent(USER))
    await bot.ask(USER, "/deadline")
    await bot.api.settle()
    assert len(bot.api.sent(USER)) == before + 1

    # Staff get figures; in a group even staff get nothing (figures stay private), and
    # commands for other bots, or not addressed to this one in a group, are ignored.
    figures = await bot.ask(STAFF, "/stats")
    assert "提问：1 条" in figures.text
    in_group = await bot.ask(STAFF, f"/stats@{BOT_USERNAME}", chat_id=GROUP, chat_type="supergroup")
    assert in_group.text == staff.UNKNOWN_COMMAND
    before = len(bot.api.calls)
    bot.api.message(STAFF, "/stats", chat_id=GROUP, chat_type="supergroup")
    bot.api.message(USER, "/nosuchcommand@another_bot")
    await bot.api.settle()
    assert not [c for c in bot.api.calls[before:] if c.method == "sendMessage"]


async def test_logs_hold_hashes_never_raw_ids(staff_bot):
    bot = await staff_bot()
    await bot.ask(USER, "申报截止时间是什么时候？")
    await bot.ask(USER, "/subscribe")
    rows = [str(r) for table in ("questions", "feedback", "selfchecks", "sessions") for r in bot.store.db[table].rows]
    assert rows and not any(str(USER) in r for r in rows)
    assert bot.store.db["questions"].count == 1
    assert bot.store.active_subscribers() == [USER]  # delivery needs the chat id, so it is kept here only


# -- /stats /unanswered -----------------------------------------------------------------------------


async def test_stats_equals_independent_counts_with_chart(staff_bot):
    bot = await staff_bot()
    rows = seed(bot.store, datetime.now(UTC))
    exp = expected(rows, datetime.now(UTC), 7)
    reply = await bot.ask(STAFF, "/stats 7")
    text = reply.text
    assert int(re.search(r"提问：(\d+) 条", text).group(1)) == exp["questions"]
    for o, name in (("answered", "已回答"), ("ambiguous", "需澄清"), ("unknown", "未涵盖")):
        count, share = re.search(rf"{name}：(\d+)（([\d.]+)%）", text).groups()
        assert int(count) == exp["outcomes"][o]
        assert float(share) == round(exp["outcomes"][o] / exp["questions"] * 100, 1)
    assert re.search(r"👍 (\d+) / 👎 (\d+)", text).groups() == (str(exp["up"]), str(exp["down"]))
    assert re.search(r"开始 (\d+)，完成 (\d+)", text).groups() == (str(exp["started"]), str(exp["finished"]))
    kb = services(bot).assistant.kb
    top_id, top_count = exp["top"].most_common(1)[0]
    assert "1. 【" in text and f"{kb.entries[top_id].question} — {top_count} 次" in text
    photo = await bot.api.wait_for_call("sendPhoto", STAFF)
    assert photo.params["photo"]["filename"] == "stats.png"
    assert photo.params["photo"]["content"][:8] == b"\x89PNG\r\n\x1a\n"
    bad = await bot.ask(STAFF, "/stats 0")
    assert bad.text.startswith("用法")


async def test_unanswered_groups_most_frequent_first(staff_bot):
    bot = await staff_bot()
    for text, times in (("评审专家是谁", 2), ("有没有补贴", 3), ("请问有没有补贴？", 1), ("武汉天气", 1)):
        for _ in range(times):
            bot.store.log_question(user_hash="u", text=text, outcome="unknown")
    qid = bot.store.log_question(user_hash="u", text="截止时间", outcome="answered", faq_id="deadline")
    bot.store.log_feedback(user_hash="u", rating=-1, question_id=qid)
    bot.store.log_question(user_hash="u", text="联系电话", outcome="answered", faq_id="contact_phone")
    reply = await bot.ask(STAFF, "/unanswered")
    lines = reply.text.splitlines()
    assert lines[1].startswith("1. 有没有补贴 — 4 次") and "请问有没有补贴？" in lines[2]
    assert lines[3].startswith("2. 评审专家是谁 — 2 次")
    assert "截止时间 — 1 次（👎 1）" in reply.text and "联系电话" not in reply.text


# -- /reload ------------------------------------------------------------------------------------------

NEW_ENTRY = {
    "id": "award_ceremony", "topic": "approval", "question": "试点授牌仪式在哪里举行？",
    "phrasings": ["授牌仪式在哪办", "授牌仪式地点", "什么时候授牌", "授牌典礼在哪里", "挂牌仪式在哪里举行", "授牌活动地点是哪里"],
    "answer": "（测试条目）授牌仪式安排以省联席会议办公室另行通知为准。", "clauses": ["四.3"], "related": [],
}


async def test_reload_refuses_a_broken_file_and_loads_a_fixed_one(staff_bot, tmp_path):
    bot = await staff_bot()
    data = tmp_path / "kb"
    shutil.copytree(DATA_DIR, data)
    deps = services(bot)
    deps.assistant = Assistant.load(deps.settings.index_path, data, lambda: AFTER_DEADLINE)
    old = deps.assistant
    question = "申报截止时间是什么时候？"
    before = (await bot.ask(USER, question)).text
    new_question = NEW_ENTRY["question"]
    assert old.answer(new_question).faq_id != "award_ceremony"

    faq = yaml.safe_load((data / "faq.yaml").read_text(encoding="utf-8"))
    broken = dict(NEW_ENTRY, clauses=["九.9"])
    (data / "faq.yaml").write_text(yaml.safe_dump({**faq, "entries": faq["entries"] + [broken]}, allow_unicode=True),
                                   encoding="utf-8")
    refused = await bot.ask(STAFF, "/reload")
    assert refused.text.startswith("❌") and "仍在使用原来的版本" in refused.text
    assert "faq.yaml" in refused.text and "award_ceremony" in refused.text and "clauses" in refused.text
    assert deps.assistant is old
    assert (await bot.ask(USER, question)).text == before

    (data / "faq.yaml").write_text(
        yaml.safe_dump({**faq, "entries": faq["entries"] + [NEW_ENTRY]}, allow_unicode=True), encoding="utf-8")
    started = time.perf_counter()
    loaded = await bot.ask(STAFF, "/reload", timeout=60)
    reload_seconds = time.perf_counter() - started
    assert loaded.text.startswith("✅") and "新增 1 个（award_ceremony）" in loaded.text, loaded.text
    assert deps.assistant is not old
    answer = await bot.ask(USER, new_question)
    assert NEW_ENTRY["answer"] in answer.text
    row = bot.store.db.execute("select faq_id, outcome from questions order by id desc limit 1").fetchone()
    assert row == ("award_ceremony", "answered")
    print(f"\n/reload with an index rebuild: {reload_seconds:.2f} s")


# -- /broadcast ---------------------------------------------------------------------------------------


def block(api, chat_id: int) -> None:
    """The fake server answers 403 for this chat, as Telegram does for a user who blocked the bot."""
    send = api._api_sendmessage

    def send_or_refuse(params: dict) -> dict:
        if params.get("chat_id") == chat_id:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return send(params)

    api._api_sendmessage = send_or_refuse


async def test_broadcast_reaches_99_of_100_within_the_rate_limit(staff_bot):
    # Telegram's own overall limit (30 messages a second), not the tests' raised one.
    bot = await staff_bot(rate_overall_per_second=30.0)
    subscribers = list(range(50001, 50101))
    blocked = subscribers[37]
    for chat_id in subscribers:
        bot.api.chat(chat_id)
        bot.store.subscribe(chat_id)
    block(bot.api, blocked)

    preview = await bot.ask(STAFF, "/broadcast 受理时间调整：\n材料请于工作日报送 <省质监局>")
    assert "将发送给 100 位订阅者" in preview.text and "材料请于工作日报送 <省质监局>" in preview.text
    assert [label for label, _ in preview.buttons] == ["确认发送", "取消"]
    assert not [c for c in bot.api.sent() if c.chat_id in subscribers]  # nothing before confirming

    started = time.perf_counter()
    bot.api.press(STAFF, preview, preview.buttons[0][1])
    report = await bot.api.wait_for(
        lambda: next((c for c in bot.api.sent(STAFF) if c.text and c.text.startswith("发送完成")), None), timeout=60)
    elapsed = time.perf_counter() - started
    assert "共 100 位订阅者，成功 99，已屏蔽机器人 1，失败 0" in report.text
    sending = bot.api.calls_to("editMessageText", STAFF)[-1]  # the preview, now "sending", still readable
    assert sending.text.startswith("正在发送给 100 位订阅者") and "<省质监局>" in sending.text
    delivered = [c for c in bot.api.sent() if c.chat_id in subscribers]
    assert sorted(c.chat_id for c in delivered) == [c for c in subscribers if c != blocked]
    assert all(c.text.startswith(ANNOUNCEMENT_HEAD) and "材料请于工作日报送 <省质监局>" in c.text for c in delivered)
    assert bot.store.subscriber_counts() == {"active": 99, "blocked": 1, "unsubscribed": 0}
    # Paced by the rate limiter: 30 at once at most, then 30 a second.
    span = delivered[-1].at - delivered[0].at
    assert span >= (len(delivered) - 30) / 30 * 0.9, span
    print(f"\nbroadcast to 100 (1 blocked): {elapsed:.2f} s, {len(delivered) / max(span, 1e-9):.1f} msg/s")

    # Next time the blocked user is skipped; a second press of the old preview sends nothing.
    bot.api.press(STAFF, preview, preview.buttons[0][1])
    stale = await bot.api.wait_for(lambda: [c for c in bot.api.calls_to("answerCallbackQuery")
                                             if "已失效" in (c.params.get("text") or "")])
    assert stale
    attempts_before = len(bot.api.calls_to("sendMessage", blocked, ok_only=False))
    again = await bot.ask(STAFF, "/broadcast 第二条通知")
    assert "将发送给 99 位订阅者" in again.text
    bot.api.press(STAFF, again, again.buttons[0][1])
    await bot.api.wait_for(lambda: len([c for c in bot.api.sent(STAFF) if (c.text or "").startswith("发送完成")]) == 2,
                           timeout=60)
    last = [c for c in bot.api.sent(STAFF) if c.text.startswith("发送完成")][-1]
    assert "共 99 位订阅者，成功 99，已屏蔽机器人 0，失败 0" in last.text
    assert len(bot.api.calls_to("sendMessage", blocked, ok_only=False)) == attempts_before


async def test_broadcast_cancel_and_failures_do_not_stop_the_rest(staff_bot):
    bot = await staff_bot()
    for chat_id in (61, 62, 63):
        bot.api.chat(chat_id)
        bot.store.subscribe(chat_id)
    bot.store.subscribe(64)  # never talked to the fake server: "chat not found" (400)
    preview = await bot.ask(STAFF, "/broadcast 测试")
    bot.api.press(STAFF, preview, preview.buttons[1][1])  # 取消
    edited = await bot.api.wait_for_call("editMessageText", STAFF)
    assert "已取消" in edited.text
    await bot.api.settle()
    assert not [c for c in bot.api.sent() if c.chat_id in (61, 62, 63)]

    usage = await bot.ask(STAFF, "/broadcast")
    assert usage.text.startswith("用法")
    preview = await bot.ask(STAFF, "/broadcast 测试二")
    bot.api.press(STAFF, preview, preview.buttons[0][1])
    report = await bot.api.wait_for(
        lambda: next((c for c in bot.api.sent(STAFF) if (c.text or "").startswith("发送完成")), None))
    assert "共 4 位订阅者，成功 3，已屏蔽机器人 0，失败 1" in report.text
    assert bot.store.is_subscribed(64)  # a failure is not a block: tried again next time


# -- /subscribe, the deadline reminder, retention -------------------------------------------------------


async def test_subscribe_unsubscribe(staff_bot):
    bot = await staff_bot()
    first = await bot.ask(USER, "/subscribe")
    assert first.text.startswith("已订阅") and "提醒" not in first.text  # the deadline has passed
    assert (await bot.ask(USER, "/subscribe")).text.startswith("您已订阅")
    assert bot.store.active_subscribers() == [USER]
    assert (await bot.ask(USER, "/unsubscribe")).text.startswith("已退订")
    assert (await bot.ask(USER, "/unsubscribe")).text.startswith("您没有订阅")
    assert bot.store.active_subscribers() == []
    assert not bot.app.job_queue.get_jobs_by_name(subscriptions.REMINDER_JOB)


async def test_deadline_reminder_before_the_deadline_once(staff_bot, kb, index_path):
    bot = await staff_bot()
    deps = services(bot)
    deps.assistant = Assistant(kb, Index.open(index_path, kb), today=lambda: BEFORE_DEADLINE)
    due = subscriptions.schedule_reminder(bot.app)
    days = deps.settings.reminder_days_before
    assert due == datetime.combine(kb.meta.deadline - timedelta(days=days), datetime.min.time(),
                                   OFFICE_TZ).replace(hour=9)
    (job,) = bot.app.job_queue.get_jobs_by_name(subscriptions.REMINDER_JOB)
    real = datetime.now(OFFICE_TZ)
    delay = due - datetime.combine(BEFORE_DEADLINE, real.timetz())
    assert abs((job.next_t - datetime.now(UTC)) - delay) < timedelta(minutes=1)

    subscribed = await bot.ask(USER, "/subscribe")
    assert f"前 {days} 天还会提醒您" in subscribed.text
    await job.run(bot.app)
    reminder = await bot.api.wait_for_call("sendMessage", USER, count=2)
    remaining = (kb.meta.deadline - BEFORE_DEADLINE).days
    assert reminder.text.startswith("⏰ 申报截止提醒") and f"还有{remaining}天" in reminder.text
    assert deps.store.load_session(reminder_key(kb.meta.deadline, days), "reminder") is not None
    await job.run(bot.app)  # a second run (a restart, a reload) does not send it again
    assert subscriptions.schedule_reminder(bot.app) is None
    await bot.api.settle()
    assert len(bot.api.sent(USER)) == 2


def test_reminder_due_edges():
    from knowledge.staff.broadcast import reminder_due

    deadline = date(2016, 5, 20)
    morning = datetime(2016, 5, 1, 8, 0, tzinfo=OFFICE_TZ)
    assert reminder_due(deadline, 7, morning) == datetime(2016, 5, 13, 9, 0, tzinfo=OFFICE_TZ)
    late = datetime(2016, 5, 15, 20, 0, tzinfo=OFFICE_TZ)  # started after the reminder day: now
    assert reminder_due(deadline, 7, late) == late
    assert reminder_due(deadline, 0, morning) == datetime(2016, 5, 20, 9, 0, tzinfo=OFFICE_TZ)
    assert reminder_due(deadline, 7, datetime(2016, 5, 20, 23, 0, tzinfo=OFFICE_TZ)) is not None
    assert reminder_due(deadline, 7, datetime(2016, 5, 21, 0, 0, tzinfo=OFFICE_TZ)) is None


async def test_retention_purge_runs_daily(staff_bot):
    bot = await staff_bot(retention_days=30)
    (job,) = bot.app.job_queue.get_jobs_by_name(staff.PURGE_JOB)
    assert job.job.trigger.interval == timedelta(days=1)
    now = datetime.now(UTC)
    bot.store.log_question(user_hash="u", text="旧", outcome="unknown", ts=now - timedelta(days=31))
    bot.store.log_question(user_hash="u", text="新", outcome="unknown", ts=now - timedelta(days=29))
    bot.store.log_feedback(user_hash="u", rating=1, ts=now - timedelta(days=40))
    await job.run(bot.app)
    assert [r["text"] for r in bot.store.db["questions"].rows] == ["新"]
    assert bot.store.db["feedback"].count == 0
