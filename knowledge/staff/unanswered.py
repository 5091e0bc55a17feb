"""What the assistant failed at, grouped into candidate FAQ entries.

A question counts when the assistant could not match it to any entry (outcome
unknown without an entry: not one of the knowledge base's own "not covered"
entries, which are answers staff already wrote), asked back which question was
meant (ambiguous), or got 👎 whatever the outcome. Similar questions are
grouped with rapidfuzz, most frequent group first, and can be exported as FAQ
entry stubs in faq.yaml's own format for staff to complete and paste.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlite_utils
import yaml
from rapidfuzz import fuzz, process

from knowledge.staff.stats import period

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase
    from knowledge.storage.store import Store

REASONS = {"unknown": "未能回答", "ambiguous": "需澄清", "thumbs_down": "👎"}
# Score (0-100) from which two questions are taken as the same: char-level
# ratio, or token-level when a tokenizer (the engine's segmenter) is given.
# Measured on paraphrases: same question 70-100, different questions < 55.
DEFAULT_THRESHOLD = 70
MAX_DISTINCT = 5000  # distinct texts grouped per run; beyond that the rest would be noise anyway
MIN_PHRASINGS = 6    # what the loader requires of an entry
PLACEHOLDER_TOPIC = "待定"

_FILLER = re.compile(r"请问一下|请问|麻烦问一下|我想问一下|我想问|想问一下|想问|问一下|你好|您好|谢谢|一下|吗|呢|啊|呀|吧|哈")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Asked:
    """One logged question that counts as unanswered."""

    text: str
    reason: str  # unknown | ambiguous | thumbs_down
    faq_id: str | None = None


@dataclass
class Group:
    """Similar questions: `members` are the distinct texts with how often each was asked."""

    members: list[tuple[str, int]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    faq_ids: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(n for _, n in self.members)

    @property
    def example(self) -> str:
        return self.members[0][0]


def collect(source: Store | sqlite_utils.Database, days: int = 30, now: datetime | None = None) -> list[Asked]:
    """The unanswered questions of the last `days` days (office calendar days, as in stats)."""
    db = source if isinstance(source, sqlite_utils.Database) else source.db
    p = period(days, now)
    bounds = [p.start.isoformat(timespec="seconds"), p.end.isoformat(timespec="seconds")]
    down = {qid for (qid,) in db.execute(
        "select question_id from feedback where ts >= ? and ts < ? and rating = -1 and question_id is not null",
        bounds).fetchall()}
    rows = db.execute(
        "select id, text, outcome, faq_id from questions where ts >= ? and ts < ? "
        "and (outcome = 'ambiguous' or (outcome = 'unknown' and faq_id is null)) order by id", bounds).fetchall()
    seen = {r[0] for r in rows}
    if down - seen:
        marks = ",".join("?" * len(down - seen))
        rows += db.execute(f"select id, text, outcome, faq_id from questions where id in ({marks}) order by id",
                           sorted(down - seen)).fetchall()
    out = []
    for qid, text, outcome, faq_id in rows:
        reason = "thumbs_down" if qid in down else outcome
        out.append(Asked(text or "", reason, faq_id))
    return out


def _form(text: str) -> str:
    """One way of asking: width/case folded, punctuation and spaces removed."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def key(text: str) -> str:
    """What is compared: the form without filler words ("请问", "吗" ...)."""
    return _FILLER.sub("", _form(text))


@dataclass(frozen=True)
class Prepared:
    """The distinct questions (by comparison key), most asked first, with their words."""

    items: dict[str, list[Asked]]
    tokens: dict[str, str]  # key -> its words, sorted and space-joined ("" without a tokenizer)


def prepare(asked: Iterable[Asked], tokenize: Callable[[str], list[str]] | None = None) -> Prepared:
    """The part that may touch the engine (whose index is a SQLite connection, usable only in
    the thread that made it); `cluster` is then pure CPU and can run in a worker thread."""
    by_key: dict[str, list[Asked]] = {}
    for a in asked:
        k = key(a.text)
        if k:
            by_key.setdefault(k, []).append(a)
    # Most asked first; ties in order of first appearance (dicts keep insertion order).
    keys = sorted(by_key, key=lambda k: -len(by_key[k]))[:MAX_DISTINCT]
    tokens = {k: " ".join(sorted(set(tokenize(by_key[k][0].text)))) if tokenize else "" for k in keys}
    return Prepared({k: by_key[k] for k in keys}, tokens)


def group(asked: Iterable[Asked], tokenize: Callable[[str], list[str]] | None = None,
          threshold: float = DEFAULT_THRESHOLD) -> list[Group]:
    return cluster(prepare(asked, tokenize), threshold)


def cluster(prepared: Prepared, threshold: float = DEFAULT_THRESHOLD) -> list[Group]:
    """Group similar questions; the most asked wording of each group is its example.

    Greedy: distinct texts in order of frequency; each joins the group of the most
    similar text already placed, if similar enough, else starts a group. With
    `tokenize` (the engine's segmenter, which also maps synonyms to one word), texts
    are compared word by word as well, so "个体户能申报吗" meets "个人可以申报吗".
    Members are the distinct wordings ("请问有没有补贴" and "有没有补贴" are two,
    useful as phrasings; "有没有补贴？" and "有没有补贴" are one).
    """
    groups: list[Group] = []
    forms: list[dict[str, Counter[str]]] = []  # per group: form -> how each wording of it was typed
    placed_chars: list[str] = []
    placed_tokens: list[str] = []
    placed_group: list[int] = []
    for k, items in prepared.items.items():
        best, best_score = None, -1.0
        match = process.extractOne(k, placed_chars, scorer=fuzz.ratio, score_cutoff=threshold)
        if match is not None:
            best, best_score = placed_group[match[2]], match[1]
        tokens = prepared.tokens[k]
        if tokens:
            # The words are already sorted, so plain ratio is token_sort_ratio, minus the work.
            match = process.extractOne(tokens, placed_tokens, scorer=fuzz.ratio, score_cutoff=threshold)
            if match is not None and match[1] > best_score:
                best = placed_group[match[2]]
        if best is None:
            groups.append(Group())
            forms.append({})
            best = len(groups) - 1
        g = groups[best]
        for a in items:
            forms[best].setdefault(_form(a.text), Counter())[" ".join(a.text.split())] += 1
        g.reasons.update(a.reason for a in items)
        g.faq_ids.update(a.faq_id for a in items if a.faq_id)
        placed_chars.append(k)
        placed_tokens.append(tokens)
        placed_group.append(best)
    for g, by_form in zip(groups, forms, strict=True):
        # Each wording shown as most often typed; most asked first (stable: first placed wins ties).
        g.members = sorted(((c.most_common(1)[0][0], c.total()) for c in by_form.values()), key=lambda m: -m[1])
    return sorted(groups, key=lambda g: -g.count)


def unanswered(source: Store | sqlite_utils.Database, days: int = 30, now: datetime | None = None,
               tokenize: Callable[[str], list[str]] | None = None,
               threshold: float = DEFAULT_THRESHOLD) -> list[Group]:
    return group(collect(source, days, now), tokenize, threshold)


def reasons_text(g: Group) -> str:
    return "，".join(f"{REASONS.get(r, r)} {n}" for r, n in g.reasons.most_common())


def format_groups(groups: list[Group], days: int, limit: int = 20, examples: int = 2) -> str:
    """Plain text for staff: count, example and why, most frequent first."""
    if not groups:
        return f"最近 {days} 天没有未能回答、需澄清或得到 👎 的提问。"
    total = sum(g.count for g in groups)
    lines = [f"📝 最近 {days} 天未能很好回答的提问：{total} 条，{len(groups)} 组（按次数排序）"]
    for n, g in enumerate(groups[:limit], 1):
        lines.append(f"{n}. {g.example} — {g.count} 次（{reasons_text(g)}）")
        others = [text for text, _ in g.members[1:1 + examples]]
        if others:
            lines.append("   另如：" + "；".join(others) + ("……" if len(g.members) > 1 + examples else ""))
    if len(groups) > limit:
        lines.append(f"……另有 {len(groups) - limit} 组。")
    lines.append("导出为常见问题草稿：python -m bot unanswered --days N --export 文件.yaml")
    return "\n".join(lines)


# -- export as FAQ entry stubs -----------------------------------------------------


def _scalar(value: str) -> str:
    """A YAML scalar on one line: plain when YAML allows it, else JSON-quoted (valid YAML)."""
    value = " ".join(value.split())
    dumped = yaml.safe_dump([value], allow_unicode=True, width=10**6).strip()
    if dumped.startswith("- ") and "\n" not in dumped:
        return dumped[2:]
    return json.dumps(value, ensure_ascii=False)


def guess_topic(g: Group, kb: KnowledgeBase | None, guess: Callable[[str], str | None] | None = None) -> str:
    """The topic of the entries the group's 👎 went to, else `guess(example)`, else 待定."""
    if kb is not None:
        topics = Counter(kb.entries[f].topic for f in g.faq_ids.elements() if f in kb.entries)
        if topics:
            return topics.most_common(1)[0][0]
    if guess is not None:
        topic = guess(g.example)
        if topic and (kb is None or topic in {t.id for t in kb.topics}):
            return topic
    return PLACEHOLDER_TOPIC


HEADER = """\
# 常见问题草稿：由 `python -m bot unanswered --export` 于 {when} 生成，
# 来自最近 {days} 天未能回答、需澄清或得到 👎 的提问（相似的问法已归为一组，次数多的在前）。
#
# 每组是一个条目草稿。请逐条补全后，把 entries: 下面的条目粘贴到 knowledge/data/faq.yaml 的
# entries: 列表末尾（保持两个空格缩进），再运行 `python -m bot kb check`，或在 Telegram 中发 /reload：
#   id        可改为有意义的名字（小写英文、数字、下划线），不得与已有条目重复；
#   topic     系统推测的主题，请核对；“{placeholder}”表示无法推测，须改为 faq.yaml 中 topics 的某个 id；
#   question  标准问法（取自该组最常见的提问，可修改，不超过 30 字）；
#   phrasings 该组里其他的问法；至少需要 {minimum} 条、互不相同、不与 question 重复，不足的请补写；
#   answer    必填：只写通知里有的内容，不超过 300 字；通知没有规定的，加一行 kind: not_covered 并如实说明；
#   clauses   必填：答案依据的条款编号，如 [四.3]（见 notice.yaml）；not_covered 条目可留空；
#   related   可选：0-3 个相关条目 id。
# 不需要的草稿整条删除即可。
"""


def export_stubs(groups: list[Group], kb: KnowledgeBase | None = None, *, days: int = 30,
                 guess: Callable[[str], str | None] | None = None, limit: int | None = None,
                 now: datetime | None = None) -> str:
    """The groups as faq.yaml entries (answer and clauses left empty), as YAML text with comments."""
    existing = set(kb.entries) if kb is not None else set()
    when = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    out = [HEADER.format(when=when, days=days, placeholder=PLACEHOLDER_TOPIC, minimum=MIN_PHRASINGS)]
    out.append("entries:")
    number = 0
    for n, g in enumerate(groups[:limit] if limit else groups, 1):
        number += 1
        while f"new_{number:03d}" in existing:
            number += 1
        question = " ".join(g.example.split())
        phrasings: list[str] = []
        for text, _ in g.members[1:]:
            text = " ".join(text.split())
            if text != question and text not in phrasings:
                phrasings.append(text)
        topic = guess_topic(g, kb, guess)
        out.append("")
        out.append(f"  # 第 {n} 组：共 {g.count} 次（{reasons_text(g)}）")
        out.append(f"  - id: new_{number:03d}")
        note = "  # 请改为已有主题 id" if topic == PLACEHOLDER_TOPIC else "  # 系统推测，请核对"
        out.append(f"    topic: {_scalar(topic)}{note}")
        out.append(f"    question: {_scalar(question)}")
        missing = MIN_PHRASINGS - len(phrasings)
        tail = f"  # 现有 {len(phrasings)} 条，还需补写至少 {missing} 条" if missing > 0 else ""
        if phrasings:
            out.append(f"    phrasings:{tail}")
            out += [f"      - {_scalar(p)}" for p in phrasings]
        else:
            out.append(f"    phrasings: []{tail}")
        out.append("    answer: ''  # 必填")
        out.append("    clauses: []  # 必填，如 [四.3]")
        out.append("    related: []")
    if not number:
        out[-1] = "entries: []  # 没有可导出的提问"
    return "\n".join(out) + "\n"
