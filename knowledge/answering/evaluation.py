"""Measuring answers: the labelled corpus, the judge, and the figures.

The corpus (`tests/corpus/batch_*.yaml`) was written in blind batches by
people who saw only the notice; `tests/corpus/splits.yaml` assigns whole
batches to train, validation and test. An item passes when every `must`
fact (a list of alternatives) appears in the reply and no `must_not` string
does, after the same normalisation as `../shared/eval/score.py`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.answering.normalise import to_simplified
from knowledge.reply import Outcome, Reply

CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "corpus"
MAX_REPLY_CHARS = 600
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212~\u301c\uff5e\ufe63\uff0d"), "-")
_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    text = to_simplified(unicodedata.normalize("NFKC", str(text)))
    return _SPACE.sub("", text.translate(_DASHES)).casefold()


@dataclass(frozen=True)
class Item:
    id: str
    q: str
    kind: str   # in_scope | out_of_scope
    style: str
    topic: str
    must: tuple[tuple[str, ...], ...]
    must_not: tuple[str, ...]
    batch: str = ""

    @property
    def in_scope(self) -> bool:
        return self.kind == "in_scope"

    def passes(self, text: str) -> bool:
        norm = squash(text)
        if len(text.strip()) > MAX_REPLY_CHARS:
            return False
        if any(squash(s) in norm for s in self.must_not):
            return False
        return all(any(squash(a) in norm for a in fact) for fact in self.must)


def load_items(path: str | Path) -> list[Item]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    raw = doc["items"] if isinstance(doc, dict) else doc
    batch = str(doc.get("batch", "")) if isinstance(doc, dict) else ""
    items = []
    for r in raw:
        must = tuple(tuple([f] if isinstance(f, str) else f) for f in r.get("must") or [])
        must_not = r.get("must_not") or []
        must_not = (must_not,) if isinstance(must_not, str) else tuple(must_not)
        items.append(Item(str(r["id"]), str(r["q"]), r["kind"], str(r.get("style", "")), str(r.get("topic", "")),
                          must, must_not, batch))
    return items


def load_split(name: str, corpus_dir: Path = CORPUS_DIR) -> list[Item]:
    """Every item of the batches that splits.yaml assigns to `name` (train | validation | test …)."""
    splits = yaml.safe_load((corpus_dir / "splits.yaml").read_text(encoding="utf-8"))["splits"]
    items: list[Item] = []
    for batch in splits[name]:
        items += load_items(corpus_dir / f"batch_{batch}.yaml")
    return items


@dataclass
class Figures:
    total: int = 0
    correct: int = 0
    in_scope: int = 0
    wrong: int = 0          # in scope, answered, and the answer fails
    refused: int = 0        # in scope, not answered (not covered, or 您是想问)
    out_of_scope: int = 0
    oos_honest: int = 0     # out of scope and the reply says so, with the contact
    by_style: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[tuple[Item, str]] = field(default_factory=list)

    def add(self, item: Item, reply: Reply) -> None:
        ok = item.passes(reply.text)
        answered = reply.outcome in (Outcome.ANSWERED, Outcome.SMALLTALK)
        self.total += 1
        self.correct += ok
        self.by_style[item.style][0] += ok
        self.by_style[item.style][1] += 1
        if item.in_scope:
            self.in_scope += 1
            self.wrong += answered and not ok
            self.refused += not answered and not ok
        else:
            self.out_of_scope += 1
            self.oos_honest += ok
        if not ok:
            self.failures.append((item, reply.text))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def rate(self, n: int, of: int) -> float:
        return n / of if of else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "questions": self.total,
            "accuracy": round(self.accuracy, 3),
            "wrong_answer_rate": round(self.rate(self.wrong, self.in_scope), 3),
            "refusal_rate": round(self.rate(self.refused, self.in_scope), 3),
            "out_of_scope_honest": round(self.rate(self.oos_honest, self.out_of_scope), 3),
        }

    def lines(self, title: str) -> list[str]:
        s = self.summary()
        out = [f"{title}: {self.total} questions",
               f"  accuracy            {s['accuracy']:.3f} ({self.correct}/{self.total})",
               f"  wrong answers       {s['wrong_answer_rate']:.3f} of in-scope ({self.wrong}/{self.in_scope})",
               f"  refusals (in scope) {s['refusal_rate']:.3f} ({self.refused}/{self.in_scope})",
               f"  out-of-scope honest {s['out_of_scope_honest']:.3f} ({self.oos_honest}/{self.out_of_scope})",
               "  by style:"]
        for style in sorted(self.by_style):
            ok, n = self.by_style[style]
            out.append(f"    {style:<12} {ok:>4}/{n:<4} {ok / n:.3f}")
        return out


def measure(items: Iterable[Item], answer: Callable[[str], Reply]) -> Figures:
    figures = Figures()
    for item in items:
        figures.add(item, answer(item.q))
    return figures
