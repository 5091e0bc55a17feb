"""Issue 9: self-check verdicts, typed answers, citations and the 申请书 say what the notice says."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
import yaml
from docx import Document

from bot.console import ConsoleSession
from knowledge.errors import KnowledgeError
from knowledge.selfcheck.application_form import OPINIONS, SOURCE_NOTE, build_application_form
from knowledge.selfcheck.flow import DEFAULT_PATH, SelfCheck, load_flow, load_selfcheck
from tests.test_selfcheck_e2e import expected_state, step_text_of

AFTER = date(2026, 11, 28)
GOOD = {
    "org_type": "public_inst", "public_function": "yes", "legal_person": "yes", "field": "education",
    "std_basis": "yes", "accident": "none", "credit": "good", "support": "yes", "channel": "city_joint",
}
EXACT_ACCIDENT = "三年内未发生管理和服务方面的严重问题或者事故"


@pytest.fixture(scope="module")
def sc(kb) -> SelfCheck:
    return load_selfcheck(kb)


def at(sc: SelfCheck, step: str) -> dict:
    state = sc.start()
    while state["step"] != step:
        state = sc.answer(state, GOOD[state["step"]])
    return state


def verdict_of(sc: SelfCheck, kb, **overrides: str):
    state = sc.start()
    while not state["done"]:
        state = sc.answer(state, overrides.get(state["step"], GOOD[state["step"]]))
    return sc.verdict(state, AFTER, kb.meta)


# -- S1: typed answers read the way the buttons mean them, and echoed ---------------------------


@pytest.mark.parametrize("text", [
    "只有乡镇政府支持", "街道办支持，县里还没表态", "镇政府支持", "乡里支持我们", "村里支持", "社区居委会很支持",
    "街道已经同意了", "获得了乡镇党委的支持", "有，乡镇支持", "已获得支持（街道）",
])
def test_support_below_county_level_is_never_read_as_obtained(sc, text):
    reading = sc.read_text(at(sc, "support"), text)
    assert reading.option_id != "yes"
    assert reading.option_id is None
    assert "县级以上" in reading.note and "不算在内" in reading.note


@pytest.mark.parametrize(("text", "option", "label"), [
    ("县政府已经支持了", "yes", "已获得支持"),
    ("正在争取", "pending", "正在争取"),
    ("没有获得", "no", "没有获得"),
    ("1", "yes", "已获得支持"),
])
def test_typed_answer_is_echoed(sc, text, option, label):
    reading = sc.read_text(at(sc, "support"), text)
    assert reading == (option, f"您选择的是：{label}")


def test_console_echoes_and_asks_again_below_county_level(assistant):
    session = ConsoleSession(assistant)
    session.handle("/check")
    out = session.handle("事业单位")
    assert out.startswith("您选择的是：事业单位\n\n")
    for text in ("有", "有法人资格", "教育", "有一定基础", "没有发生过", "良好"):
        session.handle(text)
    sc = assistant.selfcheck
    assert session.interview["step"] == "support"
    out = session.handle("只有乡镇政府支持")
    assert "县级以上" in out and "已获得支持" in out  # the note, then the question again
    assert session.interview["step"] == "support" and "support" not in session.interview["answers"]
    assert out.endswith(sc.render_step(sc.view(session.interview)))


async def test_telegram_asks_again_below_county_level(bot, sc):
    await bot.ask(1901, "/check")
    for text in ("事业单位", "有", "有法人资格", "教育", "有一定基础", "没有发生过", "良好"):
        await bot.ask(1901, text)
    reply = await bot.ask(1901, "街道办支持，县里还没表态")
    state = expected_state(sc, {k: GOOD[k] for k in list(GOOD)[:7]})  # still at the support step
    assert reply.text.startswith("您提到了乡镇、街道、村或社区一级")
    assert reply.text.endswith(step_text_of(sc, state))
    assert bot.store.db["questions"].count == 0  # not treated as a question


# -- S2: the same fact gets the same reading ------------------------------------------------------


@pytest.mark.parametrize("text", ["没有严重事故，但有过一次小事故", "发生过一起轻微事故", "出过一次小事故",
                                  "发生过小问题", "有过事故，不算严重"])
def test_minor_accidents_are_read_alike(sc, text):
    assert sc.match_text(at(sc, "accident"), text) == "minor"


def test_minor_accident_gives_caution_with_the_exact_words_and_contact(sc, kb):
    v = verdict_of(sc, kb, accident="minor")
    assert v.status == "caution" and v.reasons == ()
    assert [r.id for r in v.open_items] == ["accident_severity"]
    text = sc.render_verdict(v)
    assert EXACT_ACCIDENT in text and "87710317" in text


# -- S3: open necessary conditions are said to be open ----------------------------------------------


@pytest.mark.parametrize("overrides", [
    {"support": "pending"},
    {"support": "unsure"},
    {k: "unsure" for k in ("public_function", "legal_person", "std_basis", "accident", "credit", "support")},
])
def test_open_necessary_conditions_are_not_no_problem_found(sc, kb, overrides):
    v = verdict_of(sc, kb, **overrides)
    text = sc.render_verdict(v)
    assert v.status == "caution"
    assert "未发现不符合的条件" not in text and "基本符合" not in text
    assert "须在申报前满足" in text
    assert len(v.open_items) == len(overrides)
    assert len(text) < 1500


def test_a_point_to_watch_alone_keeps_the_caution_wording(sc, kb):
    v = verdict_of(sc, kb, field="other")
    assert v.title == "基本符合，但需注意" and v.open_items == ()


# -- S11: 物业公司 is not read as any listed field or type ------------------------------------------


def test_property_company_at_step_one_is_explained_not_answered_as_transport(sc, assistant):
    reading = sc.read_text(sc.start(), "物业公司")
    assert reading.option_id is None and "没有提到物业" in reading.note
    assert sc.read_text(at(sc, "field"), "物业管理").option_id is None
    session = ConsoleSession(assistant)
    session.handle("/check")
    out = session.handle("物业公司")
    assert "公共交通" not in out and "属于。" not in out
    assert session.interview["step"] == "org_type"


# -- S4, S5, S7: citations of the checklist and the channels ----------------------------------------


def test_guarantor_and_guide_wordings_are_cited_where_they_stand(sc, kb):
    materials = sc.verdict(at_end(sc), AFTER, kb.meta).materials
    guarantor = next(m for m in materials if m.startswith("保证单位"))
    cover, duty, box = kb.clause_label("附件.封面"), kb.clause_label("四.1"), kb.clause_label("附件.三.3")
    assert f"保证单位签署意见并加盖印章（依据：{duty}）" in guarantor
    assert f"“试点项目所在地政府、行业主管部门或质监局”（依据：{cover}）" in guarantor
    assert f"或者标准化行”（来源文本在此中断）（依据：{box}）" in guarantor
    guide = next(m for m in materials if m.startswith("指导单位"))
    assert f"指导单位签署意见并加盖印章（依据：{duty}）" in guide


def at_end(sc: SelfCheck) -> dict:
    state = sc.start()
    while not state["done"]:
        state = sc.answer(state, GOOD[state["step"]])
    return state


def broken_flow(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "selfcheck.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_kb_check_refuses_a_wording_cited_to_a_clause_that_lacks_it(tmp_path, kb):
    def merge(doc):  # the cover's wording under the opinion box's citation (S4)
        doc["materials"].append({"text": "保证单位：“试点项目所在地政府、行业主管部门或质监局”", "clause": "附件.三.3"})
    with pytest.raises(KnowledgeError) as info:
        load_flow(broken_flow(tmp_path, merge), kb.clauses)
    assert info.value.field == "parts"


def test_kb_check_refuses_an_unfindable_citation_in_help(tmp_path, kb):
    def old_help(doc):
        doc["steps"][0]["help"] = "通知第三条第1款规定：试点承担单位应为……"
    with pytest.raises(KnowledgeError) as info:
        load_flow(broken_flow(tmp_path, old_help), kb.clauses)
    assert (info.value.entry, info.value.field) == ("org_type", "help")


def test_city_naming_rule_is_not_extended_to_directly_administered_cities(sc, kb):
    for cid in ("city_joint", "city_no_joint", "city_unsure"):
        assert "省直管市" not in sc.flow.channels[cid].name and "神农架" not in sc.flow.channels[cid].name
    for step in sc.flow.steps:
        for option in step.options:
            if option.channel in ("city_joint", "city_no_joint"):
                assert "省直管市" not in option.label
    assert sc.match_text(at(sc, "channel"), "仙桃") == "direct_city"
    v = verdict_of(sc, kb, channel="direct_city")
    assert v.status == "caution" and [r.id for r in v.cautions] == ["channel_direct_city"]
    text = sc.render_verdict(v)
    assert "没有写省直管市、神农架林区以什么名义推荐" in text and "87710317" in text
    assert "每批控制为1个" in v.quota


# -- F5, F10 in the verdict -----------------------------------------------------------------------


def test_verdict_deadline_and_contact_say_what_the_notice_says(sc, kb):
    v = verdict_of(sc, kb)
    assert "“5月20日前”" in v.deadline and "2016年5月20日前" not in v.deadline and "落款" in v.deadline
    assert v.contact == "联系人许钦祥，电话87710317。"


# -- the 申请书 -----------------------------------------------------------------------------------


def test_guarantor_note_is_the_text_as_it_stands_with_the_cut_marked():
    note = dict(OPINIONS)["保证单位意见"]
    assert note.endswith("或者标准化行〔来源文本在此中断〕")
    assert "标准化行政主管部门" not in note
    assert "未作补全" in SOURCE_NOTE and "补全；" not in SOURCE_NOTE


def test_form_leaves_economic_type_and_accident_field_blank(sc):
    buffer = io.BytesIO()
    build_application_form(sc.form_answers(at_end(sc)), "某单位", buffer)
    buffer.seek(0)
    doc = Document(buffer)
    cells = {row.cells[n].text: row.cells[n + 1].text for row in doc.tables[0].rows for n in range(len(row.cells) - 1)}
    assert cells["经济类型"] == "" and cells["近3年来有无质量、安全、环保事故"].strip() == ""
    hints = "\n".join(p.text for p in doc.paragraphs)
    assert "“经济类型”是另一栏" in hints and "不是一回事" in hints

