"""Decide: answer, ask which was meant, or say the notice does not cover it.

The policy is data (`knowledge/data/policy.yaml`), fitted by
`scripts/eval_engine.py` on the corpus's train split, with its floors chosen
on the validation split together with the train split answered out of fold;
nobody edits these numbers by hand. A logistic ranker turns each candidate's
features into the probability that the entry's answer is right for the
message, and a confidence model reads the ranking (how sure, how far ahead of
the second, on what signals) as the probability that the first entry is right;
then:

- answer the best entry when that confidence clears `answer_floor`;
- ask "您是想问" only on a real tie: two different entries both above
  `tie_floor` and within `tie_margin` of each other;
- otherwise the notice is taken not to cover the question.
A `not_covered` entry that wins is answered too: its answer says precisely
what the notice is silent on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from knowledge.answering.score import FEATURES, Candidate
from knowledge.errors import KnowledgeError

# Generated files are large: libyaml reads them about seven times faster than pure Python.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POLICY_PATH = Path(__file__).resolve().parent.parent / "data" / "policy.yaml"


@dataclass(frozen=True)
class Model:
    """Standardise, then a logistic regression: p = sigmoid(w · (x - mean) / scale + b)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    @classmethod
    def zero(cls, features: tuple[str, ...]) -> Model:
        n = len(features)
        return cls(features, (0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0)

    def probability(self, row: tuple[float, ...]) -> float:
        z = self.intercept
        for x, m, s, w in zip(row, self.mean, self.scale, self.weights, strict=True):
            z += w * (x - m) / s
        return _sigmoid(z)


@dataclass(frozen=True)
class Tree:
    """One regression tree, as flat arrays (a leaf has left == -1)."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def leaf_value(self, row: tuple[float, ...]) -> float:
        node = 0
        while self.left[node] >= 0:
            node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class TreeModel:
    """Gradient-boosted trees: p = sigmoid(intercept + rate * sum of leaf values). The confidence
    model is one: whether a ranking can be trusted depends on its signals together (a wide
    margin means little when the best cosine is weak), which a linear model cannot express."""

    features: tuple[str, ...]
    rate: float
    intercept: float
    trees: tuple[Tree, ...]

    def probability(self, row: tuple[float, ...]) -> float:
        return _sigmoid(self.intercept + self.rate * sum(t.leaf_value(row) for t in self.trees))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


# What the confidence model sees of a ranking: how sure the ranker is of its first
# entry, how far ahead of the second it is, and the raw signals behind the first.
_FROM_BEST = ("lex", "lex_gap", "lex_dcov", "cos", "cos_gap", "focus_cos", "ex_cos", "ex_gap", "knn", "ex_none",
              "clf", "clf_gap", "clf_none", "lex_first", "cos_first", "unknown", "not_covered", "length")
CONFIDENCE_FEATURES = ("p1", "p2", "p_gap", *_FROM_BEST)
_FROM_CANDIDATE = {name: FEATURES.index(name) for name in _FROM_BEST}


def confidence_row(ranked: tuple[Candidate, ...]) -> tuple[float, ...]:
    """CONFIDENCE_FEATURES for a ranking (best first, at least one candidate)."""
    best = ranked[0]
    p2 = ranked[1].probability if len(ranked) > 1 else 0.0
    values = {"p1": best.probability, "p2": p2, "p_gap": best.probability - p2}
    values.update({name: best.features[i] for name, i in _FROM_CANDIDATE.items()})
    return tuple(values[name] for name in CONFIDENCE_FEATURES)


@dataclass(frozen=True)
class Policy:
    model: Model  # ranker: the probability that a candidate's answer is right
    confidence: Model | TreeModel  # on the ranking: the probability that the first entry's answer is right
    answer_floor: float
    tie_floor: float
    tie_margin: float
    suggest_floor: float  # runners-up shown as 您可能还想问 / candidates on a refusal
    part_floor: float = 1.0  # each part of a two-question message must reach this
    fitted: dict = field(default_factory=dict)  # provenance: corpus, split sizes, figures


def neutral_policy() -> Policy:
    """A policy with no weights: every candidate at 0.5. Used only to extract features before a fit."""
    return Policy(Model.zero(FEATURES), Model.zero(CONFIDENCE_FEATURES), answer_floor=0.5, tie_floor=1.0,
                  tie_margin=0.0, suggest_floor=1.0)


class Action(StrEnum):
    ANSWER = "answer"
    ASK = "ask"        # 您是想问
    REFUSE = "refuse"  # not covered


@dataclass(frozen=True)
class Decision:
    action: Action
    best: Candidate | None
    candidates: tuple[Candidate, ...]  # best first (by the ranker's probability)
    confidence: float = 0.0  # the confidence model's probability that `best` is right


# Ranker probabilities this close to the best are a tie the ranker cannot break: for a short
# message ("截止日期") several entries saturate near 1 on shared signals. There the most literal
# signal, the lexical score, orders them.
SATURATED = 0.03
_LEX = FEATURES.index("lex")


def _ranked(candidates: list[Candidate]) -> tuple[Candidate, ...]:
    ranked = sorted(candidates, key=lambda c: c.probability, reverse=True)
    if len(ranked) < 2 or ranked[1].probability < ranked[0].probability - SATURATED:
        return tuple(ranked)
    top = ranked[0].probability
    close = [c for c in ranked if c.probability >= top - SATURATED]
    close.sort(key=lambda c: (c.features[_LEX] if c.features else 0.0, c.probability), reverse=True)
    return tuple(close + ranked[len(close):])


def decide(candidates: list[Candidate], policy: Policy) -> Decision:
    ranked = _ranked(candidates)
    if not ranked:
        return Decision(Action.REFUSE, None, ())
    best = ranked[0]
    confidence = policy.confidence.probability(confidence_row(ranked))
    if confidence >= policy.answer_floor:
        return Decision(Action.ANSWER, best, ranked, confidence)
    second = ranked[1] if len(ranked) > 1 else None
    # Not sure of the first, and a second entry just as likely: a real tie, so ask.
    if (second is not None and second.probability >= policy.tie_floor
            and best.probability - second.probability < policy.tie_margin):
        return Decision(Action.ASK, best, ranked, confidence)
    return Decision(Action.REFUSE, best, ranked, confidence)


def load_policy(path: str | Path | None = None, *, semantic: bool = True) -> Policy:
    """The fitted policy; `semantic=False` picks the lexical-only model (no embedder)."""
    path = Path(path) if path is not None else POLICY_PATH
    name = path.name
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(name, f"无法读取决策参数：{exc}") from None
    key = "hybrid" if semantic else "lexical"
    try:
        part = doc[key]
        ranker = _model(part["ranker"], FEATURES, name, f"{key}.ranker")
        confidence = _any_model(part["confidence"], CONFIDENCE_FEATURES, name, f"{key}.confidence")
        floors = part["floors"]
        return Policy(ranker, confidence, float(floors["answer"]), float(floors["tie"]),
                      float(floors["tie_margin"]), float(floors["suggest"]), float(floors["part"]),
                      dict(part.get("fitted") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowledgeError(name, f"决策参数格式有误：{exc}", entry=key) from None


def _check_features(m: dict, expected: tuple[str, ...], file: str, entry: str) -> None:
    if tuple(m["features"]) != expected:
        raise KnowledgeError(file, "特征与引擎不一致，请重新运行 scripts/eval_engine.py --fit", entry=entry,
                             field="features")


def _any_model(m: dict, expected: tuple[str, ...], file: str, entry: str) -> Model | TreeModel:
    if m.get("kind") != "trees":
        return _model(m, expected, file, entry)
    _check_features(m, expected, file, entry)
    trees = []
    for t in m["trees"]:
        tree = Tree(tuple(map(int, t["feature"])), tuple(map(float, t["threshold"])), tuple(map(int, t["left"])),
                    tuple(map(int, t["right"])), tuple(map(float, t["value"])))
        n = len(tree.value)
        # Children come after their parent, so evaluation always reaches a leaf.
        if not (len(tree.feature) == len(tree.threshold) == len(tree.left) == len(tree.right) == n) or any(
                (lc >= 0) != (rc >= 0) or lc >= n or rc >= n or 0 <= lc <= i or 0 <= rc <= i
                or (lc >= 0 and not 0 <= f < len(expected))
                for i, (f, lc, rc) in enumerate(zip(tree.feature, tree.left, tree.right, strict=True))):
            raise KnowledgeError(file, "决策树结构有误", entry=entry, field="trees")
        trees.append(tree)
    return TreeModel(expected, float(m["rate"]), float(m["intercept"]), tuple(trees))


def _model(m: dict, expected: tuple[str, ...], file: str, entry: str) -> Model:
    _check_features(m, expected, file, entry)
    model = Model(expected, tuple(map(float, m["mean"])), tuple(map(float, m["scale"])),
                  tuple(map(float, m["weights"])), float(m["intercept"]))
    if not len(model.mean) == len(model.scale) == len(model.weights) == len(expected):
        raise KnowledgeError(file, "参数个数与特征个数不符", entry=entry, field="weights")
    return model
