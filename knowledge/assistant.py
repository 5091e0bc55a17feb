"""The one brain behind every front door (console, Telegram, batch).

Assistant.answer() takes any text and returns a Reply with one of three
outcomes: answered (with the clause it relies on), ambiguous (up to three
candidate questions) or unknown (the notice does not say; here is the
office's contact). It never invents: every answer is an entry of the
knowledge base, written by staff from the notice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

from knowledge.answering import compose
from knowledge.answering.embedding import Embedder, load_embedder
from knowledge.answering.engine import MAX_QUESTION_CHARS, Analysis, Engine
from knowledge.answering.index import Index
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.reply import Button, Outcome, Reply
from knowledge.selfcheck.flow import SelfCheck, load_selfcheck

__all__ = ["MAX_QUESTION_CHARS", "Assistant", "default_embedder"]

# Repeated questions ("截止时间") are served from memory: same text, same day, same reply.
REPLY_CACHE_SIZE = 2048

_UNSET = object()
_shared_embedder: object = _UNSET


def default_embedder() -> Embedder | None:
    """The process-wide semantic model (loaded once; None when it cannot load)."""
    global _shared_embedder
    if _shared_embedder is _UNSET:
        _shared_embedder = load_embedder()
    return _shared_embedder  # type: ignore[return-value]


class Assistant:
    def __init__(self, kb: KnowledgeBase, index: Index, today: Callable[[], date] = date.today,
                 embedder: Embedder | None | object = _UNSET) -> None:
        self.kb = kb
        self.index = index
        self.today = today
        self.engine = Engine(kb, index, default_embedder() if embedder is _UNSET else embedder)
        self._cache: OrderedDict[tuple[str, date], Reply] = OrderedDict()
        # The interview is validated with the rest of the knowledge base, so a
        # broken selfcheck.yaml is refused at start, by kb check and by /reload.
        self.selfcheck: SelfCheck = load_selfcheck(kb)

    @classmethod
    def load(cls, index_path: str | Path, data_dir: str | Path | None = None,
             today: Callable[[], date] = date.today) -> Assistant:
        """Load and validate the YAML (KnowledgeError on a broken file), refresh the index."""
        kb = load_knowledge(data_dir)
        return cls(kb, Index.open(index_path, kb), today)

    @property
    def semantic(self) -> bool:
        """Whether the semantic model is in the loop (False: lexical signals only)."""
        return self.engine.semantic is not None

    # -- answering ---------------------------------------------------------------

    def answer(self, text: str) -> Reply:
        """Any user text -> Reply. Never raises on input."""
        key = (text or "", self.today())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        reply = self.engine.reply(text, key[1])
        self._cache[key] = reply
        if len(self._cache) > REPLY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return reply

    def analyse(self, text: str) -> Analysis:
        """The engine's candidates and decision for a text (evaluation, staff tools)."""
        return self.engine.analyse(self.engine.smalltalk.strip(text or ""))

    # -- fixed replies for buttons and commands ---------------------------------

    def answer_entry(self, faq_id: str) -> Reply:
        """The reply for one FAQ entry (a pressed "ask:<faq_id>" button)."""
        entry = self.kb.entries.get(faq_id)
        if entry is None:
            return Reply("这个问题已不在知识库中，请重新提问或查看常见问题。", Outcome.UNKNOWN,
                         buttons=(Button("常见问题", "cmd:faq"),))
        return compose.entry_reply(self.kb, entry, self.today())

    def clause_reply(self, clause_id: str) -> Reply:
        """A clause's full text with its label (a pressed "clause:<id>" / 查看原文 button)."""
        text = self.clause_text(clause_id)
        if text is None:
            return Reply(f"没有编号为“{clause_id}”的条款。", Outcome.UNKNOWN)
        return Reply(text, Outcome.ANSWERED, 1.0, clauses=(clause_id,))

    def clause_text(self, clause_id: str) -> str | None:
        clause_id = clause_id.strip()
        if clause_id not in self.kb.clauses:
            return None
        lines = []
        for clause in self.kb.children(clause_id):
            head = f"【{clause.label}】" + (f"{clause.title}" if clause.title else "")
            lines.append(head)
            if clause.text:
                lines.append(clause.text)
            if clause.note:
                # An editor's remark on the source text: shown apart, never as the notice's words.
                lines.append(f"〔注：{clause.note}〕")
        return "\n".join(lines)

    def topics(self) -> list[tuple[str, str]]:
        """(topic_id, name) for the /faq menu; topics with no entries are left out."""
        used = {e.topic for e in self.kb.entries.values()}
        return [(t.id, t.name) for t in self.kb.topics if t.id in used]

    def topic_questions(self, topic_id: str) -> list[tuple[str, str]]:
        return [(e.id, e.question) for e in self.kb.entries.values() if e.topic == topic_id]

    def welcome(self) -> Reply:
        doc = self.kb.meta.document
        text = (f"您好！我是“{doc['title']}”（{doc['number']}）的申报咨询助手。\n"
                "我可以：解答申报条件、名额、材料、截止时间、报送地点、审批流程和申请书填写等问题，并注明依据条款；"
                "带您做资格自测；提供联系方式。\n直接输入您的问题即可，例如“申报截止时间是什么时候？”")
        return Reply(text, Outcome.SMALLTALK, 1.0, buttons=compose.START_BUTTONS)

    def help(self) -> Reply:
        text = ("使用方法：\n"
                "· 直接输入问题，如“哪些单位可以申报？”“申请书要交几份？”\n"
                "· /faq 按主题浏览常见问题\n· /check 资格自测\n· /deadline 申报截止时间\n"
                "· /contact 联系方式\n· /subscribe 订阅公告和截止提醒（/unsubscribe 取消）\n"
                "· /cancel 退出当前操作\n"
                "回答均依据通知原文并注明条款；通知没有写的内容，我会如实说明并给出咨询电话。")
        return Reply(text, Outcome.SMALLTALK, 1.0, buttons=compose.START_BUTTONS)

    def deadline(self) -> Reply:
        meta = self.kb.meta
        # The notice says "5月20日前"; the year is the date line's, so it is said apart.
        text = (f"通知要求：申报推荐纸质材料并电子档文件请于{meta.deadline_wording}"
                f"报{meta.contact.office}，逾期不再受理。\n"
                f"（通知正文没有写年份，按落款日期为{meta.notice_date.year}年。）\n"
                f"{compose.deadline_status(meta, self.today())}\n"
                f"{compose.citation(self.kb, (meta.deadline_clause,))}")
        return Reply(text, Outcome.ANSWERED, 1.0, clauses=(meta.deadline_clause,))

    def contact(self) -> Reply:
        c = self.kb.meta.contact
        text = (f"联系人：{c.person}\n电话：{c.phone}\n邮箱：{c.email}（{c.email_note}）\n"
                f"材料报送：{c.office}\n{compose.citation(self.kb, (c.clause, self.kb.meta.deadline_clause))}")
        return Reply(text, Outcome.ANSWERED, 1.0, clauses=(c.clause, self.kb.meta.deadline_clause))

    def search(self, text: str, limit: int = 5) -> list[Reply]:
        """Answered replies for the best-matching covered entries (inline mode)."""
        out = []
        floor = self.engine.policy.suggest_floor
        for candidate in self.analyse(text).candidates:
            entry = self.kb.entries[candidate.entry_id]
            if entry.covered and candidate.probability >= floor:
                out.append(compose.entry_reply(self.kb, entry, self.today(), candidate.probability))
            if len(out) == limit:
                break
        return out

    # -- learning from staff (issue 11) ------------------------------------------------
    # The only calls knowledge/learning/ and its front doors make into the engine. Keep
    # these three signatures when the engine changes underneath them.

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k entries `text` most likely belongs to, best first, each with the ranker's
        0..1 probability that its answer is right (1.0 for a stored phrasing, word for word)."""
        return [(c.entry_id, c.probability) for c in self.analyse((text or "")[:MAX_QUESTION_CHARS]).candidates[:k]]

    def match_score(self, text: str, entry_id: str) -> float:
        """How well `text` matches entry `entry_id` now, 0..1 (0 when it is not a candidate at all).
        A stored phrasing of that entry, word for word, is 1.0 even when another entry has it too:
        that is exactly the conflict staff must see."""
        if entry_id in self.engine.exact_owners(text):
            return 1.0
        return dict(self.suggest(text, k=1_000)).get(entry_id, 0.0)

    def apply_learned(self, kb: KnowledgeBase) -> None:
        """Answer from `kb` from now on (the knowledge base with learned.yaml merged, or
        without a record just undone), without a restart. The lexical index is updated in
        place (`Index.refresh`: new phrasings are inserted, anything else rebuilds it) and
        only texts never embedded before are embedded; cached replies are dropped."""
        self.index.refresh(kb)
        self.engine = Engine(kb, self.index, self.engine.semantic.embedder if self.semantic else None,
                             self.engine.policy)
        self.kb = kb
        self._cache.clear()
