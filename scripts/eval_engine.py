"""Measure the answering engine on the blind corpus, and fit its decision policy.

    python scripts/eval_engine.py              # figures on the test split (+ the dev set)
    python scripts/eval_engine.py --split validation
    python scripts/eval_engine.py --fit        # fit weights on train; floors on validation plus
                                               # train answered out of fold; write
                                               # knowledge/data/policy.yaml, print both
    python scripts/eval_engine.py --lexical    # the engine without the semantic model

Figures: accuracy; wrong-answer rate (in-scope questions answered wrongly,
as opposed to an honest refusal); refusal rate on in-scope questions;
out-of-scope questions refused honestly; accuracy by style.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from knowledge.answering import compose  # noqa: E402
from knowledge.answering.classifier import CLASSIFIER_FILE, NONE, EntryClassifier, NgramClassifier  # noqa: E402
from knowledge.answering.decide import (  # noqa: E402
    CONFIDENCE_FEATURES,
    POLICY_PATH,
    Model,
    Policy,
    Tree,
    TreeModel,
    confidence_row,
    neutral_policy,
)
from knowledge.answering.engine import Engine  # noqa: E402
from knowledge.answering.evaluation import (  # noqa: E402
    CORPUS_DIR,
    Figures,
    Item,
    load_items,
    load_split,
    measure,
)
from knowledge.answering.index import Index  # noqa: E402
from knowledge.answering.score import FEATURES, Candidate  # noqa: E402
from knowledge.answering.vectors import VectorCache, open_cache  # noqa: E402
from knowledge.assistant import default_embedder  # noqa: E402
from knowledge.loader import load_knowledge  # noqa: E402

EXAMPLES_PATH = ROOT / "knowledge" / "data" / "examples.yaml"
CLASSIFIER_PATH = ROOT / "knowledge" / "data" / CLASSIFIER_FILE
# Regularisation of the entry classifier (inverse strength). Unit vectors from one model
# differ in small amounts, so it needs little; chosen on validation top-1 accuracy.
CLASSIFIER_C = 300.0
# The character n-gram classifier: single characters and pairs (validation top-1 0.906 alone,
# against 0.864 with triples too); SGD's L2 strength (3e-6 of 3e-7..3e-5); the mixes tried on validation.
NGRAM_RANGE = (1, 2)
NGRAM_ALPHA = 3e-6
MIXES = (0.2, 0.3, 0.4, 0.5, 0.6, 1.0)
TODAY = date(2026, 12, 2)  # answers are judged on content; the clock only changes the deadline status
DEV_SET = ROOT.parent / "shared" / "eval" / "dev.yaml"
# A wrong answer costs this many right ones when floors are chosen: worse than a refusal.
WRONG_COST = 5.0
PART_FLOORS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
ANSWER_FLOORS = [round(float(x), 3) for x in np.arange(0.60, 0.951, 0.025)]
TIE_MARGINS = [0.0, 0.03, 0.06]  # 0: never ask
TIE_FLOORS = [0.5, 0.6]  # both entries must be likely: a real tie, not two weak guesses
# The confidence model: gradient-boosted trees when they beat the linear model on validation.
TREES = {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 20, "subsample": 0.8,
         "random_state": 0}
SUGGEST_FLOOR = 0.15


def build_engine(semantic: bool, index_path: Path, policy: Policy | None = None) -> Engine:
    kb = load_knowledge()
    embedder = default_embedder() if semantic else None
    if semantic and embedder is None:
        raise SystemExit("the semantic model could not load; use --lexical")
    return Engine(kb, Index.open(index_path, kb), embedder, policy)


def passing_entries(engine: Engine, item: Item, entry_ids) -> list[str]:
    """The entries whose reply to this question passes it: composed with the question, as the
    engine sends it, so a yes/no question on a wrong premise ("申请书交两份就够了吧？") is
    answered by the entry whose reply starts with the "no" (premise.py), not labelled unanswerable."""
    kb = engine.kb
    question = engine.index.normalise(engine.smalltalk.strip(item.q))
    return [e for e in entry_ids if item.passes(compose.entry_reply(kb, kb.entries[e], TODAY, question=question).text)]


class CachedFeatures:
    """Memoise the engine's feature extraction (the path both `features` and `reply` take):
    floors and weights change from one trial to the next, the features do not."""

    def __init__(self, engine: Engine) -> None:
        self._features = engine._features
        self._memo: dict[tuple, tuple] = {}
        engine._features = self  # type: ignore[method-assign]
        if engine.semantic is not None:
            # reply() still embeds each message before it asks for features: keep every vector,
            # or thousands of questions push each other out and every trial embeds them all again.
            engine.semantic.question_memory = 10**6

    def __call__(self, normal: str, exclude_batch: str | None = None):
        key = (normal, exclude_batch)
        if key not in self._memo:
            self._memo[key] = self._features(normal, exclude_batch)
        return self._memo[key]


def write_examples(engine: Engine, items: list[Item]) -> int:
    """examples.yaml: each train question with the entry whose reply passes it (the closest
    one in meaning when several do), or no entry when the notice does not answer it."""
    kb, sem = engine.kb, engine.semantic
    entry_ids = list(kb.entries)
    rows = []
    for item in items:
        if item.style == "multi":
            continue
        if not item.in_scope:
            rows.append({"q": item.q, "entry": None, "batch": item.batch})
            continue
        passing = passing_entries(engine, item, entry_ids)
        if not passing:
            continue  # the knowledge base has no right answer: nothing to learn from
        cos = sem.cosines(sem.embed_question(engine.index.model_text(item.q))).phrasing
        best = max(passing, key=lambda e: cos[sem.position[e]])
        rows.append({"q": item.q, "entry": best, "batch": item.batch})
    header = ("# Labelled example questions: the corpus's train split (tests/corpus), each with the entry\n"
              "# whose answer is right for it (entry: null = the notice does not answer it). Written by\n"
              "# `python scripts/eval_engine.py --fit`; the engine uses them as nearest neighbours.\n")
    EXAMPLES_PATH.write_text(header + yaml.safe_dump({"examples": rows}, allow_unicode=True, sort_keys=False,
                                                     width=200), encoding="utf-8")
    return len(rows)


def fit_ngrams(texts: list[str], y: np.ndarray, w: np.ndarray) -> NgramClassifier:
    """The character n-gram classifier (TF-IDF, one-vs-rest logistic by SGD), as plain arrays."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier

    low, high = NGRAM_RANGE
    vec = TfidfVectorizer(analyzer="char", ngram_range=NGRAM_RANGE, min_df=2, sublinear_tf=True)
    X = vec.fit_transform(texts)
    sgd = SGDClassifier(loss="log_loss", alpha=NGRAM_ALPHA, max_iter=30, random_state=0)
    sgd.fit(X, y, sample_weight=w)
    vocabulary = {str(g): int(i) for g, i in vec.vocabulary_.items()}
    out = NgramClassifier(vocabulary, vec.idf_.astype(np.float64), sgd.coef_.T.astype(np.float32),
                          sgd.intercept_.astype(np.float64), low, high)
    for text in texts[:: max(1, len(texts) // 50)]:  # the run-time arithmetic is scikit-learn's
        assert np.allclose(out.probabilities(text), sgd.predict_proba(vec.transform([text]))[0], atol=1e-4), text
    return out


def fit_classifiers(engine: Engine, items: list[Item], validation: list[Item]
                    ) -> tuple[EntryClassifier, dict[str, EntryClassifier]]:
    """The entry classifier on every train question (each labelled with the entries whose reply
    passes it, NONE when the notice is silent) and every entry's own questions; and one per
    train batch fitted without that batch, so train features are out of fold as at run time.
    Each pairs an embedding classifier with a character n-gram one; their mix is the weight
    that ranks the validation questions' right entries first most often."""
    from sklearn.linear_model import LogisticRegression

    kb, sem = engine.kb, engine.semantic
    cache = VectorCache(open_cache(engine.index.db), sem.embedder)
    covered = [e.id for e in kb.entries.values() if e.covered]
    texts, labels, weights, batches = [], [], [], []
    for entry in kb.entries.values():
        for text in (entry.question, *entry.phrasings):
            texts.append(text)
            labels.append(entry.id)
            weights.append(1.0)
            batches.append("")
    for item in items:
        if item.style == "multi":
            continue
        passing = [NONE] if not item.in_scope else passing_entries(engine, item, covered)
        for label in passing:  # several right entries share the example's weight
            texts.append(item.q)
            labels.append(label)
            weights.append(1.0 / len(passing))
            batches.append(item.batch)
    model_texts = [engine.index.model_text(t) for t in texts]
    X = cache.queries(model_texts)
    y, w, b = np.asarray(labels), np.asarray(weights), np.asarray(batches)

    def to_classifier(clf, ngrams: NgramClassifier, mix: float = 1.0) -> EntryClassifier:
        return EntryClassifier(tuple(map(str, clf.classes_)), clf.coef_.astype(np.float32),
                               clf.intercept_.astype(np.float32), sem.embedder.name, ngrams, mix)

    full = LogisticRegression(C=CLASSIFIER_C, max_iter=3000).fit(X, y, sample_weight=w)
    full_ngrams = fit_ngrams(model_texts, y, w)
    mix = choose_mix(engine, to_classifier(full, full_ngrams), validation)
    folds = {}
    for held in sorted({item.batch for item in items}):
        keep = b != held
        fold = LogisticRegression(C=CLASSIFIER_C, max_iter=3000, warm_start=True)
        fold.coef_, fold.intercept_ = full.coef_.copy(), full.intercept_.copy()  # start from the full fit
        fold.fit(X[keep], y[keep], sample_weight=w[keep])
        kept_texts = [t for t, k in zip(model_texts, keep, strict=True) if k]
        folds[held] = to_classifier(fold, fit_ngrams(kept_texts, y[keep], w[keep]), mix)
    return to_classifier(full, full_ngrams, mix), folds


def choose_mix(engine: Engine, classifier: EntryClassifier, validation: list[Item]) -> float:
    """The embedding classifier's weight in the mix, by top-1 on validation (a right entry, or
    NONE for a question the notice does not answer)."""
    sem = engine.semantic
    covered = [e.id for e in engine.kb.entries.values() if e.covered]
    rows = []
    for item in validation:
        if item.style == "multi":
            continue
        right = {NONE} if not item.in_scope else set(passing_entries(engine, item, covered))
        if right:
            text = engine.index.model_text(item.q)
            rows.append((sem.embed_question(text), text, right))
    best = (-1.0, 1.0)
    for mix in MIXES:
        mixed = replace(classifier, mix=mix)
        hits = sum(mixed.classes[int(np.argmax(mixed.probabilities(v, t)))] in right for v, t, right in rows)
        print(f"  classifier mix {mix}: validation top-1 {hits / len(rows):.3f}")
        if hits / len(rows) > best[0]:
            best = (hits / len(rows), mix)
    return best[1]


@dataclass
class Question:
    """A training question's candidates: feature rows, and which entries' replies pass."""

    item: Item
    entry_ids: list[str]
    rows: np.ndarray
    labels: np.ndarray   # what the ranker learns from
    passing: np.ndarray  # whether each candidate's reply passes the item as it stands


def questions(engine: Engine, items: list[Item]) -> list[Question]:
    out = []
    cos_column = FEATURES.index("cos")
    for item in items:
        if item.style == "multi":  # one entry cannot answer two questions; parts are handled apart
            continue
        _, entry_ids, rows = engine.features(engine.smalltalk.strip(item.q), item.batch)
        if not entry_ids:
            continue
        right = set(passing_entries(engine, item, entry_ids))
        labels = np.asarray([e in right for e in entry_ids], dtype=int)
        rows = np.asarray(rows, float)
        passing_replies = labels.copy()
        if not item.in_scope:
            # Every not-covered entry "passes" a question the notice is silent on; teach the
            # ranker only the closest one, so such entries do not look right everywhere.
            passing = np.flatnonzero(labels)
            labels[:] = 0
            if len(passing):
                labels[passing[np.argmax(rows[passing, cos_column] + rows[passing, 0])]] = 1
        out.append(Question(item, entry_ids, rows, labels, passing_replies))
    return out


def fit_model(X: np.ndarray, y: np.ndarray, features: tuple[str, ...]) -> Model:
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant column (cosines without the model) carries no weight
    clf = LogisticRegression(C=1.0, max_iter=5000)
    clf.fit((X - mean) / scale, y)
    return Model(features, tuple(map(float, mean)), tuple(map(float, scale)),
                 tuple(float(w) for w in clf.coef_[0]), float(clf.intercept_[0]))


def fit_trees(X: np.ndarray, y: np.ndarray, features: tuple[str, ...]) -> TreeModel:
    from sklearn.ensemble import GradientBoostingClassifier

    clf = GradientBoostingClassifier(**TREES).fit(X, y)
    trees = []
    for (est,) in clf.estimators_:
        t = est.tree_
        trees.append(Tree(tuple(int(f) for f in t.feature), tuple(float(v) for v in t.threshold),
                          tuple(int(c) for c in t.children_left), tuple(int(c) for c in t.children_right),
                          tuple(float(v) for v in t.value[:, 0, 0])))
    rate = float(TREES["learning_rate"])
    # The prior's log-odds: whatever sklearn adds before the trees, read off one row.
    row = tuple(map(float, X[0]))
    intercept = float(clf.decision_function(X[:1])[0]) - rate * sum(tr.leaf_value(row) for tr in trees)
    return TreeModel(features, rate, intercept, tuple(trees))


def fit_ranker(qs: list[Question]) -> Model:
    return fit_model(np.vstack([q.rows for q in qs]), np.concatenate([q.labels for q in qs]), FEATURES)


def confidence_rows(ranker: Model, qs: list[Question]) -> tuple[np.ndarray, np.ndarray]:
    """For each question: the confidence features of the ranking, and whether its first entry passes."""
    X, y = [], []
    for q in qs:
        cands = [Candidate(e, tuple(r), ranker.probability(tuple(r))) for e, r in zip(q.entry_ids, q.rows, strict=True)]
        order = sorted(range(len(cands)), key=lambda i: cands[i].probability, reverse=True)
        X.append(confidence_row(tuple(cands[i] for i in order)))
        # Out of scope, every not-covered entry's reply passes (labels kept only the closest one).
        y.append(q.labels[order[0]] if q.item.in_scope else q.passing[order[0]])
    return np.asarray(X, float), np.asarray(y, int)


Models = tuple[Model, Model | TreeModel]  # a ranker and a confidence model


def fit_policy_models(qs: list[Question], trees: bool) -> tuple[Models, dict[str, Models]]:
    """The ranker on all of train; the confidence model (linear, or trees) on out-of-fold
    rankings (one batch held out at a time), so it learns how sure an unseen ranking deserves
    to be. Also, for each train batch, the pair fitted without it: with those, the floors are
    chosen on train questions answered as unseen ones, not on validation's three batches alone."""
    batches = sorted({q.item.batch for q in qs})
    fitter = fit_trees if trees else fit_model
    rankers, X, y = {}, {}, {}
    for held in batches:
        rankers[held] = fit_ranker([q for q in qs if q.item.batch != held])
        X[held], y[held] = confidence_rows(rankers[held], [q for q in qs if q.item.batch == held])
    confidence = fitter(np.vstack(list(X.values())), np.concatenate(list(y.values())), CONFIDENCE_FEATURES)
    folds = {}
    for held in batches:
        others = [b for b in batches if b != held]
        folds[held] = (rankers[held], fitter(np.vstack([X[b] for b in others]),
                                             np.concatenate([y[b] for b in others]), CONFIDENCE_FEATURES))
    return (fit_ranker(qs), confidence), folds


def evaluate(engine: Engine, items: list[Item]) -> Figures:
    return measure(items, lambda q: engine.reply(q, TODAY))


def evaluate_out_of_fold(engine: Engine, policy: Policy, folds: dict[str, Models], items: list[Item]) -> Figures:
    """Each item answered as an unseen question: a train item by the models (and the labelled
    examples and classifier) fitted without its batch, any other item by `policy` itself."""
    policies = {b: replace(policy, model=r, confidence=c) for b, (r, c) in folds.items()}
    figures = Figures()
    for item in items:
        held = item.batch if item.batch in policies else None
        engine.policy = policies[held] if held else policy
        figures.add(item, engine.reply(item.q, TODAY, exclude_batch=held))
    engine.policy = policy
    return figures


def _objective(fig: Figures) -> float:
    wrong = fig.wrong + (fig.out_of_scope - fig.oos_honest)
    return fig.correct - WRONG_COST * wrong


def choose_floors(engine: Engine, models: Models, folds: dict[str, Models], items: list[Item]
                  ) -> tuple[Policy, Figures]:
    """Grid search on `items` (validation, and train answered out of fold): first the answer
    and tie floors (parts off), then the part floor. Three validation batches alone flatter
    whatever floors suit them (wrong answers 1.6% there, 5.5% on the next test)."""
    ranker, confidence = models
    best = None
    for answer in ANSWER_FLOORS:
        for margin in TIE_MARGINS:
            for tie in TIE_FLOORS if margin else [1.0]:
                policy = Policy(ranker, confidence, answer, tie, margin, SUGGEST_FLOOR, 1.0)
                fig = evaluate_out_of_fold(engine, policy, folds, items)
                if best is None or _objective(fig) > best[0]:
                    best = (_objective(fig), policy, fig)
    for part in PART_FLOORS:
        policy = replace(best[1], part_floor=part)
        fig = evaluate_out_of_fold(engine, policy, folds, items)
        if _objective(fig) > best[0]:
            best = (_objective(fig), policy, fig)
    engine.policy = best[1]
    return best[1], best[2]


def policy_doc(policy: Policy) -> dict:
    def model(m: Model, r: int = 6) -> dict:
        return {"features": list(m.features), "mean": [round(v, r) for v in m.mean],
                "scale": [round(v, r) for v in m.scale], "weights": [round(v, r) for v in m.weights],
                "intercept": round(m.intercept, r)}

    def trees(m: TreeModel, r: int = 6) -> dict:
        return {"kind": "trees", "features": list(m.features), "rate": m.rate, "intercept": round(m.intercept, r),
                "trees": [{"feature": list(t.feature), "threshold": [round(v, r) for v in t.threshold],
                           "left": list(t.left), "right": list(t.right), "value": [round(v, r) for v in t.value]}
                          for t in m.trees]}

    confidence = policy.confidence
    return {
        "ranker": model(policy.model),
        "confidence": trees(confidence) if isinstance(confidence, TreeModel) else model(confidence),
        "floors": {"answer": policy.answer_floor, "tie": policy.tie_floor, "tie_margin": policy.tie_margin,
                   "suggest": policy.suggest_floor, "part": policy.part_floor},
        "fitted": policy.fitted,
    }


def fit(index_path: Path, kinds: tuple[str, ...] = ("linear", "trees")) -> None:
    train, validation = load_split("train"), load_split("validation")
    n = write_examples(build_engine(True, index_path, neutral_policy()), train)
    print(f"wrote {EXAMPLES_PATH.relative_to(ROOT)}: {n} labelled examples")
    started = time.perf_counter()
    classifier, classifier_folds = fit_classifiers(build_engine(True, index_path, neutral_policy()), train, validation)
    classifier.save(CLASSIFIER_PATH)
    print(f"wrote {CLASSIFIER_PATH.relative_to(ROOT)}: {len(classifier.classes)} classes, "
          f"{len(classifier_folds)} out-of-fold copies for training ({time.perf_counter() - started:.0f} s)")
    doc = {}
    for name, semantic in (("hybrid", True), ("lexical", False)):
        engine = build_engine(semantic, index_path, neutral_policy())
        if engine.semantic is not None:
            engine.semantic.fold_classifiers = classifier_folds
        CachedFeatures(engine)
        started = time.perf_counter()
        qs = questions(engine, train)
        print(f"  [{name}] features of {len(qs)} train questions, out of fold ({time.perf_counter() - started:.0f} s)")
        best = None
        # The fallback without the model stays linear: it is rarely used, and fitting is slow.
        for kind in kinds if semantic else ("linear",):
            step = time.perf_counter()
            models, folds = fit_policy_models(qs, trees=kind == "trees")
            print(f"  [{name}] {kind}: ranker and confidence model, and one pair per train batch "
                  f"({time.perf_counter() - step:.0f} s)")
            step = time.perf_counter()
            policy, fig = choose_floors(engine, models, folds, validation + train)
            print(f"  [{name}] {kind}: floors ({time.perf_counter() - step:.0f} s)")
            print(f"  [{name}] {kind} confidence model: validation + out-of-fold train accuracy {fig.accuracy:.3f}, "
                  f"wrong {fig.rate(fig.wrong, fig.in_scope):.3f}, objective {_objective(fig):.0f}")
            if best is None or _objective(fig) > _objective(best[1]):
                best = (policy, fig, kind, folds)
        policy, fig, kind, folds = best
        on_validation = evaluate_out_of_fold(engine, policy, folds, validation)
        on_train = evaluate_out_of_fold(engine, policy, folds, train)
        policy = replace(policy, fitted={
            "confidence_model": kind,
            "train_questions": len(train), "train_rows": int(sum(len(q.labels) for q in qs)),
            "validation_questions": len(validation),
            "floors_chosen_on": "validation + train out of fold",
            "validation": on_validation.summary(), "train_out_of_fold": on_train.summary(),
            "seconds": round(time.perf_counter() - started, 1)})
        doc[name] = policy_doc(policy)
        print("\n".join(on_validation.lines(f"[{name}] validation")))
        print("\n".join(on_train.lines(f"[{name}] train, each batch answered by models fitted without it")))
        print(f"  floors: answer {policy.answer_floor}, tie {policy.tie_floor} within {policy.tie_margin}, "
              f"part {policy.part_floor}")
    header = ("# The answering engine's decision policy. Written by `python scripts/eval_engine.py --fit`:\n"
              "# weights fitted on the corpus's train split; floors chosen on its validation split together\n"
              "# with the train split answered out of fold (each batch by models fitted without it).\n"
              "# Do not edit by hand; refit after changing the knowledge base or the features.\n")
    POLICY_PATH.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    print(f"\nwrote {POLICY_PATH.relative_to(ROOT)}")


def report(index_path: Path, split: str, semantic: bool, show_failures: bool, batch: str | None = None) -> None:
    engine = build_engine(semantic, index_path)
    label = "hybrid" if semantic else "lexical only"
    items = load_items(CORPUS_DIR / f"batch_{batch}.yaml") if batch else load_split(split)
    fig = evaluate(engine, items)
    print("\n".join(fig.lines(f"[{label}] " + (f"batch {batch}" if batch else f"{split} split"))))
    if show_failures:
        for item, text in fig.failures:
            print(f"- [{item.id}] ({item.style}) {item.q}\n    {' '.join(text.split())[:160]}")
    if DEV_SET.exists():
        dev = evaluate(engine, load_items(DEV_SET))
        print(f"dev set ({DEV_SET.name}): {dev.accuracy:.3f} ({dev.correct}/{dev.total})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", action="store_true", help="fit on train/validation and write policy.yaml")
    ap.add_argument("--split", default="test", help="split to report (default: test)")
    ap.add_argument("--lexical", action="store_true", help="without the semantic model")
    ap.add_argument("--batch", help="one batch instead of a split (e.g. a reserve batch: 10)")
    ap.add_argument("--failures", action="store_true", help="list failures (never on the test split you report)")
    ap.add_argument("--index", help="index database (default: var/index.db, shared with the bot)")
    ap.add_argument("--confidence", choices=("best", "linear", "trees"), default="best",
                    help="confidence model: the better on validation (default), or one kind only")
    args = ap.parse_args()
    index_path = Path(args.index) if args.index else ROOT / "var" / "index.db"
    if args.fit:
        fit(index_path, ("linear", "trees") if args.confidence == "best" else (args.confidence,))
    else:
        report(index_path, args.split, not args.lexical, args.failures, args.batch)


if __name__ == "__main__":
    main()
