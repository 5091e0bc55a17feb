"""A learned entry classifier over question embeddings: one ranking signal among the others.

Nearest-neighbour cosines weigh every dimension of the embedding alike, so a
long preamble ("我单位拟申报省级……试点，请问……") pulls a question towards
whatever other question shares that preamble. A softmax regression trained on
the labelled corpus (and the entries' own phrasings) learns which directions of
the embedding tell entries apart. Its weights are data, written by
`python scripts/eval_engine.py --fit` into `knowledge/data/classifier.npz`,
never edited by hand. An entry added since the last fit simply gets no
probability from it; the lexical and cosine signals still find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSIFIER_FILE = "classifier.npz"
# The class for questions the notice does not answer.
NONE = "__none__"


@dataclass(frozen=True)
class EntryClassifier:
    classes: tuple[str, ...]  # entry ids, and NONE
    weights: np.ndarray       # (len(classes), dim)
    bias: np.ndarray          # (len(classes),)
    model: str = ""           # the embedder's name: vectors of another model mean nothing here

    def probabilities(self, vector: np.ndarray) -> np.ndarray:
        """Softmax over `classes` for one L2-normalised question vector."""
        z = self.weights @ vector + self.bias
        z = np.exp(z - z.max())
        return z / z.sum()

    def aligned(self, vector: np.ndarray, position: dict[str, int], n: int) -> tuple[np.ndarray, float]:
        """(probability per entry in `position` order, probability that the notice is silent)."""
        p = self.probabilities(vector)
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
        np.savez_compressed(path, classes=np.asarray(self.classes, dtype=str), weights=self.weights.astype(np.float32),
                            bias=self.bias.astype(np.float32), model=np.asarray(self.model))


def load_classifier(path: str | Path, model: str, dim: int) -> EntryClassifier | None:
    """The fitted classifier, or None when the file is absent or was fitted for another model."""
    try:
        with np.load(path, allow_pickle=False) as data:
            clf = EntryClassifier(tuple(str(c) for c in data["classes"]), data["weights"].astype(np.float32),
                                  data["bias"].astype(np.float32), str(data["model"]))
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
    if not missing:
        return f"已加载，覆盖全部 {len(entry_ids)} 个条目"
    shown = "、".join(missing[:5]) + ("……" if len(missing) > 5 else "")
    return (f"已加载；{len(missing)} 个条目是训练后新增的（{shown}），它们只靠词语和语义匹配，"
            "请开发人员运行 scripts/eval_engine.py --fit 重新训练")
