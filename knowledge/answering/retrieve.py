"""Retrieve: the entries a question may be about, from two independent signals.

Lexical: the SQLite full-text index and the token scorer (`score.Matcher`).
Semantic: cosine similarity between the question's embedding and every
entry's question, phrasings and answer (`SemanticIndex`). The union of both
candidate lists goes on to scoring, so an entry found by meaning alone
(a formal verb the knowledge base never uses, an English question) is not lost.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from knowledge.answering.classifier import EntryClassifier
from knowledge.answering.embedding import Embedder
from knowledge.answering.vectors import VectorCache
from knowledge.loader import KnowledgeBase

# Generated files are large: libyaml reads them about seven times faster than pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Labelled example questions (knowledge/data/examples.yaml): how many nearest ones vote.
KNN = 5
# Question vectors kept in memory: a message, its focus and its parts are embedded in one
# call up front (`prime`), and a question asked again is not embedded again.
QUESTION_MEMORY = 4096


@dataclass(frozen=True)
class Example:
    """A question from the corpus's train split and the entry whose answer is right for it
    (None: the notice does not answer it). `batch` lets an evaluation leave a batch out."""

    text: str
    entry_id: str | None
    batch: str = ""


@dataclass(frozen=True)
class Semantic:
    """Per-entry cosines for one question (arrays indexed like `SemanticIndex.entry_ids`)."""

    phrasing: np.ndarray  # best cosine over the entry's question and phrasings
    answer: np.ndarray    # cosine with the entry's answer
    example: np.ndarray   # best cosine over the entry's example questions (0 without any)
    knn: np.ndarray       # the entry's share of the KNN nearest examples
    none: float = 0.0     # best cosine to an example the notice does not answer
    clf: np.ndarray | None = None  # the learned classifier's probability per entry (None without one)
    clf_none: float = 0.0          # ... and its probability that the notice is silent


class SemanticIndex:
    """Every entry's texts as a matrix of unit vectors, searched by one product."""

    def __init__(self, kb: KnowledgeBase, cache: VectorCache, normalise,
                 examples: tuple[Example, ...] = (), classifier: EntryClassifier | None = None) -> None:
        self.classifier = classifier
        # Out-of-fold classifiers (batch -> one fitted without it), set only while a policy is fitted.
        self.fold_classifiers: dict[str, EntryClassifier] = {}
        self.question_memory = QUESTION_MEMORY  # an evaluation over thousands of questions raises it
        self.embedder: Embedder = cache.embedder
        self.normalise = normalise
        self.entry_ids: list[str] = list(kb.entries)
        self.position = {eid: i for i, eid in enumerate(self.entry_ids)}
        texts, owners = [], []
        answers = []
        for i, entry in enumerate(kb.entries.values()):
            for text in (entry.question, *entry.phrasings):
                texts.append(normalise(text))
                owners.append(i)
            answers.append(normalise(entry.answer))
        self._owners = np.asarray(owners, dtype=np.int64)
        # Rows are grouped by entry, so a per-entry maximum is one reduceat.
        self._starts = _group_starts(self._owners)
        self._phrasings = cache.passages(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
        self._answers = cache.passages(answers) if answers else np.zeros((0, self.embedder.dim), np.float32)
        examples = tuple(e for e in examples if e.entry_id is None or e.entry_id in self.position)
        # Ordered by owner (the notice-is-silent ones, -1, first), so a per-entry maximum is one
        # reduceat, as for the phrasings, instead of a slow unbuffered np.maximum.at.
        examples = tuple(sorted(examples, key=lambda e: self.position[e.entry_id] if e.entry_id else -1))
        self._example_owner = np.asarray([self.position[e.entry_id] if e.entry_id else -1 for e in examples],
                                         dtype=np.int64)
        self._example_batch = np.asarray([e.batch for e in examples], dtype=str)
        owned = self._example_owner >= 0
        self._silent_examples = int((~owned).sum())
        covered_owner = self._example_owner[owned]
        self._example_starts = _group_starts(covered_owner)
        self._example_groups = covered_owner[self._example_starts]
        # Examples are questions, so they are embedded as queries, like the question asked.
        self._examples = (cache.queries([normalise(e.text) for e in examples]) if examples
                          else np.zeros((0, self.embedder.dim), np.float32))

        self._questions: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed_question(self, text: str) -> np.ndarray:
        """The vector of a normalised question (`normalise` already applied by the caller)."""
        vector = self._questions.get(text)
        if vector is None:
            self.prime([text])
            vector = self._questions[text]
        self._questions.move_to_end(text)
        return vector

    def forget_questions(self) -> None:
        """Drop the remembered question vectors (a benchmark measures fresh questions)."""
        self._questions.clear()

    def prime(self, texts: list[str]) -> None:
        """Embed every (normalised) text not yet in memory in one call: one model run per message, however
        many parts and foci it has, costs less than one run per text."""
        keys = list(dict.fromkeys(t for t in texts if t not in self._questions))
        if not keys:
            return
        for key, vector in zip(keys, self.embedder.embed(keys, query=True), strict=True):
            self._questions[key] = vector
        while len(self._questions) > self.question_memory:
            self._questions.popitem(last=False)

    def phrasing_cosines(self, vector: np.ndarray) -> np.ndarray:
        """Per entry, the best cosine over its question and phrasings (all a focus needs)."""
        if not len(self.entry_ids):
            return np.zeros(0, np.float32)
        return np.maximum.reduceat(self._phrasings @ vector, self._starts)

    def cosines(self, vector: np.ndarray, exclude_batch: str | None = None, text: str | None = None) -> Semantic:
        """Every signal for one question vector; `text` (the model text the vector was embedded
        from) lets the classifier add its character n-grams."""
        n = len(self.entry_ids)
        if not n:
            empty = np.zeros(0, np.float32)
            return Semantic(empty, empty, empty, empty)
        best = self.phrasing_cosines(vector)
        example, knn, none = np.zeros(n, np.float32), np.zeros(n, np.float32), 0.0
        if len(self._examples):
            sims = self._examples @ vector
            if exclude_batch is not None:
                sims = np.where(self._example_batch == exclude_batch, -1.0, sims)
            owners, silent = self._example_owner, self._silent_examples
            if len(self._example_groups):
                example[self._example_groups] = np.maximum(np.maximum.reduceat(sims[silent:], self._example_starts), 0)
            if silent:
                none = float(sims[:silent].max())
            nearest = np.argpartition(-sims, KNN - 1)[:KNN] if len(sims) > KNN else np.arange(len(sims))
            for i in nearest:
                if owners[i] >= 0 and sims[i] > 0:
                    knn[owners[i]] += 1.0 / KNN
        clf, clf_none = None, 0.0
        classifier = self.fold_classifiers.get(exclude_batch or "", self.classifier)
        if classifier is not None:
            clf, clf_none = classifier.aligned(vector, self.position, n, text)
        return Semantic(best, self._answers @ vector, example, knn, none, clf, clf_none)

    def top(self, semantic: Semantic, k: int) -> list[str]:
        order = np.argsort(-semantic.phrasing)[:k]
        return [self.entry_ids[i] for i in order]


def _group_starts(owners: np.ndarray) -> np.ndarray:
    """Where each run of equal owners begins, for np.maximum.reduceat over rows grouped by owner."""
    if not len(owners):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])


def load_examples(path: Path) -> tuple[Example, ...]:
    """The labelled examples written by `scripts/eval_engine.py --fit` (none if the file is absent).
    Examples whose entry no longer exists are skipped when the index is built."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except FileNotFoundError:
        return ()
    return tuple(Example(str(e["q"]), e.get("entry") or None, str(e.get("batch", "")))
                 for e in doc.get("examples") or [] if isinstance(e, dict) and e.get("q"))
