"""Load and validate the knowledge base YAML files into plain dataclasses.

Every problem is reported as a KnowledgeError naming the file, the entry and
the field, so office staff can fix the YAML without reading a traceback.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeError

# libyaml's parser when PyYAML was built with it: several times faster on a large base.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DATA_DIR = Path(__file__).parent / "data"
FILES = ("notice.yaml", "meta.yaml", "faq.yaml", "synonyms.yaml", "smalltalk.yaml")
LEARNED_FILE = "learned.yaml"  # optional: what staff accepted in the chat (knowledge/learning/)
MAX_ANSWER_CHARS = 300
MAX_RELATED = 3
MIN_PHRASINGS = 6
ID_PATTERN = re.compile(r"^[a-z0-9_]+$")
# Placeholders an answer may use; the engine fills them at answer time.
PLACEHOLDERS = {"deadline_status", "today", "deadline"}
ENTRY_KINDS = ("answer", "not_covered")
# Words of an editor's remark, never of the notice: such text belongs in a clause's note.
EDITOR_MARKERS = ("来源文本", "遮挡", "未能看到", "表格栏目", "〔来源", "编者", "注：")
# "第三条第1款": 第一条 and 第三条 have no numbered items, so such a citation cannot be found.
UNFINDABLE_CITATION = re.compile(r"第[一二三]条第\d+[款项]")
# Figures in an answer ("80%", "2-3", "17") and the placeholders the engine fills in.
NUMBER = re.compile(r"\d+(?:-\d+)?%?")
PLACEHOLDER = re.compile(r"\{\w+\}|第[一二三四]条第\d+项")  # placeholders and clause references
# A quoted fragment in a label, e.g. 通知第三条“具有一定的标准化工作基础……”.
QUOTED = re.compile(r"“([^”]+)”")


@dataclass(frozen=True)
class Clause:
    id: str
    label: str
    text: str
    title: str = ""
    note: str = ""   # an editor's remark on the source text, shown apart from the words


@dataclass(frozen=True)
class Topic:
    id: str
    name: str


@dataclass(frozen=True)
class Entry:
    id: str
    topic: str
    question: str
    phrasings: tuple[str, ...]
    answer: str
    clauses: tuple[str, ...]
    related: tuple[str, ...] = ()
    kind: str = "answer"
    conclusion: str = ""   # a yes/no entry's verdict (能/不能/需要……); the answer starts with it

    @property
    def covered(self) -> bool:
        return self.kind == "answer"


@dataclass(frozen=True)
class Contact:
    person: str
    phone: str
    email: str
    email_note: str
    office: str
    clause: str


@dataclass(frozen=True)
class Meta:
    document: dict[str, str]
    notice_date: date
    deadline: date
    deadline_clause: str
    deadline_wording: str
    contact: Contact


@dataclass(frozen=True)
class Vocabulary:
    synonyms: tuple[tuple[str, ...], ...]
    misspellings: dict[str, str]
    terms: tuple[str, ...]
    stopwords: frozenset[str]


@dataclass(frozen=True)
class SmallTalk:
    id: str
    patterns: tuple[str, ...]
    reply: str


@dataclass(frozen=True)
class KnowledgeBase:
    clauses: dict[str, Clause]
    topics: tuple[Topic, ...]
    entries: dict[str, Entry]
    vocabulary: Vocabulary
    meta: Meta
    smalltalk: tuple[SmallTalk, ...]
    content_hash: str
    source_dir: Path = field(default=DATA_DIR)

    def clause_label(self, clause_id: str) -> str:
        return self.clauses[clause_id].label

    def children(self, clause_id: str) -> list[Clause]:
        """The clause and every clause below it (四 -> 四, 四.1, 四.2, 四.3)."""
        prefix = clause_id + "."
        return [c for cid, c in self.clauses.items() if cid == clause_id or cid.startswith(prefix)]


def read_yaml_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """A knowledge file's top-level mapping and its bytes (for content hashes);
    KnowledgeError, naming the file and the line, on anything unreadable."""
    name = path.name
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise KnowledgeError(name, f"文件不存在（在 {path.parent} 中）") from None
    try:
        doc = yaml.load(content.decode("utf-8"), Loader=_YamlLoader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError:
        raise KnowledgeError(name, "文件不是 UTF-8 编码") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else "某处"
        problem = getattr(exc, "problem", None) or "格式错误"
        raise KnowledgeError(name, f"YAML 语法错误，{where}：{problem}") from None
    if not isinstance(doc, dict):
        raise KnowledgeError(name, "文件顶层应为键值映射（mapping）")
    return doc, content


def load_knowledge(data_dir: str | Path | None = None, *, learned: bool = True) -> KnowledgeBase:
    """Read every knowledge file from data_dir (default: the embedded one) and validate it.

    learned.yaml (what staff accepted in the chat, see knowledge/learning/) is merged in
    when present; learned=False gives the knowledge base without it."""
    base = Path(data_dir) if data_dir is not None else DATA_DIR
    raw: dict[str, Any] = {}
    digest = hashlib.sha256()
    for name in FILES:
        raw[name], content = read_yaml_file(base / name)
        digest.update(name.encode() + b"\0" + content + b"\0")

    clauses = _clauses(raw["notice.yaml"])
    meta = _meta(raw["meta.yaml"], clauses)
    topics, entries = _faq(raw["faq.yaml"], clauses, meta)
    vocabulary = _vocabulary(raw["synonyms.yaml"])
    smalltalk = _smalltalk(raw["smalltalk.yaml"])
    kb = KnowledgeBase(clauses, topics, entries, vocabulary, meta, smalltalk, digest.hexdigest(), base)
    if learned and (base / LEARNED_FILE).is_file():
        from knowledge.learning.records import merge_file  # (it builds on this module)

        kb = merge_file(kb, base / LEARNED_FILE)
    return kb


# -- helpers -------------------------------------------------------------------


def _list(doc: dict, key: str, file: str) -> list:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise KnowledgeError(file, f"缺少 {key} 列表，或列表为空", field=key)
    return value


def _text(item: dict, key: str, file: str, entry: str | None, *, allow_empty: bool = False) -> str:
    value = item.get(key)
    if value is None and allow_empty:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise KnowledgeError(file, "必填，且应为非空文字", entry=entry, field=key)
    return value.strip()


def _strings(item: dict, key: str, file: str, entry: str, *, minimum: int = 0) -> tuple[str, ...]:
    value = item.get(key, [])
    if value is None:
        value = []
    if not isinstance(value, list):
        raise KnowledgeError(file, "应为列表", entry=entry, field=key)
    out = []
    for n, s in enumerate(value, 1):
        if isinstance(s, int | float) and not isinstance(s, bool):
            s = str(s)
        if not isinstance(s, str) or not s.strip():
            raise KnowledgeError(file, f"第 {n} 项为空或不是文字", entry=entry, field=key)
        out.append(s.strip())
    if len(out) < minimum:
        raise KnowledgeError(file, f"至少需要 {minimum} 项，现有 {len(out)} 项", entry=entry, field=key)
    return tuple(out)


def _clauses(doc: dict) -> dict[str, Clause]:
    file = "notice.yaml"
    clauses: dict[str, Clause] = {}
    for n, item in enumerate(_list(doc, "clauses", file), 1):
        if not isinstance(item, dict):
            raise KnowledgeError(file, f"第 {n} 项应为键值映射", field="clauses")
        cid = _text(item, "id", file, f"第 {n} 项")
        if cid in clauses:
            raise KnowledgeError(file, "条款编号重复", entry=cid, field="id")
        label = _text(item, "label", file, cid)
        title = _text(item, "title", file, cid, allow_empty=True)
        text = _text(item, "text", file, cid, allow_empty=True)
        if not text and not title:
            raise KnowledgeError(file, "条款应有正文（text）或标题（title）", entry=cid, field="text")
        marker = next((m for m in EDITOR_MARKERS if m in text), None)
        if marker:
            raise KnowledgeError(file, f"正文中有编者说明（“{marker}”）：text 只能是通知原文，说明请写在 note 中",
                                 entry=cid, field="text")
        _check_label(label, text, file, cid)
        note = _text(item, "note", file, cid, allow_empty=True)
        clauses[cid] = Clause(cid, label, text, title, note)
    for cid in clauses:
        parent = cid.rsplit(".", 1)[0]
        if "." in cid and parent not in clauses:
            raise KnowledgeError(file, f"上级条款 {parent} 不存在", entry=cid, field="id")
    return clauses


def _check_label(label: str, text: str, file: str, cid: str) -> None:
    """A label is how an answer cites the clause: a reader must be able to find it."""
    if UNFINDABLE_CITATION.search(label):
        raise KnowledgeError(file, "第一条、第三条没有编号的款项，请写成读者能找到的引用，"
                             "如 通知第三条“具有一定的标准化工作基础……”", entry=cid, field="label")
    for quote in QUOTED.findall(label):
        for piece in filter(None, quote.split("……")):
            if piece not in text:
                raise KnowledgeError(file, f"标签引用的“{piece}”不在该条款正文中", entry=cid, field="label")


def _date(value: Any, file: str, entry: str, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise KnowledgeError(file, f"日期应写作 YYYY-MM-DD，现为 {value!r}", entry=entry, field=key) from None


def _meta(doc: dict, clauses: dict[str, Clause]) -> Meta:
    file = "meta.yaml"
    document = doc.get("document")
    if not isinstance(document, dict):
        raise KnowledgeError(file, "缺少 document 段", field="document")
    for key in ("number", "title", "issuer", "signed_by", "batch"):
        _text(document, key, file, "document")
    notice_date = _date(document.get("date"), file, "document", "date")
    deadline = doc.get("deadline")
    if not isinstance(deadline, dict):
        raise KnowledgeError(file, "缺少 deadline 段", field="deadline")
    deadline_date = _date(deadline.get("date"), file, "deadline", "date")
    if deadline_date < notice_date:
        raise KnowledgeError(file, "截止日期早于发文日期", entry="deadline", field="date")
    deadline_clause = _text(deadline, "clause", file, "deadline")
    contact = doc.get("contact")
    if not isinstance(contact, dict):
        raise KnowledgeError(file, "缺少 contact 段", field="contact")
    c = Contact(**{k: _text(contact, k, file, "contact") for k in
                   ("person", "phone", "email", "email_note", "office", "clause")})
    for entry, cid in (("deadline", deadline_clause), ("contact", c.clause)):
        if cid not in clauses:
            raise KnowledgeError(file, f"引用的条款 {cid} 在 notice.yaml 中不存在", entry=entry, field="clause")
    return Meta(
        document={k: str(v) for k, v in document.items()},
        notice_date=notice_date,
        deadline=deadline_date,
        deadline_clause=deadline_clause,
        deadline_wording=_text(deadline, "wording", file, "deadline"),
        contact=c,
    )


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return {"{"}


def _faq(doc: dict, clauses: dict[str, Clause], meta: Meta) -> tuple[tuple[Topic, ...], dict[str, Entry]]:
    file = "faq.yaml"
    # The notice says "5月20日前"; its year comes from the date line, so no answer may write it as one date.
    deadline = f"{meta.deadline.year}年{meta.deadline.month}月{meta.deadline.day}日"
    topics: dict[str, Topic] = {}
    for n, item in enumerate(_list(doc, "topics", file), 1):
        if not isinstance(item, dict):
            raise KnowledgeError(file, f"第 {n} 个主题应为键值映射", field="topics")
        tid = _text(item, "id", file, f"主题第 {n} 项")
        if tid in topics:
            raise KnowledgeError(file, "主题编号重复", entry=tid, field="id")
        topics[tid] = Topic(tid, _text(item, "name", file, tid))
    entries: dict[str, Entry] = {}
    for n, item in enumerate(_list(doc, "entries", file), 1):
        eid = _item_id(item, n, file, "entries", "条目", entries)
        kind = str(item.get("kind") or "answer")
        if kind not in ENTRY_KINDS:
            raise KnowledgeError(file, f"kind 只能是 {' / '.join(ENTRY_KINDS)}", entry=eid, field="kind")
        topic = _text(item, "topic", file, eid)
        if topic not in topics:
            raise KnowledgeError(file, f"主题 {topic} 未在 topics 中定义", entry=eid, field="topic")
        question = _text(item, "question", file, eid)
        phrasings = _strings(item, "phrasings", file, eid, minimum=MIN_PHRASINGS)
        if len({p for p in phrasings} | {question}) < len(phrasings) + 1:
            raise KnowledgeError(file, "问法有重复（或与 question 相同）", entry=eid, field="phrasings")
        answer = _text(item, "answer", file, eid)
        if len(answer) > MAX_ANSWER_CHARS:
            raise KnowledgeError(file, f"答案过长（{len(answer)} 字，上限 {MAX_ANSWER_CHARS} 字）",
                                 entry=eid, field="answer")
        unknown = _placeholders(answer) - PLACEHOLDERS
        if unknown:
            raise KnowledgeError(file, f"答案中有无法识别的占位符 {sorted(unknown)}（可用：{sorted(PLACEHOLDERS)}；"
                                 "普通花括号请写成 {{ }}）", entry=eid, field="answer")
        if UNFINDABLE_CITATION.search(answer):
            raise KnowledgeError(file, "答案引用了读者找不到的“第一条/第三条第N款（项）”", entry=eid, field="answer")
        conclusion = _text(item, "conclusion", file, eid, allow_empty=True)
        _check_conclusion(question, answer, conclusion, kind, file, eid)
        cited = _strings(item, "clauses", file, eid, minimum=1 if kind == "answer" else 0)
        for cid in cited:
            if cid not in clauses:
                raise KnowledgeError(file, f"引用的条款 {cid} 在 notice.yaml 中不存在", entry=eid, field="clauses")
            if not clauses[cid].text:
                raise KnowledgeError(file, f"引用的条款 {cid} 没有正文，读者看不到依据；请引用其下有正文的条款",
                                     entry=eid, field="clauses")
        _check_numbers(answer, [clauses[c].text for c in cited], meta, file, eid)
        if deadline in answer:
            raise KnowledgeError(file, f"通知原文是“{meta.deadline_wording}”，年份来自落款日期：请不要写成“{deadline}”，"
                                 f"可写“{meta.deadline_wording}”并注明年份按落款日期", entry=eid, field="answer")
        related = _strings(item, "related", file, eid)
        if len(related) > MAX_RELATED:
            raise KnowledgeError(file, f"相关问题最多 {MAX_RELATED} 个", entry=eid, field="related")
        entries[eid] = Entry(eid, topic, question, phrasings, answer, cited, related, kind, conclusion)
    for entry in entries.values():
        for rid in entry.related:
            if rid not in entries:
                raise KnowledgeError(file, f"相关条目 {rid} 不存在", entry=entry.id, field="related")
            if rid == entry.id:
                raise KnowledgeError(file, "相关条目不能是自己", entry=entry.id, field="related")
    return tuple(topics.values()), entries


def _check_numbers(answer: str, cited_texts: list[str], meta: Meta, file: str, eid: str) -> None:
    """Every figure an answer states is one its clauses state ("推荐3个" when the notice says 1 and 2 is not),
    the contact's phone, or the date line's year (which dates "5月20日前")."""
    words = "".join(cited_texts)
    allowed = {meta.contact.phone, str(meta.notice_date.year)}
    for number in NUMBER.findall(PLACEHOLDER.sub("", answer)):
        if number not in words and number not in allowed:
            raise KnowledgeError(file, f"答案中的数字“{number}”不在所引用条款的原文中", entry=eid, field="answer")


def _check_conclusion(question: str, answer: str, conclusion: str, kind: str, file: str, eid: str) -> None:
    """A yes/no question ("……吗？") gets its conclusion first: the field says which, the answer starts with it."""
    if kind == "answer" and question.rstrip("？?").endswith("吗") and not conclusion:
        raise KnowledgeError(file, "是/否类问题须写 conclusion（如 能、不能、需要、通知没有规定），答案以它开头",
                             entry=eid, field="conclusion")
    if conclusion and not answer.startswith(conclusion):
        raise KnowledgeError(file, f"答案应以结论“{conclusion}”开头", entry=eid, field="answer")


def _item_id(item: Any, n: int, file: str, list_field: str, noun: str, seen: Collection[str]) -> str:
    """The id of the n-th item of a list: the item is a mapping, its id well formed and new."""
    if not isinstance(item, dict):
        raise KnowledgeError(file, f"第 {n} 个{noun}应为键值映射", field=list_field)
    item_id = _text(item, "id", file, f"{noun}第 {n} 项")
    if not ID_PATTERN.match(item_id):
        raise KnowledgeError(file, "编号只能用小写字母、数字和下划线", entry=item_id, field="id")
    if item_id in seen:
        raise KnowledgeError(file, f"{noun}编号重复", entry=item_id, field="id")
    return item_id


def _vocabulary(doc: dict) -> Vocabulary:
    file = "synonyms.yaml"
    groups = []
    seen: dict[str, int] = {}
    for n, group in enumerate(doc.get("synonyms") or [], 1):
        entry = f"同义词第 {n} 组"
        if not isinstance(group, list) or len(group) < 2:
            raise KnowledgeError(file, "每组至少两个词", entry=entry, field="synonyms")
        words = []
        for w in group:
            if not isinstance(w, str | int) or not str(w).strip():
                raise KnowledgeError(file, "词不能为空", entry=entry, field="synonyms")
            w = str(w).strip().lower()
            if w in seen and seen[w] != n:
                raise KnowledgeError(file, f"“{w}”同时出现在第 {seen[w]} 组和第 {n} 组", entry=entry, field="synonyms")
            seen[w] = n
            words.append(w)
        groups.append(tuple(words))
    misspellings = doc.get("misspellings") or {}
    if not isinstance(misspellings, dict):
        raise KnowledgeError(file, "应为“错误写法: 正确写法”的映射", field="misspellings")
    fixed = {}
    for wrong, right in misspellings.items():
        if not str(wrong).strip() or not isinstance(right, str) or not right.strip():
            raise KnowledgeError(file, "错误写法和正确写法都不能为空", entry=str(wrong), field="misspellings")
        fixed[str(wrong).strip().lower()] = right.strip()
    terms = _strings(doc, "terms", file, "terms")
    stopwords = _strings(doc, "stopwords", file, "stopwords")
    return Vocabulary(tuple(groups), fixed, terms, frozenset(stopwords))


def _smalltalk(doc: dict) -> tuple[SmallTalk, ...]:
    file = "smalltalk.yaml"
    out = []
    ids = set()
    for n, item in enumerate(_list(doc, "intents", file), 1):
        if not isinstance(item, dict):
            raise KnowledgeError(file, f"第 {n} 项应为键值映射", field="intents")
        iid = _text(item, "id", file, f"第 {n} 项")
        if iid in ids:
            raise KnowledgeError(file, "编号重复", entry=iid, field="id")
        ids.add(iid)
        out.append(SmallTalk(iid, _strings(item, "patterns", file, iid, minimum=1), _text(item, "reply", file, iid)))
    return tuple(out)
