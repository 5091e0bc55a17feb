"""learned.yaml: what staff accepted, read, validated, merged, appended to and undone.

The file sits beside faq.yaml (whose comments and layout staff keep by hand and
which is never rewritten). Each record says who (a salted hash, never a Telegram
id) accepted what and when:

    changes:
      - id: 3fa9c2d1
        kind: phrasings          # phrasings | not_covered | ignored
        entry: submit_to         # the entry the phrasings join (not_covered: the new entry's id)
        phrasings:
        - 材料交给谁签收
        by: 9f8e7d6c5b4a
        date: '2026-12-02 14:30:05'  # office time (北京时间)

A person may delete any record (its "- id:" line and the lines under it).
Ignored records change nothing in the knowledge base; they only hide questions
from /unanswered, so they are left out of the content hash (no index rebuild).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeError
from knowledge.loader import (
    ID_PATTERN,
    LEARNED_FILE,
    MAX_ANSWER_CHARS,
    PLACEHOLDERS,
    Entry,
    KnowledgeBase,
    _item_id,
    _placeholders,
    _strings,
    _text,
    read_yaml_file,
)

FILE = LEARNED_FILE
KINDS = ("phrasings", "not_covered", "ignored")
KIND_NAMES = {"phrasings": "归入已有条目", "not_covered": "通知未涉及", "ignored": "忽略"}
OFFICE_TZ = timezone(timedelta(hours=8), "北京时间")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMATS = (DATE_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d")  # what a person may write
NEW_ENTRY_PREFIX = "learned_"

HEADER = """\
# 工作人员在 Telegram（/unanswered）或命令行（python -m bot unanswered --review）中采纳的内容。
# 启动和 /reload 时并入知识库；faq.yaml 本身不会被改动。
# 每条记录：id 编号；kind：phrasings＝为已有条目 entry 增加问法，not_covered＝新增“通知未涉及”条目，
#   ignored＝在 /unanswered 中隐藏这些提问；by：操作人的加密编号（不是 Telegram 账号）；date：北京时间。
# 不要的记录可以整条删除（从“- id:”那一行到下一条之前），再运行 python -m bot kb check 或发 /reload；
# 在 Telegram 中发 /learned 点“撤销”效果相同。
"""


@dataclass(frozen=True)
class Change:
    """One accepted decision."""

    id: str
    kind: str
    phrasings: tuple[str, ...]
    by: str
    date: str  # "YYYY-MM-DD HH:MM:SS", office time
    entry: str | None = None
    question: str = ""  # not_covered only
    answer: str = ""
    topic: str = ""

    @property
    def texts(self) -> tuple[str, ...]:
        """Every question text the change is about (what /unanswered no longer shows)."""
        return ((self.question,) if self.question else ()) + self.phrasings

    @property
    def when(self) -> datetime:
        """The date as an aware UTC datetime (a bare date counts from its start)."""
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(self.date, fmt).replace(tzinfo=OFFICE_TZ).astimezone(UTC)
            except ValueError:
                continue
        raise ValueError(self.date)

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.entry:
            out["entry"] = self.entry
        if self.kind == "not_covered":
            out["topic"] = self.topic
            out["question"] = self.question
        out["phrasings"] = list(self.phrasings)
        if self.kind == "not_covered":
            out["answer"] = self.answer
        out["by"] = self.by
        out["date"] = self.date
        return out


def new_id(taken: set[str] | frozenset[str] = frozenset()) -> str:
    while True:
        cid = secrets.token_hex(4)
        if cid not in taken and not cid.isdigit():  # all digits would read back as a number
            return cid


def now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(OFFICE_TZ).strftime(DATE_FORMAT)


# -- reading and validating -------------------------------------------------------------------


def path_in(data_dir: str | Path) -> Path:
    return Path(data_dir) / LEARNED_FILE


def _date_text(value: Any, entry: str) -> str:
    if isinstance(value, datetime):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    for fmt in DATE_FORMATS:
        try:
            datetime.strptime(text, fmt)
            return text
        except ValueError:
            continue
    raise KnowledgeError(FILE, f"日期应写作 YYYY-MM-DD 或 YYYY-MM-DD HH:MM:SS，现为 {value!r}", entry=entry, field="date")


def parse(doc: dict[str, Any]) -> list[Change]:
    """The records of a parsed learned.yaml, each checked on its own (the knowledge base
    is checked by `merge`). KnowledgeError names the record and the field."""
    items = doc.get("changes")
    if items is None:
        return []
    if not isinstance(items, list):
        raise KnowledgeError(FILE, "changes 应为列表", field="changes")
    out: list[Change] = []
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        cid = _item_id(item, n, FILE, "changes", "记录", seen)
        seen.add(cid)
        kind = str(item.get("kind") or "")
        if kind not in KINDS:
            raise KnowledgeError(FILE, f"kind 只能是 {' / '.join(KINDS)}", entry=cid, field="kind")
        by = _text(item, "by", FILE, cid)
        when = _date_text(item.get("date"), cid)
        phrasings = _strings(item, "phrasings", FILE, cid, minimum=0 if kind == "not_covered" else 1)
        entry = question = answer = topic = ""
        if kind != "ignored":
            entry = _text(item, "entry", FILE, cid)
        if kind == "not_covered":
            if not ID_PATTERN.match(entry):
                raise KnowledgeError(FILE, "条目编号只能用小写字母、数字和下划线", entry=cid, field="entry")
            topic = _text(item, "topic", FILE, cid)
            question = _text(item, "question", FILE, cid)
            answer = _text(item, "answer", FILE, cid)
            if len(answer) > MAX_ANSWER_CHARS:
                raise KnowledgeError(FILE, f"答案过长（{len(answer)} 字，上限 {MAX_ANSWER_CHARS} 字）",
                                     entry=cid, field="answer")
            unknown = _placeholders(answer) - PLACEHOLDERS
            if unknown:
                raise KnowledgeError(FILE, f"答案中有无法识别的占位符 {sorted(unknown)}（普通花括号请写成 {{{{ }}}}）",
                                     entry=cid, field="answer")
        out.append(Change(cid, kind, phrasings, by, when, entry or None, question, answer, topic))
    return out


def read(data_dir: str | Path) -> list[Change]:
    """The records in data_dir's learned.yaml ([] when there is none)."""
    path = path_in(data_dir)
    if not path.is_file():
        return []
    doc, _ = read_yaml_file(path)
    return parse(doc)


# -- merging into the knowledge base ------------------------------------------------------------


def merge(kb: KnowledgeBase, changes: list[Change]) -> KnowledgeBase:
    """kb (as loaded from the other files) with the records applied: phrasings joined to
    their entries, not_covered entries added. A record that no longer fits the knowledge
    base (its entry was removed from faq.yaml, say) is refused, naming it."""
    entries = dict(kb.entries)
    topics = {t.id for t in kb.topics}
    effective = []
    for c in changes:
        if c.kind == "ignored":
            continue
        if c.kind == "phrasings":
            target = entries.get(c.entry or "")
            if target is None:
                raise KnowledgeError(FILE, f"条目 {c.entry} 在知识库中不存在（可删除这条记录）", entry=c.id, field="entry")
            known = {target.question, *target.phrasings}
            added = tuple(dict.fromkeys(p for p in c.phrasings if p not in known))
            entries[target.id] = replace(target, phrasings=target.phrasings + added)
        else:
            if c.entry in entries:
                raise KnowledgeError(FILE, f"条目编号 {c.entry} 已被使用", entry=c.id, field="entry")
            if c.topic not in topics:
                raise KnowledgeError(FILE, f"主题 {c.topic} 未在 faq.yaml 的 topics 中定义", entry=c.id, field="topic")
            phrasings = tuple(dict.fromkeys(p for p in c.phrasings if p != c.question))
            entries[c.entry] = Entry(c.entry, c.topic, c.question, phrasings, c.answer, (), (), "not_covered")
        effective.append([c.kind, c.entry, c.question, list(c.phrasings), c.answer, c.topic])
    if not effective:
        return kb
    digest = hashlib.sha256(kb.content_hash.encode() + b"\0" + FILE.encode() + b"\0")
    digest.update(json.dumps(effective, ensure_ascii=False).encode())
    return replace(kb, entries=entries, content_hash=digest.hexdigest())


def merge_file(kb: KnowledgeBase, path: Path) -> KnowledgeBase:
    """What the loader calls when learned.yaml is present."""
    doc, _ = read_yaml_file(path)
    return merge(kb, parse(doc))


# -- writing: append one record, remove one ----------------------------------------------------


def _block(change: Change) -> str:
    dumped = yaml.safe_dump([change.to_yaml()], allow_unicode=True, sort_keys=False, width=10**6)
    return "".join("  " + line + "\n" for line in dumped.splitlines())


def render(changes: list[Change]) -> str:
    if not changes:
        return HEADER + "changes: []\n"
    return HEADER + "changes:\n" + "".join(_block(c) for c in changes)


def _write(path: Path, text: str) -> None:
    """Atomically: a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def append(data_dir: str | Path, change: Change) -> None:
    """Add one record at the end, leaving whatever a person wrote above untouched."""
    path = path_in(data_dir)
    existing = read(data_dir)
    if any(c.id == change.id for c in existing):
        raise ValueError(f"record {change.id} exists")
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not existing or not re.search(r"^changes:\s*$", text, flags=re.M):
        # No file, an empty list ("changes: []") or a layout of a person's own: write it out whole.
        _write(path, render(existing + [change]))
        return
    _write(path, text + ("" if text.endswith("\n") else "\n") + _block(change))


def remove(data_dir: str | Path, change_id: str) -> Change:
    """Delete one record; KeyError when there is none with that id."""
    path = path_in(data_dir)
    existing = read(data_dir)
    gone = next((c for c in existing if c.id == change_id), None)
    if gone is None:
        raise KeyError(change_id)
    rest = [c for c in existing if c.id != change_id]
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.fullmatch(rf"  - id: ['\"]?{re.escape(change_id)}['\"]?\s*",
                                                                  line)), None)
    if start is not None and rest:
        end = start + 1
        while end < len(lines) and lines[end].startswith("    "):
            end += 1
        candidate = "".join(lines[:start] + lines[end:])
        try:
            if [c.id for c in parse(yaml.safe_load(candidate) or {})] == [c.id for c in rest]:
                _write(path, candidate)
                return gone
        except (yaml.YAMLError, KnowledgeError):
            pass
    _write(path, render(rest))  # a layout the line surgery cannot follow: written out whole
    return gone
