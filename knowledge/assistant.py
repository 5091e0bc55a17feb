"""The one brain behind every front door (console, Telegram, batch).

Assistant.answer() takes any text and returns a Reply with one of three
outcomes: answered (with the clause it relies on), ambiguous (up to three
candidate questions) or unknown (the notice does not say; here is the
office's contact). It never invents: every answer is an entry of the
knowledge base, written by staff from the notice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from knowledge.answering import compose
from knowledge.answering.index import Index
from knowledge.answering.score import Matcher, Ranking
from knowledge.answering.smalltalk import SmallTalkDetector
from knowledge.loader import Entry, KnowledgeBase, load_knowledge
from knowledge.reply import Button, Outcome, Reply
from knowledge.selfcheck.flow import SelfCheck, load_selfcheck

# Longest question text that is matched; the rest of a pasted essay is noise.
MAX_QUESTION_CHARS = 300
# Where a question may be cut into parts: punctuation and joining words.
_SPLIT = re.compile(r"[?!;.,]|以及|还有|另外|并且|同时|顺便问(?:一?下)?|和|及|跟")
# A part of a message counts as a question of its own when it asks something
# ("交到哪", "几份") or is a short noun phrase ("截止时间"); "我们是一家养老
#服务中心" is context for the question that follows, not a question.
_ASKS = re.compile(r"[?吗呢嘛么]|了解|想知道|想问|请问|咨询|介绍|几|多少|多久|多长|哪|什么|啥|谁|怎|如何|是否|能否|可否|何|有没有|是不是|要不要|能不能|可不可以")
SHORT_PART = 6


@dataclass(frozen=True)
class Thresholds:
    """Decision limits on the matcher's score (0..1); see README, "How answers are chosen"."""

    answer: float = 0.50      # at least this to answer ...
    margin: float = 0.04      # ... and this far ahead of the next entry,
    sure: float = 0.72        # ... unless the score is this high anyway
    coverage: float = 0.50    # share of the question's meaning the match must cover
    ambiguous: float = 0.36   # below this: not covered
    candidates_within: float = 0.12  # ambiguous candidates are this close to the best


class Assistant:
    def __init__(self, kb: KnowledgeBase, index: Index, today: Callable[[], date] = date.today,
                 thresholds: Thresholds | None = None) -> None:
        self.kb = kb
        self.index = index
        self.matcher = Matcher(index)
        self.today = today
        self.thresholds = thresholds or Thresholds()
        self.smalltalk = SmallTalkDetector(kb.smalltalk)
        # The interview is validated with the rest of the knowledge base, so a
        # broken selfcheck.yaml is refused at start, by kb check and by /reload.
        self.selfcheck: SelfCheck = load_selfcheck(kb)

    @classmethod
    def load(cls, index_path: str | Path, data_dir: str | Path | None = None,
             today: Callable[[], date] = date.today) -> Assistant:
        """Load and validate the YAML (KnowledgeError on a broken file), refresh the index."""
        kb = load_knowledge(data_dir)
        return cls(kb, Index.open(index_path, kb), today)

    # -- answering ---------------------------------------------------------------

    def answer(self, text: str) -> Reply:
        """Any user text -> Reply. Never raises on input."""
        text = (text or "")[:MAX_QUESTION_CHARS]
        intent = self.smalltalk.detect(text)
        if intent is not None:
            return Reply(intent.reply, Outcome.SMALLTALK, 1.0, buttons=compose.START_BUTTONS)
        question = self.smalltalk.strip(text)
        whole = self.matcher.rank(question)
        if not whole.tokens:
            return compose.empty_reply()
        multi = self._multi_part(question, whole)
        if multi is not None:
            return multi
        return self._decide(whole)

    def _decide(self, ranking: Ranking) -> Reply:
        t = self.thresholds
        top = ranking.top
        if top is None or top.score < t.ambiguous:
            return compose.unknown_reply(self.kb, top.score if top else 0.0)
        if self._confident(ranking):
            return compose.entry_reply(self.kb, self.kb.entries[top.entry_id], self.today(), top.score)
        close = [m for m in ranking.matches[:3] if m.score >= max(t.ambiguous, top.score - t.candidates_within)]
        if len(close) == 1 and top.query_coverage < t.coverage:
            # One weak candidate whose words cover too little of the question:
            # the question is most likely about something the notice lacks.
            return compose.unknown_reply(self.kb, top.score, [self.kb.entries[top.entry_id]])
        entries = [self.kb.entries[m.entry_id] for m in close]
        if not any(e.covered for e in entries):
            # Every candidate is something the notice is silent on: say so, with the contact.
            return compose.entry_reply(self.kb, entries[0], self.today(), top.score)
        return compose.ambiguous_reply(self.kb, entries, top.score)

    def _confident(self, ranking: Ranking) -> bool:
        t = self.thresholds
        top = ranking.top
        if top is None or top.score < t.answer or top.query_coverage < t.coverage:
            return False
        return top.score >= t.sure or ranking.margin() >= t.margin

    def _multi_part(self, question: str, whole: Ranking) -> Reply | None:
        """Answer each part of "截止时间和联系电话" when the parts are confidently
        different questions and no single entry answers the whole as well."""
        parts = [p for p in (s.strip() for s in _SPLIT.split(question)) if p]
        if len(parts) < 2:
            return None
        found: list[tuple[Entry, float]] = []
        for part in parts[:4]:
            if len(part) > SHORT_PART and not _ASKS.search(part):
                continue
            ranking = self.matcher.rank(part)
            if self._confident(ranking) and all(e.id != ranking.top.entry_id for e, _ in found):
                found.append((self.kb.entries[ranking.top.entry_id], ranking.top.score))
        if len(found) < 2:
            return None
        weakest = min(score for _, score in found)
        whole_is_a_part = whole.top is not None and any(e.id == whole.top.entry_id for e, _ in found)
        if self._confident(whole) and not whole_is_a_part and whole.top.score >= weakest - 0.05:
            return None
        return compose.combined_reply(self.kb, [e for e, _ in found], self.today(), weakest)

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
        text = (f"通知要求：申报推荐纸质材料并电子档文件请于{meta.deadline_wording}"
                f"（{meta.deadline.year}年）报{meta.contact.office}，逾期不再受理。\n"
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
        ranking = self.matcher.rank(text)
        out = []
        for match in ranking.matches:
            entry = self.kb.entries[match.entry_id]
            if entry.covered and match.score >= self.thresholds.ambiguous:
                out.append(compose.entry_reply(self.kb, entry, self.today(), match.score))
            if len(out) == limit:
                break
        return out

    # -- learning from staff (issue 11) ------------------------------------------------
    # The only calls knowledge/learning/ and its front doors make into the engine. Keep
    # these three signatures when the engine changes underneath them.

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k entries `text` most likely belongs to, best first, each with a 0..1 score
        (the engine's own match score, whatever it decided to reply)."""
        question = self.smalltalk.strip((text or "")[:MAX_QUESTION_CHARS])
        return [(m.entry_id, min(1.0, max(0.0, m.score))) for m in self.matcher.rank(question).matches[:k]]

    def match_score(self, text: str, entry_id: str) -> float:
        """How well `text` matches entry `entry_id` now, 0..1 (0 when it is not a candidate at all)."""
        question = self.smalltalk.strip((text or "")[:MAX_QUESTION_CHARS])
        for m in self.matcher.rank(question).matches:
            if m.entry_id == entry_id:
                return min(1.0, max(0.0, m.score))
        return 0.0

    def apply_learned(self, kb: KnowledgeBase) -> None:
        """Answer from `kb` from now on (the knowledge base with learned.yaml merged, or
        without a record just undone), without a restart. Today the index is rebuilt in
        place when kb's content hash differs from the one it was built from."""
        from knowledge.answering.index import build, is_current  # (here: this block is all issue 11 adds)

        if not is_current(self.index.db, kb):
            build(self.index.db, kb)
        self.index = Index(self.index.db, kb)
        self.matcher = Matcher(self.index)
        self.kb = kb
