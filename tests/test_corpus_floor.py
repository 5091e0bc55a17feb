"""Regression floor on the frozen validation split of the blind corpus.

The figure reported is the test split's (scripts/eval_engine.py); this floor
only guards against a change that makes the engine worse on questions it was
not fitted on. The floors chosen by the fit, and their figures, are recorded in
policy.yaml; the engine must stay within a small margin of them.
"""

from __future__ import annotations

from knowledge.answering.decide import load_policy
from knowledge.answering.evaluation import load_split, measure

MARGIN = 0.03


def test_validation_split_holds_its_fitted_figures(assistant):
    fitted = load_policy().fitted["validation"]
    figures = measure(load_split("validation"), assistant.answer)
    summary = figures.summary()
    assert summary["accuracy"] >= fitted["accuracy"] - MARGIN, figures.lines("validation")
    assert summary["wrong_answer_rate"] <= fitted["wrong_answer_rate"] + MARGIN, figures.lines("validation")
    assert summary["out_of_scope_honest"] >= fitted["out_of_scope_honest"] - MARGIN, figures.lines("validation")


def test_the_corpus_is_blind_batches_split_by_batch():
    splits = {name: load_split(name) for name in ("train", "validation", "test", "spent", "reserve")}
    batches = {name: {i.batch for i in items} for name, items in splits.items()}
    names = list(batches)
    for n, first in enumerate(names):  # no batch serves two purposes
        for second in names[n + 1:]:
            assert not batches[first] & batches[second], (first, second)
    items = [i for group in splits.values() for i in group]
    assert len(items) >= 1500
    styles = [i.style for i in items]
    assert (styles.count("situation") + styles.count("long")) / len(items) >= 0.25
    assert len({i.id for i in items}) == len(items)
