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
          "%": "percent", "成": "tenths", "月": "month", "批": "batch"}
_QUANTITY = re.compile(r"(百分之|第)?" + _NUM + r"\s*(份|套|个|项|家|年|%|成|月|批)")
# A calendar day ("5月25号", "5月20日"): compared as month * 100 + day.
_DAY = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(?:日|号)")
# "一个市" / "一家单位": a determiner, not a figure, when the question states another one.
_DETERMINER = re.compile(r"^[一每](?:个|家|项)$")
# A document number ("鄂质监标函〔2016〕76号", normalised to "(2016)76号"): compared as year * 1000 + number.
_DOC_NUMBER = re.compile(r"[〔\[(（【]\s*(\d{4})\s*[〕\])）】]\s*(\d{1,4})\s*号")
# A phone number: a run of 7 or 8 digits.
_PHONE = re.compile(r"(?<!\d)\d{7,8}(?!\d)")
_LOWER = re.compile(r"^\s*(?:以上|及以上|或以上)")
_UPPER_AFTER = re.compile(r"^\s*(?:以内|以下|之内)")
_UPPER_BEFORE = re.compile(r"(?:不超过|不多于|最多|至多|控制为|控制在)\s*$")
_YES_NO = re.compile(r"(?:吗|吧|么|嘛|不|没)\s*[?!.]*\s*$|是不是|对不对|行不行|够不够|可不可以|能不能|是否")
# An answer whose first clause already says no ("原则上不行。……").
_NEGATED_START = re.compile(r"^[^，。；,.;]{0,6}(?:不|没有|无需)")
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


def quantities(text: str, determiners: bool = True) -> list[tuple[str, float, str]]:
    """(kind, value, bound) for each quantity; bound is "=", ">=" (以上) or "<=" (不超过).
    `determiners=False` leaves out "一个"/"每家" (一个市), which name no figure."""
    out = []
    days = []
    for m in _DOC_NUMBER.finditer(text):
        days.append((m.start(), m.end()))  # its year and number are no figures of their own
        out.append(("document", int(m.group(1)) * 1000 + int(m.group(2)), "="))
    for m in _DAY.finditer(text):
        month, day = _number(m.group(1)), _number(m.group(2))
        if month is not None and day is not None and 1 <= month <= 12 and 1 <= day <= 31:
            days.append((m.start(), m.end()))
            after, before = text[m.end():m.end() + 3], text[max(0, m.start() - 4):m.start()]
            bound = "<=" if re.match(r"^\s*(?:前|之前|以前)", after) or _UPPER_BEFORE.search(before) else "="
            out.append(("day", month * 100 + day, bound))
    for m in _QUANTITY.finditer(text):
        if any(a <= m.start() < b for a, b in days):
            continue  # the month of a calendar day
        if not determiners and _DETERMINER.match(m.group(0)):
            continue
        value = _number(m.group(2))
        if value is None:
            continue
        kind = _UNITS[m.group(3)]
        if (m.group(1) == "第") != (kind == "batch"):
            continue  # 第三条 is no figure; 两批 is no ordinal
        if m.group(1) == "百分之":  # 百分之八十
            kind = "percent"
        if kind == "tenths":
            kind, value = "percent", value * 10
        if kind == "years" and value >= 1000:
            kind = "calendar_year"  # 2016年 is a date, not a duration
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
    if not _YES_NO.search(question):
        return None
    tail = _CONFIRMING.search(question)
    word = None if tail is None else "不对。" if "对" in tail.group(0) else "不是。" if "是" in tail.group(0) else None
    # An answer that already opens with a no answers a plain question; a claim to confirm
    # ("……3个以上，对吗？") still needs its 不对.
    if word is None and (_CONCLUDED.match(answer) or _NEGATED_START.match(answer)):
        return None
    if word is not None and answer.startswith(word.rstrip("。")):
        return None
    if phone_lead(question, answer):
        return word or "不是。"
    asked = quantities(question)
    if len(asked) > 1:  # "一个市能推荐3个项目吗": the 3 is the figure asked about
        asked = quantities(question, determiners=False) or asked
    if not asked:
        return None
    stated = quantities(answer)
    for kind, value, _ in asked:
        same = [s for s in stated if s[0] == kind]
        if not same or any(_agrees(value, s) for s in same):
            return None
    if word is not None:  # "……3个以上，对吗？" is answered 不对, not 不行
        return word
    if "来得及" in question or "赶得上" in question:
        return "来不及。"
    if "够" in question:
        return "不够。"
    if re.search(r"可以|行|能|就好|就成", question):
        return "不行。"
    return "不是。"


def phone_lead(question: str, answer: str) -> str | None:
    """不是。 when the question states a phone number and the answer gives a different one."""
    asked, stated = set(_PHONE.findall(question)), set(_PHONE.findall(answer))
    return "不是。" if asked and stated and not asked & stated else None


# "没有县里的支持也能报吗？" asks the necessary-condition entry ("需要。……") upside down:
# the conclusion the asker needs is 不能.
_NEEDS = ("需要", "有要求", "须", "必须")
_WITHOUT_YET_CAN = re.compile(r"(?:没有|没|不|无|未)[^,.;?!]{0,14}?(?:也|还|就)?(?:能|可以|行|成)[^,.;]{0,6}$"
                              r"|(?:没有|没|无|未)[^.;?!]{0,16}?,[^.;?!]{0,4}?(?:也|还)(?:能|可以|行|成)[^,.;]{0,8}$")


def flipped_conclusion(question: str, conclusion: str) -> str | None:
    """不能, when a yes/no question asks whether one may go without what the entry says is needed."""
    if conclusion not in _NEEDS or not _YES_NO.search(question):
        return None
    body = re.sub(r"[?!.\s]+$", "", question)
    body = re.sub(r"(?:吗|吧|么|嘛)$", "", body)
    body = re.sub(r",?(?:是|对)$", "", body)  # "……也能当承担单位，是吗"
    return "不能" if _WITHOUT_YET_CAN.search(body) else None


# "没建联席会议的就不能推荐了吗？" fears a door is shut; an entry that explains the way
# (no conclusion of its own, or a positive one) answers it 不是.
_SHUT = re.compile(r"(?:就|便)\s*(?:不能|没法|无法|不可以|不行)")
_POSITIVE = ("", "可以", "能", "属于", "属于所列领域")


def reassuring_lead(question: str, conclusion: str) -> str | None:
    """不是。 when a yes/no question asks whether something is ruled out and the entry says how it is done."""
    shut = _SHUT.search(question) and _YES_NO.search(question)
    return "不是。" if conclusion in _POSITIVE and shut else None


# "企业一律不能申报，对吧？" asks us to confirm a claim. When the claim denies what the entry
# affirms (不能 against 可以, 不需要 against 需要), or narrows what the entry lays out wide
# (只限社区管理吧), the asker needs 不对 / 不是 before the answer.
_CONFIRMING = re.compile(r"(?:吧|对吗|是吗|对吧|是吧|对不对|是不是|没错吧|是这样吗|没错吗)\s*[?!.]*\s*$")
_DENIES = re.compile(r"不能|不可以|不用|不需要|不必|无需|不要求|没有要求|没要求|不算|不行|不受理|没有名额|没有推荐名额|不需")
_NARROWS = re.compile(r"只限|只面向|只针对|仅限|只能是|只能在|一律|随便")
_AFFIRMS = ("可以", "能", "需要", "有要求", "属于", "属于所列领域", "要", "是")


def claim_lead(question: str, conclusion: str, answer: str) -> str | None:
    """不对。/ 不是。 when a confirmation question's claim contradicts the entry's conclusion."""
    tail = _CONFIRMING.search(question)
    if tail is None:
        return None
    body = question[:tail.start()]
    lead = "不对。" if "对" in tail.group(0) else "不是。"
    positive = conclusion.startswith(_AFFIRMS) and not conclusion.startswith("不")
    if _DENIES.search(body) and positive:
        return lead
    if _NARROWS.search(body) and not re.search(r"只有.{1,20}才", body) and (positive or not conclusion) \
            and not answer.startswith("不"):
        return lead
    return None


# "县里的卫计局能当指导单位吗？" is answered by "指导单位为市州以上……县级部门不在“市州以上”之列":
# when the answer rules out a level of government the question names, the asker needs 不能 first.
_EXCLUDED = re.compile(r"([^，。；]{1,20}?)不在[“\"]?[^”\"，。]{1,10}[”\"]?之列")
_LEVELS = ("县", "乡", "镇", "街道", "村", "社区", "个人")
_MAY = re.compile(r"(?:能|可以|可不可以|能不能|行)[^,.;]{0,12}(?:吗|吧|么|不)?\s*[?!.]*\s*$")


def excluded_lead(question: str, answer: str) -> str | None:
    """不能。 (一般不能。 where the notice says 一般) when a yes/no question asks whether a level the answer
    places outside the rule may do something."""
    if not _MAY.search(question) or _NEGATED_START.match(answer) or "以上" in question:
        return None
    for m in _EXCLUDED.finditer(answer):
        levels = [w for w in _LEVELS if w in m.group(1)]
        if any(w in question for w in levels):
            return "一般不能。" if "一般" in answer[:m.start()] else "不能。"
    return None


# "推荐单位收到材料直接转报就行，不用审查，是吗？" claims that something is not needed. An answer
# that requires what the claim waives ("要……认真审查") answers it 不是, unless the answer itself
# leaves it optional ("参加单位可有可无").
_WAIVES = re.compile(r"不用|不需要|不需|不必|无需|不要求|没必要|用不着")
_OPTIONAL = re.compile(r"可有可无|不需要|不需|无需|不必|不用|不要求|没有要求|没有规定|没有提到|没有写明|未规定|可以不|"
                       r"不是必须|非必须|不强制|自愿")
# Pairs of characters too common in this notice to show that an answer speaks of the waived thing.
_COMMON = frozenset({"标准", "准化", "试点", "单位", "申报", "项目", "通知", "推荐", "材料", "工作", "就行", "可以",
                     "什么", "这些", "那些", "一下", "是否", "是不", "不是"})
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")


def _pairs(text: str) -> set[str]:
    return {run[i:i + 2] for run in _HAN_RUN.findall(text) for i in range(len(run) - 1)} - _COMMON


def requirement_lead(question: str, conclusion: str, answer: str) -> str | None:
    """不是。/ 不对。 when a yes/no question claims that something is not needed and the answer
    speaks of it without making it optional (and without a "no" of its own)."""
    if not (_YES_NO.search(question) or _CONFIRMING.search(question)):
        return None
    if conclusion.startswith("不") or _NEGATED_START.match(answer) or _OPTIONAL.search(answer):
        return None
    tail = _CONFIRMING.search(question)
    body = question[:tail.start()] if tail else question
    for m in _WAIVES.finditer(body):
        # What is waived: the few characters after the marker ("不用审查") or, when the
        # clause ends there, before it ("场所设施设备这些不用管").
        after = re.split(r"[,.;?!，。；？！]", body[m.end():])[0][:8]
        before = re.split(r"[,.;?!，。；？！]", body[:m.start()])[-1][-8:]
        waived = _pairs(after) or _pairs(before)
        if waived and waived & _pairs(answer):
            return "不对。" if tail and "对" in tail.group(0) else "不是。"
    return None
