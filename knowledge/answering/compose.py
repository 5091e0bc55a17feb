"""Turns decisions into the words a user reads. Plain text only: front doors
add their own markup, and nothing here knows about Telegram."""

from __future__ import annotations

from datetime import date

from knowledge.answering.premise import (
    claim_lead,
    excluded_lead,
    flipped_conclusion,
    negative_lead,
    reassuring_lead,
    requirement_lead,
)
from knowledge.loader import Entry, KnowledgeBase, Meta
from knowledge.reply import Button, Outcome, Reply

START_BUTTONS = (
    Button("常见问题", "cmd:faq"),
    Button("资格自测", "cmd:check"),
    Button("申报截止", "cmd:deadline"),
    Button("联系方式", "cmd:contact"),
)


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def deadline_status(meta: Meta, today: date) -> str:
    """Where today stands against the deadline, in one sentence."""
    deadline = meta.deadline
    if today > deadline:
        return f"按今天（{cn_date(today)}）计算，本批申报已于{cn_date(deadline)}截止，逾期不再受理。"
    if today == deadline:
        return (f"今天（{cn_date(today)}）就是截止日；通知要求“{meta.deadline_wording}”报送，"
                "请尽快与省联席会议办公室确认。")
    days = (deadline - today).days
    return f"按今天（{cn_date(today)}）计算，距截止（{cn_date(deadline)}）还有{days}天。"


def contact_line(meta: Meta) -> str:
    c = meta.contact
    # The notice gives "联系人：许钦祥 87710317" on its own, not as a member of the office.
    return f"联系人{c.person}，电话{c.phone}"


def not_covered_tail(meta: Meta) -> str:
    return f"如需了解，请咨询{contact_line(meta)}。"


def fill(text: str, meta: Meta, today: date) -> str:
    return text.format(
        deadline_status=deadline_status(meta, today),
        today=cn_date(today),
        deadline=cn_date(meta.deadline),
    )


def citation(kb: KnowledgeBase, clause_ids: tuple[str, ...]) -> str:
    return "依据：" + "、".join(kb.clause_label(c) for c in clause_ids) if clause_ids else ""


def entry_reply(kb: KnowledgeBase, entry: Entry, today: date, confidence: float = 1.0,
                also: list[Entry] | None = None, question: str = "") -> Reply:
    """An entry's answer; for an entry the notice does not cover, the honest "not covered" form.
    `also`: the runners-up, offered first among the follow-up buttons (您可能还想问).
    `question`: when given, a yes/no question on a wrong figure gets its "no" first."""
    answer = fill(entry.answer, kb.meta, today)
    if question:
        lead = negative_lead(question, answer)  # a wrong figure is wrong whether or not the entry is covered
        if entry.covered:
            flipped = flipped_conclusion(question, entry.conclusion) if entry.conclusion else None
            if flipped and answer.startswith(entry.conclusion):
                answer = flipped + answer[len(entry.conclusion):]
            lead = (lead or claim_lead(question, entry.conclusion, answer) or excluded_lead(question, answer)
                    or reassuring_lead(question, entry.conclusion)
                    or requirement_lead(question, entry.conclusion, answer))
        if lead and not answer.startswith(lead.rstrip("。")):
            answer = lead + answer
    if entry.covered:
        text = "\n".join(filter(None, (answer, citation(kb, entry.clauses))))
        outcome = Outcome.ANSWERED
    else:
        text = f"{answer}\n{not_covered_tail(kb.meta)}"
        outcome = Outcome.UNKNOWN
    follow = [e.id for e in also or () if e.id != entry.id][:2] + list(entry.related)
    follow = [f for f in dict.fromkeys(follow) if f != entry.id][:3]
    buttons = tuple(Button(kb.entries[r].question, f"ask:{r}") for r in follow)
    return Reply(text, outcome, confidence, entry.id, (entry.id,), entry.clauses, buttons)


def contradicted(kb: KnowledgeBase, entries: list[Entry], question: str, today: date) -> Entry | None:
    """Of entries tied for a yes/no question, the one whose figures the question gets wrong
    ("创建时间一般就一年吧？": the entry saying 2-3年), if any does: that is the
    entry the asker is checking (the best ranked, when several), answered with its "no" first."""
    hits = [e for e in entries if e.covered and negative_lead(question, fill(e.answer, kb.meta, today))]
    return hits[0] if hits else None


def combined_reply(kb: KnowledgeBase, entries: list[Entry], today: date, confidence: float) -> Reply:
    """Several questions in one message: each answer in turn, numbered."""
    marks = "①②③④"
    parts, clauses, buttons = [], [], []
    for mark, entry in zip(marks, entries, strict=False):
        single = entry_reply(kb, entry, today)
        parts.append(f"{mark} {single.text}")
        clauses += [c for c in entry.clauses if c not in clauses]
        buttons.append(Button(entry.question, f"ask:{entry.id}"))
    outcome = Outcome.ANSWERED if any(e.covered for e in entries) else Outcome.UNKNOWN
    return Reply("\n\n".join(parts), outcome, confidence, entries[0].id, tuple(e.id for e in entries),
                 tuple(clauses), tuple(buttons))


def ambiguous_reply(kb: KnowledgeBase, entries: list[Entry], confidence: float) -> Reply:
    lines = ["您是想问："] + [f"{n}. {e.question}" for n, e in enumerate(entries, 1)]
    lines.append("请点选对应的问题，或回复序号。")
    # None of them? Then the notice most likely does not cover it: say who to ask.
    lines.append(f"如果都不是，通知中可能没有相关内容，{not_covered_tail(kb.meta)}")
    buttons = tuple(Button(e.question, f"ask:{e.id}") for e in entries)
    return Reply("\n".join(lines), Outcome.AMBIGUOUS, confidence, None, tuple(e.id for e in entries), (), buttons)


def unknown_reply(kb: KnowledgeBase, confidence: float = 0.0, suggestions: list[Entry] | None = None) -> Reply:
    text = (f"抱歉，通知（{kb.meta.document['number']}）中没有关于这个问题的内容，我无法给出可靠的答复。\n"
            f"{not_covered_tail(kb.meta)}")
    buttons = tuple(Button(e.question, f"ask:{e.id}") for e in (suggestions or []))
    return Reply(text, Outcome.UNKNOWN, confidence, None, (), (), buttons + (Button("常见问题", "cmd:faq"),))


def bare_number_reply() -> Reply:
    text = ("只输入一个数字，我无法判断您想问什么。如果是要选择“您是想问”中的某一项，请点选对应按钮；"
            "也可以直接输入完整的问题，例如“申请书要交几份？”")
    return Reply(text, Outcome.UNKNOWN, 0.0, buttons=START_BUTTONS)


def empty_reply() -> Reply:
    text = ("请用文字描述您的问题，例如“申报截止时间是什么时候？”“哪些单位可以申报？”，"
            "也可以点下方按钮查看常见问题或做资格自测。")
    return Reply(text, Outcome.UNKNOWN, 0.0, buttons=START_BUTTONS)
