"""The pre-filled 申请书: it opens with python-docx and follows the notice's form."""

from __future__ import annotations

import io
import re

import pytest
from docx import Document
from docx.oxml.ns import qn

from knowledge.selfcheck.application_form import (
    PART_ONE,
    PART_THREE,
    PART_TWO,
    PLAN_COLUMNS,
    TITLE,
    build_application_form,
    pilot_name,
)
from knowledge.selfcheck.flow import load_selfcheck

UNIT = "武汉市江岸区教育局"
GOOD = {
    "org_type": "public_inst", "public_function": "yes", "legal_person": "yes", "field": "education",
    "std_basis": "yes", "accident": "none", "credit": "good", "support": "yes", "channel": "city_joint",
}


def interview(kb, **overrides: str) -> dict:
    sc = load_selfcheck(kb)
    state = sc.start()
    while not state["done"]:
        state = sc.answer(state, overrides.get(state["step"], GOOD[state["step"]]))
    return sc.form_answers(state)


def build(answers: dict, unit: str | None):
    buffer = io.BytesIO()
    build_application_form(answers, unit, buffer)
    buffer.seek(0)
    return Document(buffer)


def paragraphs(doc) -> list[str]:
    return [p.text for p in doc.paragraphs if p.text.strip()]


def cell_texts(table) -> list[str]:
    return [c.text for row in table.rows for c in row.cells]


def value_after(table, label: str) -> str:
    """The text of the cell right of the cell reading `label`."""
    for row in table.rows:
        cells = row.cells
        for n, cell in enumerate(cells[:-1]):
            if cell.text == label:
                return cells[n + 1].text
    raise AssertionError(f"no cell {label!r}")


@pytest.fixture(scope="module")
def filled(kb):
    return build(interview(kb), UNIT)


def test_cover_is_filled_from_the_interview(filled):
    text = paragraphs(filled)
    assert text[0] == TITLE
    assert f"试点名称：{UNIT}公共教育服务综合标准化试点" in text
    assert f"承担单位：{UNIT}" in text
    assert any(t.startswith("试点时间：2016年") for t in text)
    assert any(t.startswith("保证单位：") and "试点项目所在地政府、行业主管部门或质监局" in t for t in text)
    assert any(t.startswith("指导单位：") and "市州以上行业主管部门或标准化主管部门" in t for t in text)
    assert "2016年　　月　　日" in text


def test_three_parts_in_the_notice_order(filled):
    text = paragraphs(filled)
    assert text.index(PART_ONE) < text.index(PART_TWO) < text.index(PART_THREE)
    assert len(filled.tables) == 3


def test_part_one_has_every_field_of_the_notice(filled, kb):
    fields = [f.strip("。") for f in kb.clauses["附件.一"].text.split("；")]
    assert len(fields) == 15
    labels = cell_texts(filled.tables[0])
    for field in fields:
        assert field in labels


def test_part_one_is_filled_where_the_interview_knows(filled):
    table = filled.tables[0]
    assert value_after(table, "单位名称") == UNIT
    # 经济类型 is not the organisation type, and the form's accident field is not the
    # interview's question (管理和服务方面): both are left for the applicant.
    assert value_after(table, "经济类型") == ""
    assert value_after(table, "近3年来有无质量、安全、环保事故").strip() == ""
    for blank in ("组织机构代码", "法人代表", "邮编", "所属行业", "电子邮箱"):
        assert value_after(table, blank) == ""


def test_part_two_columns_and_empty_rows(filled, kb):
    columns = kb.clauses["附件.二"].text.removeprefix("表格栏目：").rstrip("。").split("；")
    table = filled.tables[1]
    assert tuple(columns) == PLAN_COLUMNS
    assert [c.text for c in table.rows[0].cells] == columns
    assert len(table.rows) > 3
    assert all(not c.text.strip() for row in table.rows[1:] for c in row.cells)


def test_part_three_opinions(filled):
    rows = filled.tables[2].rows
    labels = [row.cells[0].text.split("\n")[0] for row in rows]
    assert labels == ["承担单位意见", "参加单位意见", "保证单位意见", "业务指导单位意见", "管理单位意见"]
    assert "可有可无" in rows[1].cells[0].text
    for row in rows:
        assert "签署意见并签字盖章" in row.cells[1].text and "年　　月　　日" in row.cells[1].text


def test_truncation_note_and_hints(filled):
    text = "\n".join(paragraphs(filled))
    assert "来源文本在“保证单位”意见栏处中断" in text
    assert "以联席会议名义推荐" in text  # the recommendation channel, in the hints
    assert "一式四份" in text


def test_chinese_font_is_set(filled):
    normal = filled.styles["Normal"].element.rPr.rFonts
    assert normal.get(qn("w:eastAsia")) == "宋体"
    runs = [r for p in filled.paragraphs for r in p.runs if r.text.strip()]
    assert runs
    for run in runs:
        assert run._element.rPr.rFonts.get(qn("w:eastAsia")) in ("宋体", "黑体")


def test_without_unit_name_the_pattern_stays_blank(kb):
    doc = build(interview(kb), None)
    name = next(t for t in paragraphs(doc) if t.startswith("试点名称："))
    assert name.endswith("公共教育服务综合标准化试点") and "＿" in name
    unit = next(t for t in paragraphs(doc) if t.startswith("承担单位："))
    assert re.fullmatch(r"承担单位：＿+", unit)
    assert value_after(doc.tables[0], "单位名称") == ""


def test_field_not_listed_leaves_the_field_part_to_fill(kb):
    doc = build(interview(kb, field="other"), UNIT)
    name = next(t for t in paragraphs(doc) if t.startswith("试点名称："))
    assert name == f"试点名称：{UNIT}＿＿＿＿＿＿管理（服务）综合标准化试点"


def test_nothing_known_gives_the_blank_form(tmp_path):
    path = tmp_path / "申请书.docx"
    build_application_form({}, None, path)
    doc = Document(str(path))
    assert paragraphs(doc)[0] == TITLE
    assert value_after(doc.tables[0], "经济类型") == ""
    build_application_form({}, None, str(tmp_path / "b.docx"))
    assert (tmp_path / "b.docx").stat().st_size > 0


@pytest.mark.parametrize(("unit", "stem", "expected"), [
    ("甲社区", "社区管理", "甲社区社区管理综合标准化试点"),
    ("乙局", "法律服务", "乙局法律服务综合标准化试点"),
    ("丙公司", "公共交通", "丙公司公共交通管理（服务）综合标准化试点"),
    ("丁中心", None, "丁中心＿＿＿＿＿＿管理（服务）综合标准化试点"),
    (None, None, "＿＿＿＿＿＿＿＿＿＿＿＿管理（服务）综合标准化试点"),
])
def test_pilot_name_pattern(unit, stem, expected):
    assert pilot_name(unit, stem) == expected
