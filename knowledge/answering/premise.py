"""A yes/no question built on a wrong figure gets its "no" first.

"申请书交两份就够了吧？" is answered by the entry on copies ("一式四份"), but the
asker wants a conclusion before the figure. When a yes/no question states a
quantity (份, 个, 年, %, a date) and the answer states quantities of the same
kind, none of which the question's figure agrees with, the reply opens with
不够 / 不行 / 不是. Agreement is never asserted: a figure that matches one
of the answer's (推荐2个, where 1 and 2 both appear) says nothing about the asker.
"""

from __future__ import annotations

import re

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+)"
_UNITS = {"份": "copies", "套": "copies", "个": "count", "项": "count", "家": "count", "年": "years",
          "%": "percent", "成": "tenths", "月": "month"}
_QUANTITY = re.compile(r"(百分之)?" + _NUM + r"\s*(份|套|个|项|家|年|%|成|月)")
_LOWER = re.compile(r"^\s*(?:以上|及以上|或以上)")
_UPPER_AFTER = re.compile(r"^\s*(?:以内|以下|之内)")
_UPPER_BEFORE = re.compile(r"(?:不超过|不多于|最多|至多|控制为|控制在)\s*$")
_YES_NO = re.compile(r"(?:吗|吧|么|嘛|不|没)\s*[?!.]*\s*$|是不是|对不对|行不行|够不够|可不可以|能不能|是否")
_CONCLUDED = re.compile(r"^\s*(?:不|是|能|可以|需要|属于|对|没有|有|够|行|无需)")


def _number(text: str) -> float | None:
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if text in ("十",):
        return 10.0
    if "百" in text or len(text) > 3:
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        return float((_DIGITS.get(tens, 1) if tens else 1) * 10 + (_DIGITS.get(ones, 0) if ones else 0))
    value = 0
    for ch in text:
        if ch not in _DIGITS:
            return None
        value = value * 10 + _DIGITS[ch]
    return float(value)


def quantities(text: str) -> list[tuple[str, float, str]]:
    """(kind, value, bound) for each quantity; bound is "=", ">=" (以上) or "<=" (不超过)."""
    out = []
    for m in _QUANTITY.finditer(text):
        value = _number(m.group(2))
        if value is None:
            continue
        kind = _UNITS[m.group(3)]
        if m.group(1):  # 百分之八十
            kind = "percent"
        if kind == "tenths":
            kind, value = "percent", value * 10
        if kind == "years" and value >= 1000:
            continue  # a calendar year (2016年), not a duration
        if kind == "month" and not 1 <= value <= 12:
            continue
        after, before = text[m.end():m.end() + 4], text[max(0, m.start() - 4):m.start()]
        bound = ">=" if _LOWER.match(after) else "<=" if _UPPER_AFTER.match(after) or _UPPER_BEFORE.search(before) else "="
        out.append((kind, value, bound))
    return out


def _agrees(value: float, stated: tuple[str, float, str]) -> bool:
    _, v, bound = stated
    return value >= v if bound == ">=" else value <= v if bound == "<=" else value == v


def negative_lead(question: str, answer: str) -> str | None:
    """"不够。" / "不行。" / "不是。" when a yes/no question's figure disagrees with every
    figure of the same kind in the answer; None otherwise."""
    if not _YES_NO.search(question) or _CONCLUDED.match(answer):
        return None
    asked = quantities(question)
    if not asked:
        return None
    stated = quantities(answer)
    for kind, value, _ in asked:
        same = [s for s in stated if s[0] == kind]
        if not same or any(_agrees(value, s) for s in same):
            return None
    if "够" in question:
        return "不够。"
    if re.search(r"可以|行|能|就好|就成", question):
        return "不行。"
    return "不是。"


# "没有县里的支持也能报吗？" asks the necessary-condition entry ("需要。……") upside down:
# the conclusion the asker needs is 不能.
_NEEDS = ("需要", "有要求", "须", "必须")
_WITHOUT_YET_CAN = re.compile(r"(?:没有|没|不|无|未)[^,.;?!]{0,14}?(?:也|还|就)?(?:能|可以|行|成)[^,.;]{0,6}$")


def flipped_conclusion(question: str, conclusion: str) -> str | None:
    """不能, when a yes/no question asks whether one may go without what the entry says is needed."""
    if conclusion not in _NEEDS or not _YES_NO.search(question):
        return None
    body = re.sub(r"[?!.\s]+$", "", question)
    body = re.sub(r"(?:吗|吧|么|嘛)$", "", body)
    return "不能" if _WITHOUT_YET_CAN.search(body) else None


# "没建联席会议的就不能推荐了吗？" fears a door is shut; an entry that explains the way
# (no conclusion of its own, or a positive one) answers it 不是.
_SHUT = re.compile(r"(?:就|便)\s*(?:不能|没法|无法|不可以|不行)")
_POSITIVE = ("", "可以", "能", "属于", "属于所列领域")


def reassuring_lead(question: str, conclusion: str) -> str | None:
    """不是。 when a yes/no question asks whether something is ruled out and the entry says how it is done."""
    shut = _SHUT.search(question) and _YES_NO.search(question)
    return "不是。" if conclusion in _POSITIVE and shut else None
