"""The answering engine's paths, on the real knowledge base."""

import random
from datetime import date

import pytest

from knowledge.answering.index import Index
from knowledge.assistant import Assistant
from knowledge.reply import Outcome
from tests.conftest import AFTER_DEADLINE, BEFORE_DEADLINE

CONTACT_PHONE = "87710317"


def test_confident_answer_cites_clause_and_offers_related(assistant):
    reply = assistant.answer("申报截止时间是什么时候？")
    assert reply.outcome is Outcome.ANSWERED
    assert "5月20日" in reply.text
    assert "依据：通知第四条第3项" in reply.text
    assert "四.3" in reply.clauses
    assert reply.faq_id in assistant.kb.entries
    assert 0 < len(reply.buttons) <= 3
    assert all(b.action.startswith("ask:") for b in reply.buttons)


@pytest.mark.parametrize("question, fact", [
    ("申報截止日期是哪天？", "5月20日"),          # traditional characters
    ("申请书要交几份", "四份"),
    ("行业协会能不能申抱？", "法人"),             # typo
    ("ＤＥＡＤＬＩＮＥ是哪天", "5月20日"),        # full-width English
    ("你好，请问几号截止？", "5月20日"),          # greeting before the question
])
def test_registers_are_understood(assistant, question, fact):
    reply = assistant.answer(question)
    assert reply.outcome is Outcome.ANSWERED, reply.text
    assert fact in reply.text


def test_ambiguous_question_lists_candidates(assistant):
    reply = assistant.answer("单位")
    assert reply.outcome is Outcome.AMBIGUOUS, reply.text
    assert reply.text.startswith("您是想问：")
    assert 2 <= len(reply.buttons) <= 3
    assert reply.faq_id is None
    for button in reply.buttons:
        entry_id = button.action.removeprefix("ask:")
        assert assistant.kb.entries[entry_id].question == button.label


@pytest.mark.parametrize("question", ["武汉今天天气怎么样？", "帮我写首诗呗", "股票明天会涨吗"])
def test_off_topic_is_not_covered_with_contact(assistant, question):
    reply = assistant.answer(question)
    assert reply.outcome is Outcome.UNKNOWN
    assert CONTACT_PHONE in reply.text
    assert "没有" in reply.text


@pytest.mark.parametrize("question, invented", [
    ("入选试点后能拿到多少补贴资金？", "万元"),
    ("评审打分标准是什么，满分多少？", "100分"),
    ("第三批试点什么时候开始申报？", "2017"),
])
def test_silent_topics_are_not_invented(assistant, question, invented):
    reply = assistant.answer(question)
    assert reply.outcome is Outcome.UNKNOWN, reply.text
    assert CONTACT_PHONE in reply.text
    assert invented not in reply.text


def test_masked_email_is_not_guessed(assistant):
    reply = assistant.answer("邮箱地址是多少")
    assert "*******hbbzhc@163.com" in reply.text


def test_two_part_question_gets_both_answers(assistant):
    reply = assistant.answer("截止时间和联系电话")
    assert reply.outcome is Outcome.ANSWERED
    assert "5月20日" in reply.text and CONTACT_PHONE in reply.text
    assert len(reply.faq_ids) == 2


def test_single_question_with_comma_is_not_split(assistant):
    reply = assistant.answer("我们是一家社区养老服务中心，属于试点范围吗？")
    assert reply.outcome is Outcome.ANSWERED
    assert len(reply.faq_ids) == 1
    assert "健康和养老" in reply.text or "社区管理" in reply.text  # a community elderly-care centre: both fields fit


def test_deadline_status_against_the_clock(kb, index_path):
    after = Assistant(kb, Index.open(index_path, kb), today=lambda: AFTER_DEADLINE).answer("截止时间")
    before = Assistant(kb, Index.open(index_path, kb), today=lambda: BEFORE_DEADLINE).answer("截止时间")
    on_day = Assistant(kb, Index.open(index_path, kb), today=lambda: date(2016, 5, 20)).deadline()
    assert "已于2016年5月20日截止" in after.text and "还有" not in after.text
    assert "还有19天" in before.text and "已于" not in before.text
    assert "今天（2016年5月20日）就是截止日" in on_day.text


@pytest.mark.parametrize("text, intent_word", [("你好", "您好"), ("谢谢！", "不客气"), ("你能做什么？", "资格自测")])
def test_small_talk(assistant, text, intent_word):
    reply = assistant.answer(text)
    assert reply.outcome is Outcome.SMALLTALK
    assert intent_word in reply.text


@pytest.mark.parametrize("text", ["", "   ", "？？？", "😀😀", "\x00\x01", "的了吗"])
def test_empty_or_meaningless_input_gets_a_prompt(assistant, text):
    reply = assistant.answer(text)
    assert reply.outcome is Outcome.UNKNOWN
    assert "请用文字描述您的问题" in reply.text


def test_never_raises_on_hostile_input(assistant):
    rng = random.Random(3)
    samples = ['"', "AND OR NOT", "NEAR(申报 截止)", "申报*", "截止\"时间", "a" * 5000, "截" * 5000,
               "'; drop table docs; --", "\ud7ff\ue000", "{deadline_status}", "%s%s%s"]
    alphabet = "申报截止时间的了吗?!,.\"'*()NEAR AND 0123456789abc😀　"
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    for text in samples:
        reply = assistant.answer(text)
        assert isinstance(reply.text, str) and reply.text
        assert len(reply.text) <= 600


def test_every_entry_answers_its_own_canonical_question(assistant):
    wrong = []
    for entry in assistant.kb.entries.values():
        reply = assistant.answer(entry.question)
        if entry.id not in reply.faq_ids:
            wrong.append((entry.id, reply.outcome.value, reply.faq_ids))
    assert not wrong


def test_button_replies(assistant):
    entry = next(iter(assistant.kb.entries.values()))
    assert assistant.answer_entry(entry.id).faq_id == entry.id
    assert "不在知识库" in assistant.answer_entry("no_such_entry").text
    clause = assistant.clause_reply("四")
    assert "通知第四条第3项" in clause.text and "逾期不再受理" in clause.text
    assert "没有编号" in assistant.clause_reply("九").text
    assert assistant.topics() and all(assistant.topic_questions(tid) for tid, _ in assistant.topics())
    assert CONTACT_PHONE in assistant.contact().text
    assert [b.action for b in assistant.welcome().buttons] == ["cmd:faq", "cmd:check", "cmd:deadline", "cmd:contact"]


def test_inline_search_returns_answers_only(assistant):
    results = assistant.search("截止", limit=3)
    assert 1 <= len(results) <= 3
    assert all(r.outcome is Outcome.ANSWERED and "依据：" in r.text for r in results)


@pytest.mark.parametrize("question", ["截止时间", "截止日期"])
def test_a_short_question_whose_candidates_saturate_is_ordered_by_its_words(assistant, question):
    # Several deadline entries score near 1 on a two-word question; the plain one is meant.
    assert assistant.answer(question).faq_id == "deadline"
