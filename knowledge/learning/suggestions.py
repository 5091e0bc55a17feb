"""Suggestions per group of unanswered questions: which existing entries a group most
likely belongs to, scored by the engine (`Assistant.suggest`).

The groups themselves are knowledge/staff/unanswered.py's. Here they get a short,
stable id (for 64-byte button data), lose the questions staff already handled
(accepted, marked not covered or ignored: see records.py), and get up to three
suggested entries.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knowledge.learning.records import Change
from knowledge.staff.stats import entry_label
from knowledge.staff.unanswered import REASONS, Asked, Group, key

if TYPE_CHECKING:
    from knowledge.assistant import Assistant
    from knowledge.loader import KnowledgeBase

SUGGESTIONS = 3
MEMBERS_SCORED = 5  # the most asked wordings of a group are enough to place it
GROUP_ID_CHARS = 10


@dataclass(frozen=True)
class Suggestion:
    entry_id: str
    question: str
    score: float  # 0..1


@dataclass(frozen=True)
class Card:
    """A group as staff see it in /unanswered: id, the questions, the suggestions."""

    gid: str
    example: str
    texts: tuple[str, ...]  # distinct wordings, most asked first
    count: int
    reasons: dict[str, int]
    suggestions: tuple[Suggestion, ...]

    def to_state(self) -> dict[str, Any]:
        return {"gid": self.gid, "example": self.example, "texts": list(self.texts), "count": self.count,
                "reasons": self.reasons, "suggestions": [[s.entry_id, s.question, s.score] for s in self.suggestions]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Card:
        return cls(state["gid"], state["example"], tuple(state["texts"]), int(state["count"]),
                   dict(state["reasons"]), tuple(Suggestion(e, q, float(s)) for e, q, s in state["suggestions"]))


def group_id(texts: Iterable[str]) -> str:
    """Short and stable: the same questions give the same id in every /unanswered."""
    joined = "\n".join(sorted(set(texts)))
    return hashlib.sha256(joined.encode()).hexdigest()[:GROUP_ID_CHARS]


def handled_keys(changes: Iterable[Change]) -> set[str]:
    """The comparison keys of every question text staff already decided on."""
    return {key(t) for c in changes for t in c.texts}


def not_handled(asked: Iterable[Asked], changes: Iterable[Change]) -> list[Asked]:
    """The logged questions staff have not decided on yet (the log keeps the rest)."""
    done = handled_keys(changes)
    return [a for a in asked if key(a.text) not in done]


def suggest_for(assistant: Assistant, texts: list[tuple[str, int]], k: int = SUGGESTIONS) -> tuple[Suggestion, ...]:
    """Entries for a group: each scored wording's suggestions, weighted by how often it
    was asked, averaged (an entry missing from a wording's list counts 0 for it)."""
    scored = texts[:MEMBERS_SCORED]
    total = sum(n for _, n in scored) or 1
    sums: Counter[str] = Counter()
    for text, n in scored:
        for entry_id, score in assistant.suggest(text, k):
            sums[entry_id] += score * n
    best = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    entries = assistant.kb.entries
    return tuple(Suggestion(e, entries[e].question, round(s / total, 4)) for e, s in best if e in entries and s > 0)


def cards(assistant: Assistant, groups: Iterable[Group], limit: int | None = None) -> list[Card]:
    out = []
    for g in groups:
        if limit is not None and len(out) >= limit:
            break
        texts = tuple(t for t, _ in g.members)
        out.append(Card(group_id(texts), g.example, texts, g.count, dict(g.reasons),
                        suggest_for(assistant, g.members)))
    return out


def describe_card(card: Card, number: int, kb: KnowledgeBase) -> str:
    """The group as staff read it, in Telegram and in the terminal."""
    reasons = "，".join(f"{REASONS.get(r, r)} {n}" for r, n in sorted(card.reasons.items(), key=lambda kv: -kv[1]))
    lines = [f"第 {number} 组（{card.count} 次：{reasons}）：{card.example}"]
    if len(card.texts) > 1:
        lines.append("另如：" + "；".join(card.texts[1:4]) + ("……" if len(card.texts) > 4 else ""))
    if card.suggestions:
        lines.append("可能属于：")
        lines += [f"{n}. {entry_label(s.entry_id, kb)}（匹配度 {s.score:.2f}）" for n, s in enumerate(card.suggestions, 1)]
    else:
        lines.append("没有相近的已有条目。")
    return "\n".join(lines)
