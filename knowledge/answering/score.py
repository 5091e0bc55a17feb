"""Scores every knowledge-base entry against a question.

Candidates come from the SQLite full-text index (BM25); each is then scored
on three things: how much of the question's meaning it covers (token weights,
so an unknown word such as 补贴 pulls the score down), how much of the
candidate the question covers, and character-level similarity (rapidfuzz),
which forgives small slips the tokens miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
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
    doc_coverage: float = 0.0  # share of the best phrasing's meaning the question covers


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
                best[doc.entry_id] = Match(doc.entry_id, score, q_cov, d_cov if doc.kind != "answer" else 0.0)
        ranked = sorted(best.values(), key=lambda m: m.score, reverse=True)
        return Ranking(tuple(tokens), tuple(ranked))


# -- features for the learned decision policy ---------------------------------------

# The signals the policy weighs for one candidate entry. Order matters: it is
# the column order of the weights in policy.yaml (written by scripts/eval_engine.py).
FEATURES = (
    "lex",          # lexical score of the whole message (0..1)
    "lex_cov",      # share of the message's word weight the entry covers
    "lex_gap",      # lex minus the best other entry's lex
    "lex_dcov",     # share of the best phrasing's meaning the message covers (specific vs general)
    "focus_lex",    # lexical score of the question part alone (context clauses dropped)
    "cos",          # best cosine between the message and the entry's question/phrasings
    "cos_gap",      # cos minus the best other entry's cos
    "cos_ans",      # cosine between the message and the entry's answer
    "focus_cos",    # cos of the question part alone
    "focus_cos_gap",
    "ex_cos",       # best cosine to a labelled example question of this entry
    "ex_gap",       # ex_cos minus the best other entry's
    "knn",          # the entry's share of the nearest labelled examples
    "ex_none",      # best cosine to an example the notice does not answer
    "clf",          # the learned classifier's probability for this entry
    "clf_gap",      # clf minus the best other entry's
    "clf_none",     # the classifier's probability that the notice is silent
    "lex_first",    # 1 when the entry is the lexical scorer's first
    "cos_first",    # 1 when the entry is the semantic first
    "unknown",      # share of the message's word weight that the knowledge base never uses
    "not_covered",  # 1 for an entry of kind not_covered
    "length",       # log length of the message
)


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    features: tuple[float, ...]
    probability: float = 0.0


class Signal:
    """One semantic value per entry (a numpy array in entry order), read for a few candidates.
    Working on the array, not on a dict of every entry, keeps a 5,000-entry base fast.
    `positive_only`: entries at or below 0 count as absent (value 0, gap 0)."""

    def __init__(self, values: np.ndarray, position: dict[str, int], positive_only: bool = False) -> None:
        self.values = values
        self.position = position
        self.positive_only = positive_only
        present = values[values > 0] if positive_only else values
        top = np.partition(present, -2)[-2:] if len(present) >= 2 else np.r_[0.0, present.max() if len(present) else 0.0]
        self.first, self.second = float(max(top)), float(min(top)) if len(present) >= 2 else 0.0

    def value(self, entry_id: str) -> float:
        i = self.position.get(entry_id)
        v = float(self.values[i]) if i is not None else 0.0
        return 0.0 if self.positive_only and v <= 0 else v

    def gap(self, entry_id: str) -> float:
        """The value minus the best of the others (positive only for the leader)."""
        v = self.value(entry_id)
        if self.positive_only and v <= 0:
            return 0.0
        return v - (self.second if v == self.first else self.first)

    def top(self, k: int, ids: list[str]) -> list[str]:
        order = np.argsort(-self.values, kind="stable")[:k]
        return [ids[i] for i in order if not self.positive_only or self.values[i] > 0]


@dataclass(frozen=True)
class SemanticSignals:
    """Per-entry semantic values for one message (None without the model)."""

    ids: list[str]
    cos: Signal
    cos_ans: Signal
    focus_cos: Signal
    ex_cos: Signal
    knn: Signal
    none: float = 0.0
    clf: Signal | None = None
    clf_none: float = 0.0


def unknown_share(index: Index, tokens: tuple[str, ...]) -> float:
    if not tokens:
        return 0.0
    weights = [index.weight(t) for t in tokens]
    unknown = sum(w for t, w in zip(tokens, weights, strict=True) if t not in index.weights)
    return unknown / sum(weights)


def _gaps(values: dict[str, float]) -> dict[str, float]:
    """Each value minus the best of the others (positive only for the leader)."""
    if not values:
        return {}
    ordered = sorted(values.values(), reverse=True)
    first, second = ordered[0], (ordered[1] if len(ordered) > 1 else 0.0)
    return {k: v - (second if v == first else first) for k, v in values.items()}


def candidate_features(entry_ids: list[str], whole: Ranking, focus: Ranking, sem: SemanticSignals | None,
                       unknown: float, length: int, not_covered: set[str]) -> list[tuple[float, ...]]:
    """One feature row (in FEATURES order) per candidate entry."""
    lex = {m.entry_id: m.score for m in whole.matches}
    cov = {m.entry_id: m.query_coverage for m in whole.matches}
    dcov = {m.entry_id: m.doc_coverage for m in whole.matches}
    flex = {m.entry_id: m.score for m in focus.matches}
    lex_gap = _gaps({e: lex.get(e, 0.0) for e in set(entry_ids) | set(lex)})
    lex_first = whole.top.entry_id if whole.top else None
    cos_first = sem.ids[int(np.argmax(sem.cos.values))] if sem is not None and len(sem.ids) else None
    log_len = math.log1p(length)
    rows = []
    for e in entry_ids:
        if sem is not None:
            semantic = (sem.cos.value(e), sem.cos.gap(e), sem.cos_ans.value(e), sem.focus_cos.value(e),
                        sem.focus_cos.gap(e), sem.ex_cos.value(e), sem.ex_cos.gap(e), sem.knn.value(e), sem.none,
                        *((sem.clf.value(e), sem.clf.gap(e)) if sem.clf is not None else (0.0, 0.0)), sem.clf_none)
        else:
            semantic = (0.0,) * 12
        rows.append((
            lex.get(e, 0.0), cov.get(e, 0.0), lex_gap.get(e, 0.0), dcov.get(e, 0.0), flex.get(e, 0.0),
            *semantic, float(e == lex_first), float(e == cos_first),
            unknown, float(e in not_covered), log_len,
        ))
    return rows
