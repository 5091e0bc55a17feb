"""Scores every knowledge-base entry against a question.

Candidates come from the SQLite full-text index (BM25); each is then scored
on three things: how much of the question's meaning it covers (token weights,
so an unknown word such as 补贴 pulls the score down), how much of the
candidate the question covers, and character-level similarity (rapidfuzz),
which forgives small slips the tokens miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from knowledge.answering.index import Index

# Credit for a question word that is part of a candidate's word or contains
# it (覆盖 ~ 覆盖率): related, not the same.
PARTIAL_CREDIT = 0.6
# An entry's answer is searched too, but only as a weak fallback: answers are
# long and share words with many questions.
ANSWER_DOC_FACTOR = 0.6


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    query_coverage: float


@dataclass(frozen=True)
class Ranking:
    tokens: tuple[str, ...]
    matches: tuple[Match, ...]  # best first, one per entry

    @property
    def top(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def margin(self) -> float:
        if len(self.matches) < 2:
            return self.matches[0].score if self.matches else 0.0
        return self.matches[0].score - self.matches[1].score


class Matcher:
    def __init__(self, index: Index) -> None:
        self.index = index

    def rank(self, text: str, limit: int = 60) -> Ranking:
        index = self.index
        tokens = list(dict.fromkeys(index.tokens(text)))
        if not tokens:
            return Ranking((), ())
        weights = {t: index.weight(t) for t in tokens}
        total = sum(weights.values())
        joined = "".join(tokens)
        best: dict[str, Match] = {}
        for doc in index.candidates(tokens, limit):
            matched = 0.0
            doc_matched = 0.0
            for t in tokens:
                if t in doc.tokens:
                    matched += weights[t]
                    doc_matched += weights[t]
                elif len(t) > 1 and any(len(d) > 1 and (t in d or d in t) for d in doc.tokens):
                    matched += PARTIAL_CREDIT * weights[t]
            q_cov = matched / total
            d_cov = doc_matched / doc.weight if doc.weight else 0.0
            similarity = fuzz.ratio(joined, doc.joined) / 100
            if doc.kind == "answer":
                score = ANSWER_DOC_FACTOR * q_cov
            else:
                score = 0.55 * q_cov + 0.25 * d_cov + 0.20 * similarity
            current = best.get(doc.entry_id)
            if current is None or score > current.score:
                best[doc.entry_id] = Match(doc.entry_id, score, q_cov)
        ranked = sorted(best.values(), key=lambda m: m.score, reverse=True)
        return Ranking(tuple(tokens), tuple(ranked))
