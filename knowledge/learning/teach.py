"""Staff decisions, applied: to learned.yaml and to the running assistant at once.

    result = propose(assistant, phrasings_change(card, "submit_to", by))
    result.saved        # False: result.conflicts lists what the change would break
    result.score        # how well the group's question matches the entry now
    undo(assistant, result.change.id)

Every engine call goes through `Assistant.suggest`, `match_score` and
`apply_learned`. The work is synchronous on purpose: in the bot it runs on the
event loop, so no question is answered half by the old knowledge base and half by
the new, and two staff members cannot interleave writes to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.learning import records
from knowledge.learning.records import Change
from knowledge.learning.suggestions import SUGGESTIONS, Card
from knowledge.loader import MAX_ANSWER_CHARS, KnowledgeBase, load_knowledge

if TYPE_CHECKING:
    from knowledge.assistant import Assistant

NOT_COVERED_TOPIC = "not_covered"


@dataclass(frozen=True)
class Conflict:
    """After the change, `phrasing` (entry `entry_id`'s own) would match the target entry
    at least as well as its own entry: it would be answered wrongly, or asked back."""

    entry_id: str
    entry_question: str
    phrasing: str
    own: float
    new: float


@dataclass(frozen=True)
class Result:
    change: Change
    saved: bool
    conflicts: tuple[Conflict, ...] = ()
    score: float = 0.0  # match of the group's question to the target entry, after saving


# -- building a change -----------------------------------------------------------------------------


def _taken(assistant: Assistant) -> set[str]:
    return {c.id for c in records.read(assistant.kb.source_dir)}


def phrasings_change(assistant: Assistant, card: Card, entry_id: str, by: str) -> Change:
    """The group's questions as phrasings of an existing entry."""
    entry = assistant.kb.entries[entry_id]
    texts = tuple(t for t in card.texts if t != entry.question and t not in entry.phrasings)
    return Change(records.new_id(_taken(assistant)), "phrasings", texts or card.texts, by, records.now_text(),
                  entry_id)


def clean_answer(text: str) -> str:
    """A staff member's one-line "the notice does not say …"; ValueError (message for staff) if unusable."""
    line = " ".join((text or "").split())
    if not line:
        raise ValueError("回答不能为空。")
    if len(line) > MAX_ANSWER_CHARS:
        raise ValueError(f"回答过长（{len(line)} 字，上限 {MAX_ANSWER_CHARS} 字），请缩短。")
    # Answers are templates ({deadline_status}); a brace typed by a person is just a brace.
    return line.replace("{", "{{").replace("}", "}}")


def not_covered_change(assistant: Assistant, card: Card, answer: str, by: str) -> Change:
    """A new "the notice does not cover this" entry from the group, with staff's answer."""
    kb = assistant.kb
    topics = [t.id for t in kb.topics]
    topic = NOT_COVERED_TOPIC if NOT_COVERED_TOPIC in topics else (
        kb.entries[card.suggestions[0].entry_id].topic if card.suggestions else topics[0])
    cid = records.new_id(_taken(assistant))
    entry_id = records.NEW_ENTRY_PREFIX + cid
    while entry_id in kb.entries:
        cid = records.new_id(_taken(assistant) | {cid})
        entry_id = records.NEW_ENTRY_PREFIX + cid
    return Change(cid, "not_covered", tuple(t for t in card.texts[1:]), by, records.now_text(), entry_id,
                  card.example, clean_answer(answer), topic)


def ignore_change(assistant: Assistant, card: Card, by: str) -> Change:
    return Change(records.new_id(_taken(assistant)), "ignored", card.texts, by, records.now_text())


# -- applying ----------------------------------------------------------------------------------------


def knowledge_with(data_dir, changes: list[Change]) -> KnowledgeBase:  # noqa: ANN001 (str | Path)
    """The knowledge base as the files on disk give it, with these records instead of learned.yaml's."""
    return records.merge(load_knowledge(data_dir, learned=False), changes)


def conflicts(assistant: Assistant, change: Change) -> tuple[Conflict, ...]:
    """Run on the assistant with the change applied. Checks the own phrasings of the
    entries the new phrasings come closest to (the only ones they can pull away)."""
    target = change.entry
    kb = assistant.kb
    found: dict[tuple[str, str], Conflict] = {}
    for text in change.texts:
        for entry_id, _ in assistant.suggest(text, SUGGESTIONS + 1):
            if entry_id == target or entry_id not in kb.entries:
                continue
            entry = kb.entries[entry_id]
            for own_text in (entry.question, *entry.phrasings):
                if (entry_id, own_text) in found:
                    continue
                own = assistant.match_score(own_text, entry_id)
                moved = assistant.match_score(own_text, target)
                if moved >= own:
                    found[(entry_id, own_text)] = Conflict(entry_id, entry.question, own_text, own, moved)
    return tuple(found.values())


def propose(assistant: Assistant, change: Change, *, check: bool = True) -> Result:
    """Save and apply `change`, unless (with check) it conflicts: then nothing is saved
    and the assistant is as before. KnowledgeError if the files on disk are broken."""
    data_dir = assistant.kb.source_dir
    old = assistant.kb
    current = records.read(data_dir)
    if change.kind == "ignored":  # hides questions; nothing to answer differently
        records.append(data_dir, change)
        return Result(change, True)
    candidate = knowledge_with(data_dir, current + [change])
    assistant.apply_learned(candidate)
    try:
        found = conflicts(assistant, change) if check else ()
        if found:
            assistant.apply_learned(old)
            return Result(change, False, found)
        records.append(data_dir, change)
    except BaseException:
        assistant.apply_learned(old)
        raise
    example = change.question or change.phrasings[0]
    return Result(change, True, (), assistant.match_score(example, change.entry or ""))


def undo(assistant: Assistant, change_id: str) -> Change:
    """Remove a record and answer without it. KeyError when there is no such record;
    KnowledgeError when the rest would not load (e.g. phrasings joined to this record's
    new entry: undo those first)."""
    data_dir = assistant.kb.source_dir
    current = records.read(data_dir)
    gone = next((c for c in current if c.id == change_id), None)
    if gone is None:
        raise KeyError(change_id)
    rest = [c for c in current if c.id != change_id]
    candidate = None if gone.kind == "ignored" else knowledge_with(data_dir, rest)
    records.remove(data_dir, change_id)
    if candidate is not None:
        assistant.apply_learned(candidate)
    return gone


def recent(assistant: Assistant, limit: int = 10) -> list[Change]:
    """The latest records first."""
    return list(reversed(records.read(assistant.kb.source_dir)))[:limit]


def saved_text(result: Result, kb: KnowledgeBase) -> str:
    """The confirmation for staff once a change is saved."""
    change = result.change
    if change.kind == "phrasings":
        entry = kb.entries.get(change.entry or "")
        return (f"✅ 已归入「{entry.question if entry else change.entry}」，今后类似提问将直接回答"
                f"（当前匹配度 {result.score:.2f}）。可在 /learned 中撤销。")
    if change.kind == "not_covered":
        return f"✅ 已保存为“通知未涉及”，今后类似提问将直接这样回答（当前匹配度 {result.score:.2f}）。可在 /learned 中撤销。"
    return "🙈 已忽略：这组提问不再出现在 /unanswered 中。可在 /learned 中撤销。"


def conflict_text(result: Result, shown: int = 5) -> str:
    lines = ["⚠️ 注意：保存后，下列其他条目自己的问法会更像这个条目，可能被答错："]
    for c in result.conflicts[:shown]:
        lines.append(f"· 「{c.phrasing}」（属于「{c.entry_question}」，现匹配度 {c.own:.2f} → 此条目 {c.new:.2f}）")
    if len(result.conflicts) > shown:
        lines.append(f"……共 {len(result.conflicts)} 处。")
    lines.append("确定仍要保存吗？")
    return "\n".join(lines)


def describe(change: Change, kb: KnowledgeBase) -> str:
    """One line for staff: when, what, how many questions, who (short hash)."""
    texts = change.texts
    first = texts[0] if texts else ""
    more = f" 等 {len(texts)} 条问法" if len(texts) > 1 else ""
    if change.kind == "phrasings":
        entry = kb.entries.get(change.entry or "")
        what = f"归入「{entry.question if entry else change.entry}」：{first}{more}"
    elif change.kind == "not_covered":
        what = f"通知未涉及：{first}{more}（答：{change.answer.replace('{{', '{').replace('}}', '}')}）"
    else:
        what = f"忽略：{first}{more}"
    return f"{change.date} {what}（操作人 {change.by[:6]}）"
