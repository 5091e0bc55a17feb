"""Issue 9, "Faithful to the letter": answers, citations and notes say what the notice says, no more.

Each test here fails on the text the issue found (quoted in the test where it is a kb check rule).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.errors import KnowledgeError
from knowledge.loader import EDITOR_MARKERS, load_knowledge
from knowledge.reply import Outcome
from tests.conftest import edit


def refused(data_dir: Path, file: str, entry: str, field: str) -> KnowledgeError:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(data_dir)
    err = info.value
    assert (err.file, err.entry, err.field) == (file, entry, field), str(err)
    return err


def clause_of(doc: dict, cid: str) -> dict:
    return next(c for c in doc["clauses"] if c["id"] == cid)


def entry_of(doc: dict, eid: str) -> dict:
    return next(e for e in doc["entries"] if e["id"] == eid)


def set_clause(cid: str, **fields):
    return lambda doc: clause_of(doc, cid).update(fields)


def set_entry(eid: str, **fields):
    return lambda doc: entry_of(doc, eid).update(fields)


# -- N2, N3: notice.yaml text is the notice's words; editor's notes are apart -----------------------


def test_no_clause_text_holds_an_editors_note(kb):
    for clause in kb.clauses.values():
        assert not any(marker in clause.text for marker in EDITOR_MARKERS), clause.id
    assert kb.clauses["联系"].text.endswith("*******hbbzhc@163.com")
    assert "星号" in kb.clauses["联系"].note
    assert not kb.clauses["附件.二"].text.startswith("表格栏目")
    assert kb.clauses["附件.三.3"].text.endswith("或者标准化行")
    assert "中断" in kb.clauses["附件.三.3"].note


@pytest.mark.parametrize(("cid", "old_text"), [
    ("联系", "联系人：许钦祥　87710317　邮箱：*******hbbzhc@163.com（来源文本中邮箱前几位被星号遮挡）"),
    ("附件.二", "表格栏目：步骤；时间；阶段性工作内容；负责及参与的单位/部门。"),
    ("附件.三.3", "保证单位（签署意见并签字盖章）（一般为试点属地县区以上人民政府、行业主管部门或者标准化行……）"
                "〔来源文本在此处中断，其后内容（包括业务指导单位及管理单位意见栏）未能看到。〕"),
])
def test_kb_check_refuses_an_editors_note_in_clause_text(data_dir, cid, old_text):
    edit(data_dir, "notice.yaml", set_clause(cid, text=old_text))
    refused(data_dir, "notice.yaml", cid, "text")


def test_original_view_shows_the_note_apart_from_the_words(assistant):
    text = assistant.clause_text("联系")
    words, note = text.splitlines()[1:3]
    assert "遮挡" not in words and words.startswith("联系人：许钦祥")
    assert note.startswith("〔注：") and "遮挡" in note
    assert "〔注：" in assistant.clause_reply("附件.三.3").text


# -- N1: citations a reader can find --------------------------------------------------------------


def test_labels_cite_what_the_reader_sees(kb):
    for cid in ("三.1", "三.2", "三.3", "一.1", "一.2", "一.3"):
        label = kb.clause_label(cid)
        assert "款" not in label and "第1项" not in label, label
    assert kb.clause_label("三") == "通知第三条（试点项目申报条件）"
    assert kb.clause_label("四.3") == "通知第四条第3项"


@pytest.mark.parametrize(("cid", "label"), [
    ("三.1", "通知第三条第1款"),
    ("三.2", "通知第三条“具有良好的标准化基础……”"),  # a quote the clause does not contain
])
def test_kb_check_refuses_an_unfindable_label(data_dir, cid, label):
    edit(data_dir, "notice.yaml", set_clause(cid, label=label))
    refused(data_dir, "notice.yaml", cid, "label")


def test_kb_check_refuses_an_answer_citing_numbered_paragraphs_of_article_three(data_dir):
    edit(data_dir, "faq.yaml", set_entry("cond_integrity", answer="有要求：见通知第三条第2款。"))
    refused(data_dir, "faq.yaml", "cond_integrity", "answer")


# -- F8: every cited clause has text ------------------------------------------------------------


def test_every_cited_clause_has_text(kb):
    for entry in kb.entries.values():
        for cid in entry.clauses:
            assert kb.clauses[cid].text, (entry.id, cid)
    assert "附件.三.1" in kb.entries["seals"].clauses


def test_kb_check_refuses_citing_a_clause_without_text(data_dir):
    edit(data_dir, "notice.yaml", set_clause("附件.三", text="",
                                             title="试点承担单位、参加单位、保证单位、业务指导单位及管理单位意见"))
    edit(data_dir, "faq.yaml", set_entry("seals", clauses=["四.1", "附件.三"]))
    refused(data_dir, "faq.yaml", "seals", "clauses")


# -- F7: yes/no entries begin with their conclusion ------------------------------------------------


def test_yes_no_entries_begin_with_their_conclusion(kb):
    for entry in kb.entries.values():
        if entry.covered and entry.question.rstrip("？").endswith("吗"):
            assert entry.conclusion and entry.answer.startswith(entry.conclusion), entry.id
    assert kb.entries["cond_support_level"].answer.startswith("不可以。")


def test_kb_check_refuses_a_yes_no_entry_without_conclusion(data_dir):
    old = ("通知要求获当地“县级以上”党政机关或主管部门支持；乡镇（街道）一级不属于县级以上党政机关。"
           "保证单位一般也为试点属地县区以上人民政府、行业主管部门等。")
    edit(data_dir, "faq.yaml", lambda doc: entry_of(doc, "cond_support_level").pop("conclusion"))
    edit(data_dir, "faq.yaml", set_entry("cond_support_level", answer=old))
    refused(data_dir, "faq.yaml", "cond_support_level", "conclusion")


def test_kb_check_refuses_an_answer_not_starting_with_its_conclusion(data_dir):
    edit(data_dir, "faq.yaml", set_entry("cond_support_level", answer="通知要求获当地“县级以上”党政机关支持。"))
    refused(data_dir, "faq.yaml", "cond_support_level", "answer")


# -- F2: no figure the notice does not state -----------------------------------------------------


def test_quota_answer_states_only_the_notice_quotas(assistant):
    entry = assistant.answer_entry("quota_exceed").text
    assert "3个" not in entry and "每批控制为1个" in entry and "不超过2个" in entry
    for question in ("我们市推荐2个项目行吗", "市里想多推几个行吗"):
        reply = assistant.answer(question)
        assert "3个" not in reply.text, question
        # Answered (or offered) from the quota entries, never from elsewhere.
        assert set(reply.faq_ids) & {"quota_exceed", "quota_city"}, question


def test_kb_check_refuses_a_figure_no_cited_clause_states(data_dir):
    old = ("原则上不行。通知规定各市州、省直管市、神农架林区推荐项目原则上每批控制为1个"
           "（省联席会议成员单位每批不超过2个），推荐3个超出这一名额。")
    edit(data_dir, "faq.yaml", set_entry("quota_exceed", answer=old))
    refused(data_dir, "faq.yaml", "quota_exceed", "answer")


# -- F5: the deadline's year is the date line's --------------------------------------------------


def test_deadline_year_is_not_presented_as_the_notice_words(assistant):
    for reply in (assistant.answer_entry("deadline"), assistant.deadline()):
        assert "5月20日前" in reply.text and "2016年5月20日前" not in reply.text
        assert "落款" in reply.text


def test_kb_check_refuses_the_year_written_into_the_deadline(data_dir):
    old = ("申报推荐纸质材料并电子档文件须于2016年5月20日前报省联席会议办公室（设在省质监局标准化处），"
           "逾期不再受理。{deadline_status}")
    edit(data_dir, "faq.yaml", set_entry("deadline", answer=old))
    refused(data_dir, "faq.yaml", "deadline", "answer")


# -- F1, F3, F4, F9/S11, F10, F11 -----------------------------------------------------------


def test_coverage_80_percent_is_a_target_not_an_entry_condition(assistant):
    reply = assistant.answer("我们现在覆盖率只有50%，还能申报吗")
    assert reply.faq_id == "coverage_rate"
    assert "达不到" not in reply.text
    assert "不是申报门槛" in reply.text and "具有一定的标准化工作基础" in reply.text


def test_four_copies_is_said_of_the_form_only(assistant):
    reply = assistant.answer("推荐函也要一式四份吗")
    if reply.outcome is Outcome.AMBIGUOUS:  # a menu: the user taps its first option
        reply = assistant.answer_entry(reply.faq_ids[0])
    assert reply.faq_id in ("copies", "recommendation_letter")
    assert "说的是申请书表格" in reply.text and "没有规定推荐函的份数" in reply.text
    copies = assistant.answer_entry("copies").text
    assert "说的是申请书表格" in copies and "推荐函和其他材料的份数，通知没有规定" in copies


def test_who_submits_is_built_on_the_notice_structure(assistant):
    reply = assistant.answer("申请书直接寄省里还是先交市里")
    assert reply.faq_id == "submit_to"
    assert "没有明确由承担单位还是推荐单位" not in reply.text
    assert "推荐函须附" in reply.text and "逐级推荐" in reply.text and "由推荐单位报送" in reply.text


@pytest.mark.parametrize("question", ["物业公司", "物业公司能申报吗", "小区物业管理能做试点吗"])
def test_property_company_is_not_equated_with_a_listed_field(assistant, question):
    reply = assistant.answer(question)
    assert not reply.text.startswith("属于")
    assert "没有提到物业" in reply.text and "87710317" in reply.text
    assert reply.faq_id == "scope_property"


def test_property_is_not_a_synonym_of_community_management(kb):
    for group in kb.vocabulary.synonyms:
        assert not ("物业" in group and ("社区管理" in group or "公共交通" in group)), group


def test_contact_person_is_not_placed_inside_the_office(assistant):
    reply = assistant.answer("入选有奖金吗")
    assert "联系人许钦祥，电话87710317" in reply.text
    assert "标准化处）：联系人" not in reply.text


def test_joint_conference_answer_states_no_inference(assistant):
    text = assistant.answer_entry("joint_conference").text
    assert text.startswith("通知没有解释“联席会议”")
    assert "指社会管理和公共服务标准化联席会议" not in text


# -- coverage gaps --------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "faq_id", "words"), [
    ("凡新申报的项目是什么意思", "new_project_review", "凡新申报的项目，联席会议办公室在初审的基础上"),
    ("申请书上的事故栏和申报条件说的事故有什么区别", "accident_condition_vs_form", "近3年来有无质量、安全、环保事故"),
    ("所属行业怎么填", "form_industry", "“所属行业”一栏"),
    ("经济类型填什么", "form_economic_type", "“经济类型”一栏"),
    ("业务范围怎么写", "form_business_scope", "“业务范围”一栏"),
    ("组织机构代码填什么", "form_org_code", "“组织机构代码”一栏"),
    ("神农架林区以什么名义推荐", "recommend_direct_city", "通知没有单独规定"),
])
def test_coverage_gaps_have_their_own_answers(assistant, question, faq_id, words):
    reply = assistant.answer(question)
    assert reply.faq_id == faq_id
    assert words in reply.text
