"""The answering engine: normalise -> retrieve -> score -> decide -> compose.

`Engine.reply(text, today)` is the whole path for one message. It knows
nothing of Telegram or the console; `knowledge.assistant.Assistant` wraps
it together with the self-check and the fixed replies.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from knowledge.answering import compose
from knowledge.answering.classifier import CLASSIFIER_FILE, load_classifier
from knowledge.answering.decide import Action, Decision, Policy, decide, load_policy
from knowledge.answering.embedding import Embedder
from knowledge.answering.index import Index
from knowledge.answering.normalise import sanitise
from knowledge.answering.parts import focus, question_parts
from knowledge.answering.retrieve import SemanticIndex, load_examples
from knowledge.answering.score import (
    Candidate,
    Matcher,
    SemanticSignals,
    Signal,
    candidate_features,
    unknown_share,
)
from knowledge.answering.smalltalk import SmallTalkDetector
from knowledge.answering.vectors import VectorCache, open_cache
from knowledge.loader import DATA_DIR, KnowledgeBase
from knowledge.reply import Reply

log = logging.getLogger(__name__)

# Longest message that is matched; the rest of a pasted essay is noise.
MAX_QUESTION_CHARS = 300
# How many entries each signal contributes to the candidate set.
LEXICAL_CANDIDATES = 8
SEMANTIC_CANDIDATES = 8
# A bare number ("1", "２", "三") is not a question: outside a pending 您是想问 menu
# it must not be matched to whatever entry mentions that number.
_NOISE = re.compile(r"[\s?!.,;:()\-~]+")
_BARE_NUMBER = re.compile(r"^\s*(?:[0-9]{1,3}|[一二三四五六七八九十])\s*[.、)）]?\s*$")


def _beside_kb(kb: KnowledgeBase, name: str) -> Path:
    """A fitted file beside the knowledge base's YAML (a staff copy), else the embedded one."""
    own = kb.source_dir / name
    return own if own.exists() else DATA_DIR / name


def examples_path(kb: KnowledgeBase) -> Path:
    return _beside_kb(kb, "examples.yaml")


def classifier_path(kb: KnowledgeBase) -> Path:
    return _beside_kb(kb, CLASSIFIER_FILE)


def _own_questions(question: str) -> list[str]:
    """"物业公司能申报吗？属于哪个领域？" asks two things; each, asked alone, is this entry's
    question too (when it says enough on its own: 7 characters or more)."""
    parts = [p for p in re.split(r"[？?]", question) if p.strip()]
    return [p for p in parts if len(p) >= 7] if len(parts) > 1 else []


def _squash(text: str) -> str:
    return _NOISE.sub("", text)


@dataclass(frozen=True)
class Analysis:
    """Everything the engine worked out about one message (for replies, staff and evaluation)."""

    tokens: tuple[str, ...]
    decision: Decision

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.decision.candidates


class Engine:
    def __init__(self, kb: KnowledgeBase, index: Index, embedder: Embedder | None = None,
                 policy: Policy | None = None) -> None:
        self.kb = kb
        self.index = index
        self.matcher = Matcher(index)
        self.smalltalk = SmallTalkDetector(kb.smalltalk)
        self.semantic: SemanticIndex | None = None
        if embedder is not None:
            examples = load_examples(examples_path(kb))
            cache = VectorCache(open_cache(index.db), embedder)
            classifier = load_classifier(classifier_path(kb), embedder.name, embedder.dim)
            self.semantic = SemanticIndex(kb, cache, index.model_text, examples, classifier)
        self.policy = policy or load_policy(semantic=self.semantic is not None)
        self._not_covered = {e.id for e in kb.entries.values() if not e.covered}
        # A message that is word for word one of an entry's own questions (staff wrote it,
        # or accepted it from the log) gets that entry: nothing to weigh.
        exact: dict[str, set[str]] = {}
        for entry in kb.entries.values():
            for text in (entry.question, *entry.phrasings, *_own_questions(entry.question)):
                exact.setdefault(_squash(index.normalise(text)), set()).add(entry.id)
        self._exact = exact

    # -- analysis --------------------------------------------------------------

    def analyse(self, text: str) -> Analysis:
        """Candidates for one question, each with its features and probability, and the decision."""
        return self._analyse(self.index.normalise(text))

    def _analyse(self, normal: str, exclude_batch: str | None = None) -> Analysis:
        tokens, entry_ids, rows = self._features(normal, exclude_batch)
        model = self.policy.model
        candidates = [Candidate(e, row, model.probability(row)) for e, row in zip(entry_ids, rows, strict=True)]
        owners = self._exact.get(_squash(normal), set())
        exact = next(iter(owners)) if len(owners) == 1 else None
        if exact is not None:
            known = next((c for c in candidates if c.entry_id == exact), None) or Candidate(exact, (), 1.0)
            best = Candidate(exact, known.features, 1.0)
            rest = tuple(sorted((c for c in candidates if c.entry_id != exact), key=lambda c: -c.probability))
            return Analysis(tokens, Decision(Action.ANSWER, best, (best, *rest), 1.0))
        return Analysis(tokens, decide(candidates, self.policy))

    def exact_owners(self, text: str) -> frozenset[str]:
        """The entries that have `text`, word for word, among their own questions."""
        return frozenset(self._exact.get(_squash(self.index.normalise(text)), ()))

    def features(self, text: str, exclude_batch: str | None = None
                 ) -> tuple[tuple[str, ...], list[str], list[tuple[float, ...]]]:
        """(tokens, candidate entry ids, one feature row per candidate): everything that
        does not depend on the policy, so the evaluation can refit without re-embedding.
        `exclude_batch` hides that batch's labelled examples (out-of-fold training)."""
        return self._features(self.index.normalise(text), exclude_batch)

    def _features(self, normal: str, exclude_batch: str | None = None
                  ) -> tuple[tuple[str, ...], list[str], list[tuple[float, ...]]]:
        whole = self.matcher.rank(normal)
        focus_text = focus(normal)
        focus_rank = self.matcher.rank(focus_text) if focus_text != normal else whole
        if not whole.tokens and not focus_rank.tokens:
            return (), [], []
        sem = self._semantics(normal, focus_text, exclude_batch)
        entry_ids = [m.entry_id for m in whole.matches[:LEXICAL_CANDIDATES]]
        entry_ids += [m.entry_id for m in focus_rank.matches[:LEXICAL_CANDIDATES // 2]]
        if sem is not None:
            signals = [(sem.cos, SEMANTIC_CANDIDATES), (sem.focus_cos, SEMANTIC_CANDIDATES // 2),
                       (sem.ex_cos, SEMANTIC_CANDIDATES // 2)]
            if sem.clf is not None:
                signals.append((sem.clf, SEMANTIC_CANDIDATES // 2))
            for signal, k in signals:
                entry_ids += signal.top(k, sem.ids)
        entry_ids = list(dict.fromkeys(entry_ids))
        rows = candidate_features(entry_ids, whole, focus_rank, sem, unknown_share(self.index, whole.tokens),
                                  len(normal), self._not_covered)
        return whole.tokens, entry_ids, rows

    def _semantics(self, normal: str, focus_text: str, exclude_batch: str | None) -> SemanticSignals | None:
        if self.semantic is None:
            return None
        sem = self.semantic
        position = sem.position
        correct = self.index.typos.correct
        model_text = correct(normal)
        whole = sem.cosines(sem.embed_question(model_text), exclude_batch, model_text)
        cos = Signal(whole.phrasing, position)
        focus_cos = cos
        if focus_text != normal:
            # The focus only adds its phrasing cosines: examples and classifier are the whole message's.
            focus_cos = Signal(sem.phrasing_cosines(sem.embed_question(correct(focus_text))), position)
        clf = Signal(whole.clf, position) if whole.clf is not None else None
        return SemanticSignals(sem.entry_ids, cos, Signal(whole.answer, position), focus_cos,
                               Signal(whole.example, position, positive_only=True),
                               Signal(whole.knn, position, positive_only=True), whole.none, clf, whole.clf_none)

    # -- the reply ---------------------------------------------------------------

    def reply(self, text: str, today: date, *, exclude_batch: str | None = None) -> Reply:
        """Any user text -> Reply. Never raises on input. `exclude_batch` (evaluation only)
        answers as if that corpus batch had never been seen: its labelled examples hidden, the
        classifier fitted without it (when `semantic.fold_classifiers` has one)."""
        text = sanitise(text or "")[:MAX_QUESTION_CHARS]
        intent = self.smalltalk.detect(text)
        if intent is not None:
            return Reply(intent.reply, compose.Outcome.SMALLTALK, 1.0, buttons=compose.START_BUTTONS)
        if _BARE_NUMBER.match(unicodedata.normalize("NFKC", text)):
            return compose.bare_number_reply()
        normal = self.index.normalise(self.smalltalk.strip(text))
        parts = question_parts(normal)
        if self.semantic is not None:
            # Everything this message may embed (whole, focus, each part and its focus), in one call.
            texts = [normal, focus(normal)]
            if len(parts) > 1:  # only then is each part analysed on its own
                texts += [t for part in parts for t in (part, focus(part))]
            self.semantic.prime([self.index.typos.correct(t) for t in texts])
        analysis = self._analyse(normal, exclude_batch)
        if not analysis.tokens:
            return compose.empty_reply()
        multi = self._multi_part(normal, parts, analysis, today, exclude_batch)
        if multi is not None:
            return multi
        vague = self._vague(analysis)
        if vague is not None:
            return vague
        return self._compose(analysis.decision, today, normal, analysis.tokens)

    def _vague(self, analysis: Analysis) -> Reply | None:
        """A message that is one word many entries use ("单位", "材料") names no subject: whatever
        the policy makes of it, offer the likeliest entries rather than answer one of them."""
        tokens = analysis.tokens
        weight = self.index.weights.get(tokens[0]) if len(tokens) == 1 else None
        if weight is None or weight >= self.index.rare_weight or analysis.decision.confidence >= 1.0:
            return None  # several words, an unknown word, a word that names a topic, or an exact phrasing
        options = [self.kb.entries[c.entry_id] for c in analysis.candidates
                   if self.kb.entries[c.entry_id].covered][:3]
        if len(options) < 2:
            return None
        return compose.ambiguous_reply(self.kb, options, analysis.decision.confidence)

    def _compose(self, decision: Decision, today: date, question: str = "", tokens: tuple[str, ...] = ()) -> Reply:
        kb, policy = self.kb, self.policy
        entries = kb.entries
        # Not one word the knowledge base knows ("股票明天会涨吗"): whatever the models make of it,
        # the notice is not what it asks about (a not-covered entry may still say what it is silent on).
        unknown_words = bool(tokens) and all(t not in self.index.weights for t in tokens)
        if decision.action is Action.ANSWER:
            best = decision.best
            if unknown_words and decision.confidence < 1.0 and entries[best.entry_id].covered:
                return compose.unknown_reply(kb, decision.confidence)
            if not entries[best.entry_id].covered and best.probability < policy.tie_floor:
                # Confident that the notice is silent, not that it is silent on this entry's
                # subject (the weather is not a question about office hours): say so plainly.
                return compose.unknown_reply(kb, decision.confidence)
            others = [entries[c.entry_id] for c in decision.candidates[1:]
                      if c.probability >= policy.suggest_floor and entries[c.entry_id].covered]
            return compose.entry_reply(kb, entries[best.entry_id], today, decision.confidence, also=others,
                                       question=question)
        if decision.action is Action.ASK:
            tied = [entries[c.entry_id] for c in decision.candidates[:3]
                    if c.probability >= policy.tie_floor
                    and decision.best.probability - c.probability < policy.tie_margin]
            if not any(e.covered for e in tied):
                # Every candidate is something the notice is silent on: say so, precisely.
                return compose.entry_reply(kb, tied[0], today, decision.confidence)
            if unknown_words:  # a menu of guesses would not help either
                return compose.unknown_reply(kb, decision.confidence)
            checked = compose.contradicted(kb, tied, question, today) if question else None
            if checked is not None:
                others = [e for e in tied if e.id != checked.id]
                return compose.entry_reply(kb, checked, today, decision.confidence, also=others, question=question)
            return compose.ambiguous_reply(kb, tied, decision.confidence)
        suggestions = [entries[c.entry_id] for c in decision.candidates[:2]
                       if c.probability >= policy.suggest_floor and entries[c.entry_id].covered]
        return compose.unknown_reply(kb, decision.confidence, suggestions)

    def _multi_part(self, normal: str, parts: list[str], whole: Analysis, today: date,
                    exclude_batch: str | None = None) -> Reply | None:
        """Answer each part of "截止时间和联系电话" (`normal`: the normalised message) when every
        part is a question that is answered with confidence, the parts are about different
        entries, and no single entry answers the whole message better."""
        if len(parts) < 2:
            return None
        found: list[Decision] = []
        for part in parts:
            decision = self._analyse(part, exclude_batch).decision
            # A part is short and has little to go on, so it needs less than a whole
            # message; but one part we cannot answer at all means we answer the whole.
            if decision.best is None or decision.confidence < self.policy.part_floor:
                return None
            if all(d.best.entry_id != decision.best.entry_id for d in found):
                found.append(decision)
        if len(found) < 2 or max(d.confidence for d in found) < self.policy.answer_floor:
            return None
        best = whole.decision
        weakest = min(d.confidence for d in found)
        if (best.action is Action.ANSWER and best.best.entry_id not in {d.best.entry_id for d in found}
                and best.confidence >= weakest):
            return None
        return compose.combined_reply(self.kb, [self.kb.entries[d.best.entry_id] for d in found], today, weakest)
