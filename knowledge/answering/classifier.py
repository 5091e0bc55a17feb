"""A learned entry classifier over question embeddings: one ranking signal among the others.

Nearest-neighbour cosines weigh every dimension of the embedding alike, so a
long preamble ("我单位拟申报省级……试点，请问……") pulls a question towards
whatever other question shares that preamble. A softmax regression trained on
the labelled corpus (and the entries' own phrasings) learns which directions of
the embedding tell entries apart. Its weights are data, written by
`python scripts/eval_engine.py --fit` into `knowledge/data/classifier.npz`,
never edited by hand. An entry added since the last fit simply gets no
probability from it; the lexical and cosine signals still find it.

Beside it sits a character n-gram classifier over the question's text (TF-IDF of
single characters and pairs, one-vs-rest logistic): it sees the exact words, where
the embedding sees meaning, and their product is a better ranking than either
(validation top-1 0.949 against 0.925 for the embedding alone, in the last fit). It is stored in the same
file and mixed in log space with a weight chosen on validation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSIFIER_FILE = "classifier.npz"
# The class for questions the notice does not answer.
NONE = "__none__"


_SPACES = re.compile(r"\s\s+")


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    """The n-grams scikit-learn's TfidfVectorizer(analyzer="char") takes: lower case, runs of
    white space made one space, every n from `low` to `high`."""
    text = _SPACES.sub(" ", text.lower())
    return [text[i:i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]


@dataclass(frozen=True)
class NgramClassifier:
    """One-vs-rest logistic regression over sublinear, L2-normalised TF-IDF character n-grams;
    its classes are its EntryClassifier's, in the same order."""

    vocabulary: dict[str, int]
    idf: np.ndarray           # (V,)
    weights: np.ndarray       # (V, len(classes)): one row per n-gram, gathered per question
    bias: np.ndarray          # (len(classes),)
    low: int = 1
    high: int = 2

    def probabilities(self, text: str) -> np.ndarray:
        counts = Counter(g for g in char_ngrams(text, self.low, self.high) if g in self.vocabulary)
        if counts:
            idx = np.fromiter((self.vocabulary[g] for g in counts), np.int64, len(counts))
            tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), np.float64, len(counts))
            x = tf * self.idf[idx]
            x /= np.linalg.norm(x)
            z = x @ self.weights[idx].astype(np.float64) + self.bias
        else:
            z = self.bias.astype(np.float64)
        p = 1.0 / (1.0 + np.exp(-z))  # scikit-learn's one-vs-rest probabilities: sigmoids, normalised
        return p / p.sum()


@dataclass(frozen=True)
class EntryClassifier:
    classes: tuple[str, ...]  # entry ids, and NONE
    weights: np.ndarray       # (len(classes), dim)
    bias: np.ndarray          # (len(classes),)
    model: str = ""           # the embedder's name: vectors of another model mean nothing here
    ngrams: NgramClassifier | None = None
    mix: float = 1.0          # weight of the embedding classifier's log-probability; the rest is the n-grams'

    def probabilities(self, vector: np.ndarray, text: str | None = None) -> np.ndarray:
        """Softmax over `classes` for one L2-normalised question vector; with the question's
        (model) text, mixed with the n-gram classifier's probabilities."""
        z = self.weights @ vector + self.bias
        z = np.exp(z - z.max())
        p = z / z.sum()
        if self.ngrams is None or text is None or self.mix >= 1.0:
            return p
        log = self.mix * np.log(p + 1e-9) + (1.0 - self.mix) * np.log(self.ngrams.probabilities(text) + 1e-9)
        q = np.exp(log - log.max())
        return q / q.sum()

    def aligned(self, vector: np.ndarray, position: dict[str, int], n: int,
                text: str | None = None) -> tuple[np.ndarray, float]:
        """(probability per entry in `position` order, probability that the notice is silent)."""
        p = self.probabilities(vector, text)
        out = np.zeros(n, np.float32)
        none = 0.0
        for cls, value in zip(self.classes, p, strict=True):
            i = position.get(cls)
            if i is not None:
                out[i] = value
            elif cls == NONE:
                none = float(value)
        return out, none

    def save(self, path: str | Path) -> None:
        extra = {}
        if self.ngrams is not None:
            g = self.ngrams
            grams = sorted(g.vocabulary, key=g.vocabulary.get)
            extra = {"ngram_vocabulary": np.asarray(grams, dtype=str), "ngram_idf": g.idf.astype(np.float32),
                     "ngram_weights": g.weights.astype(np.float16), "ngram_bias": g.bias.astype(np.float32),
                     "ngram_range": np.asarray([g.low, g.high]), "mix": np.asarray(self.mix)}
        np.savez_compressed(path, classes=np.asarray(self.classes, dtype=str), weights=self.weights.astype(np.float32),
                            bias=self.bias.astype(np.float32), model=np.asarray(self.model), **extra)


def load_classifier(path: str | Path, model: str, dim: int) -> EntryClassifier | None:
    """The fitted classifier, or None when the file is absent or was fitted for another model."""
    try:
        with np.load(path, allow_pickle=False) as data:
            classes = tuple(str(c) for c in data["classes"])
            ngrams, mix = None, 1.0
            if "ngram_weights" in data.files:
                low, high = (int(v) for v in data["ngram_range"])
                vocabulary = {str(g): i for i, g in enumerate(data["ngram_vocabulary"])}
                ngrams = NgramClassifier(vocabulary, data["ngram_idf"].astype(np.float64),
                                         data["ngram_weights"].astype(np.float32),
                                         data["ngram_bias"].astype(np.float64), low, high)
                mix = float(data["mix"])
                if ngrams.weights.shape != (len(vocabulary), len(classes)):
                    ngrams, mix = None, 1.0
            clf = EntryClassifier(classes, data["weights"].astype(np.float32), data["bias"].astype(np.float32),
                                  str(data["model"]), ngrams, mix)
    except (OSError, KeyError, ValueError):
        return None
    if clf.model != model or clf.weights.shape != (len(clf.classes), dim):
        return None
    return clf


def classifier_status(classifier: EntryClassifier | None, entry_ids: list[str]) -> str:
    """A line for `kb check`: whether the classifier is in use and which entries it has not learnt."""
    if classifier is None:
        return "未使用（缺少 classifier.npz 或与语义模型不符），其余信号照常工作"
    known = set(classifier.classes)
    missing = [e for e in entry_ids if e not in known]
    loaded = "已加载" + (f"（语义向量与字符 n-gram 两部分，语义权重 {classifier.mix:g}）"
                         if classifier.ngrams is not None and classifier.mix < 1.0 else "（仅语义向量部分）")
    if not missing:
        return f"{loaded}，覆盖全部 {len(entry_ids)} 个条目"
    shown = "、".join(missing[:5]) + ("……" if len(missing) > 5 else "")
    return (f"{loaded}；{len(missing)} 个条目是训练后新增的（{shown}），它们只靠词语和语义匹配，"
            "请开发人员运行 scripts/eval_engine.py --fit 重新训练")
