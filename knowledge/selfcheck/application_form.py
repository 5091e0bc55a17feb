"""The 申请书 (《湖北省社会管理和公共服务综合标准化试点申请书》) as a Word document.

Laid out as the form attached to 鄂质监标函〔2016〕76号 (clauses 附件.封面, 附件.一,
附件.二, 附件.三.*), with what the applicant told the self-check filled in and every
other field left blank to complete. The input is plain data, normally
SelfCheck.form_answers(state), so this module knows nothing of the interview.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph

TITLE = "湖北省社会管理和公共服务综合标准化试点申请书"
PART_ONE = "一、试点承担单位基本信息"
PART_TWO = "二、创建工作计划"
PART_THREE = "三、试点承担单位、参加单位、保证单位、业务指导单位及管理单位意见"
PLAN_COLUMNS = ("步骤", "时间", "阶段性工作内容", "负责及参与的单位/部门")
PLAN_ROWS = 6
BLANK = "＿" * 12
FONT = "宋体"
HEADING_FONT = "黑体"
SIGNATURE = "（签署意见并签字盖章）"
DATE_LINE = "年　　月　　日"
# Part three: (row label, note under it). 参加单位 is optional in the form itself. The
# 保证单位 note is the source text as it stands, cut off, with the cut marked (never completed);
# the rows after it are not visible in the source and follow part three's title.
CUT = "〔来源文本在此中断〕"
OPINIONS = (
    ("承担单位意见", ""),
    ("参加单位意见", "（可有可无）"),
    ("保证单位意见", f"（一般为试点属地县区以上人民政府、行业主管部门或者标准化行{CUT}"),
    ("业务指导单位意见", "（封面：市州以上行业主管部门或标准化主管部门）"),
    ("管理单位意见", ""),
)
SOURCE_NOTE = (
    "注：通知所附样表的来源文本在“保证单位”意见栏处中断（止于“或者标准化行”），其后各栏未能看到；"
    "保证单位栏的说明照录来源文本，未作补全。本表“业务指导单位意见”“管理单位意见”两栏按第三部分标题"
    "（试点承担单位、参加单位、保证单位、业务指导单位及管理单位意见）补列，业务指导单位的说明取自封面“指导单位”栏；"
    "如与省联席会议办公室提供的正式样表不一致，以正式样表为准。"
)


def pilot_name(unit_name: str | None, stem: str | None) -> str:
    """试点名称 in the notice's pattern "XXXX管理（服务）综合标准化试点".

    stem is the field's wording (e.g. 公共教育服务, 社区管理); when it already says
    管理 or 服务 the pattern's choice "管理（服务）" is made, otherwise it is left to the user.
    """
    unit = (unit_name or "").strip() or "＿" * 6
    if not stem:
        return f"{unit}{'＿' * 6}管理（服务）综合标准化试点"
    if not stem.endswith(("管理", "服务")):
        stem += "管理（服务）"
    return f"{unit}{stem}综合标准化试点"


def build_application_form(answers: Mapping[str, str], unit_name: str | None,
                           path_or_buffer: str | Path | IO[bytes]) -> None:
    """Write the pre-filled 申请书 (.docx) to a path or a binary buffer.

    answers: plain strings, any of org_type (单位类型, for the hints only: the form's
    经济类型 is another field), field (试点领域), pilot_name (the XXXX管理/服务 part of
    试点名称), channel (推荐渠道); missing keys leave their fields blank. The form's
    "近3年来有无质量、安全、环保事故" is not what the self-check asks (管理和服务方面的
    严重问题或者事故), so it is always left for the applicant. unit_name: the 承担单位's name.
    """
    unit = (unit_name or "").strip()
    doc = Document()
    _setup(doc)
    _cover(doc, unit, answers)
    _page_break(doc)
    _basic_info(doc, unit, answers)
    _plan(doc)
    _opinions(doc)
    _para(doc, SOURCE_NOTE, size=9)
    _hints(doc, answers)
    doc.save(path_or_buffer if not isinstance(path_or_buffer, Path) else str(path_or_buffer))


# -- parts of the form ------------------------------------------------------------------


def _cover(doc, unit: str, answers: Mapping[str, str]) -> None:
    for _ in range(3):
        doc.add_paragraph()
    _para(doc, TITLE, size=22, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, font=HEADING_FONT)
    for _ in range(4):
        doc.add_paragraph()
    fields = (
        ("试点名称", pilot_name(unit or None, answers.get("pilot_name"))),
        ("试点时间", "2016年　　月－201　年　　月"),
        ("承担单位", unit or BLANK),
        ("保证单位", f"{BLANK}（试点项目所在地政府、行业主管部门或质监局）"),
        ("指导单位", f"{BLANK}（市州以上行业主管部门或标准化主管部门）"),
    )
    for label, value in fields:
        p = doc.add_paragraph()
        p.paragraph_format.left_indent = Cm(1.5)
        p.paragraph_format.space_after = Pt(12)
        _run(p, f"{label}：", size=15, bold=True)
        _run(p, value, size=15)
    for _ in range(4):
        doc.add_paragraph()
    _para(doc, "2016年　　月　　日", size=15, align=WD_ALIGN_PARAGRAPH.CENTER)


def _basic_info(doc, unit: str, answers: Mapping[str, str]) -> None:
    _para(doc, PART_ONE, size=14, bold=True, font=HEADING_FONT)
    # (label, value) pairs on one line, or a single (label, value, height in lines) spanning the row.
    rows: tuple[tuple, ...] = (
        ("单位名称", unit, 1),
        (("组织机构代码", ""), ("法人代表", "")),
        ("注册地址", "", 1),
        (("单位地址", ""), ("邮编", "")),
        (("所属行业", ""), ("经济类型", "")),
        (("联系人/电话", ""), ("电子邮箱", "")),
        (("标准化机构或负责部门", ""), ("标准化工作负责人/电话", "")),
        ("业务范围", "", 4),
        ("近3年来有无质量、安全、环保事故", "", 2),
        ("标准化工作现状及试点创建具备的条件（包括经费等保障条件）", "", 12),
    )
    table = doc.add_table(rows=len(rows), cols=4)
    _grid(table, (Cm(3.6), Cm(4.4), Cm(3.6), Cm(4.4)))
    for row, spec in zip(table.rows, rows, strict=True):
        cells = row.cells
        if isinstance(spec[0], tuple):
            for n, (label, value) in enumerate(spec):
                _cell(cells[2 * n], label, bold=True)
                _cell(cells[2 * n + 1], value)
        else:
            label, value, height = spec
            _cell(cells[0], label, bold=True)
            merged = cells[1].merge(cells[3])
            _cell(merged, value, extra_lines=height - 1)


def _plan(doc) -> None:
    doc.add_paragraph()
    _para(doc, PART_TWO, size=14, bold=True, font=HEADING_FONT)
    table = doc.add_table(rows=PLAN_ROWS + 1, cols=len(PLAN_COLUMNS))
    _grid(table, (Cm(1.8), Cm(3.2), Cm(6.6), Cm(4.4)))
    for cell, title in zip(table.rows[0].cells, PLAN_COLUMNS, strict=True):
        _cell(cell, title, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    for row in table.rows[1:]:
        for cell in row.cells:
            _cell(cell, "", extra_lines=1)


def _opinions(doc) -> None:
    doc.add_paragraph()
    _para(doc, PART_THREE, size=14, bold=True, font=HEADING_FONT)
    table = doc.add_table(rows=len(OPINIONS), cols=2)
    _grid(table, (Cm(3.6), Cm(12.4)))
    for row, (label, note) in zip(table.rows, OPINIONS, strict=True):
        _cell(row.cells[0], label, bold=True)
        if note:
            _run(row.cells[0].add_paragraph(), note, size=9)
        body = row.cells[1]
        _cell(body, "", extra_lines=3)
        for text in (SIGNATURE, DATE_LINE):
            p = body.add_paragraph()
            p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            _run(p, text)


def _hints(doc, answers: Mapping[str, str]) -> None:
    """What the self-check learned, for whoever completes the form; not part of the form."""
    _page_break(doc)
    _para(doc, "填写提示（根据资格自测的回答生成，仅供参考，提交前请删除本页）", size=12, bold=True)
    lines = []
    if answers.get("org_type"):
        lines.append(f"单位类型：{answers['org_type']}（“经济类型”是另一栏，已留空，请据实填写）")
    lines.append(f"拟试点领域：{answers['field']}" if answers.get("field")
                 else "拟试点领域：请在试点名称中补全（“XXXX管理（服务）”部分）")
    lines.append("“近3年来有无质量、安全、环保事故”栏已留空：自测问的是申报条件中的“管理和服务方面的严重问题或者事故”，"
                 "与这一栏问的不是一回事，请据实填写")
    if answers.get("channel"):
        lines.append(f"推荐渠道：{answers['channel']}")
    lines += [
        "推荐函须附本申请书，表格一式四份（份数说的是申请书表格）；申请书交推荐单位，附在推荐函后，"
        "纸质材料和电子档文件一并报送省联席会议办公室（设在省质监局标准化处）",
        "承担单位加盖印章；参加单位（如有）、保证单位、指导单位签署意见并加盖印章",
        "未预填的栏目请据实填写",
    ]
    for line in lines:
        _para(doc, f"· {line}", size=10.5)


# -- formatting helpers ---------------------------------------------------------------


def _setup(doc) -> None:
    """A4 page and a Chinese font everywhere, so Word and WPS show the form alike."""
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.5)
    section.top_margin = section.bottom_margin = Cm(2.5)
    for name in ("Normal", "Table Grid"):
        style = doc.styles[name]
        style.font.name = FONT
        _east_asian(style.element.get_or_add_rPr(), FONT)
    doc.styles["Normal"].font.size = Pt(12)


def _east_asian(rpr, font: str) -> None:
    # python-docx's font.name sets only the Latin fonts; Chinese text uses w:eastAsia.
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia"):
        fonts.set(qn(attr), font)


def _run(paragraph: Paragraph, text: str, *, size: float | None = None, bold: bool = False, font: str = FONT):
    run = paragraph.add_run(text)
    run.bold = bold
    if size:
        run.font.size = Pt(size)
    _east_asian(run._element.get_or_add_rPr(), font)
    return run


def _para(doc, text: str, *, size: float | None = None, bold: bool = False,
          align: WD_ALIGN_PARAGRAPH | None = None, font: str = FONT) -> Paragraph:
    p = doc.add_paragraph()
    if align is not None:
        p.alignment = align
    _run(p, text, size=size, bold=bold, font=font)
    return p


def _page_break(doc) -> None:
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)


def _grid(table, widths: tuple) -> None:
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width


def _cell(cell: _Cell, text: str, *, bold: bool = False, extra_lines: int = 0,
          align: WD_ALIGN_PARAGRAPH | None = None) -> None:
    """Write text into a cell's first paragraph; extra_lines adds room to write by hand."""
    p = cell.paragraphs[0]
    if align is not None:
        p.alignment = align
    if text:
        _run(p, text, bold=bold)
    for _ in range(extra_lines):
        cell.add_paragraph()
