"""The answering engine's stages, each on its own, and the engine without its semantic model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import sqlite_utils
import yaml

from knowledge.answering import embedding
from knowledge.answering import vectors as vectors_module
from knowledge.answering.decide import CONFIDENCE_FEATURES, FEATURES, POLICY_PATH, load_policy
from knowledge.answering.engine import Engine, examples_path
from knowledge.answering.index import Index
from knowledge.answering.parts import focus, question_parts
from knowledge.answering.premise import (
    claim_lead,
    flipped_conclusion,
    negative_lead,
    reassuring_lead,
    requirement_lead,
)
from knowledge.answering.retrieve import load_examples
from knowledge.answering.typos import PinyinCorrector
from knowledge.answering.vectors import VectorCache
from knowledge.assistant import Assistant
from knowledge.errors import KnowledgeError
from knowledge.reply import Outcome
from tests.conftest import AFTER_DEADLINE


class CountingEmbedder:
    """A stand-in model: deterministic vectors, and a count of what it was asked to embed."""

    name = "test:counting"
    dim = 8

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self.calls = 0

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        self.embedded += texts
        self.calls += 1
        rows = np.asarray([[(hash((t, i)) % 1000) / 1000 for i in range(self.dim)] for t in texts], np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# -- normalise / parts / premise / typos ------------------------------------------------------


def test_focus_drops_the_scene_but_keeps_the_question():
    assert focus("我们是区博物馆,属于事业单位,材料最晚啥时候交?") == "材料最晚啥时候交"
    assert focus("截止时间") == "截止时间"
    # A bare confirmation tag asks nothing itself: the claim before it is the question.
    assert focus("企业一律不能申报,是吗?") == "企业一律不能申报,是吗?"
    assert focus("我们是协会,市里推荐就行,对吗?") == "市里推荐就行,对吗"


@pytest.mark.parametrize("text, parts", [
    ("截止时间和联系电话", 2),
    ("社区管理在不在范围内?截止日期是哪天?", 2),
    ("我们是社区,能申报吗?", 1),             # a situation followed by one question is one question
    ("政务服务和行政审批属于哪个领域", 1),
    ("保证单位和指导单位分别填谁?", 2),        # 分别: each noun gets the question
    ("推荐上去就算省级试点了,不用再审,是吗?", 1),
    ("截止时间?联系电话?", 2),
    ("我们是市体育馆,事业单位,请问申报材料要交什么?", 1),  # a short phrase between commas sets the scene  # 是吗 confirms the claim, it is no second question
])
def test_a_message_is_split_only_where_each_part_asks(text, parts):
    assert len(question_parts(text)) == parts


@pytest.mark.parametrize("question, answer, lead", [
    ("申请书交两份就够了吧?", "一式四份。", "不够。"),
    ("标准覆盖率达到50%就行吗?", "覆盖率要达到80%以上。", "不行。"),
    ("达到90%可以吗?", "覆盖率要达到80%以上。", None),          # 以上: 90% agrees
    ("试点创建期是一年吗?", "试点创建时间一般为2-3年。", "不是。"),
    ("可以推荐3个吗?", "原则上每批控制为1个；成员单位每批不超过2个。", "不行。"),
    ("推荐2个可以吗?", "原则上每批控制为1个；成员单位每批不超过2个。", None),  # agrees with one: say nothing
    ("要交几份?", "一式四份。", None),                              # not a yes/no question
    ("交两份行吗?", "不行，须一式四份。", None),                     # already concluded
    ("一个市能推荐3个项目吗?", "每批控制为1个；成员单位每批不超过2个。", "不行。"),  # 一个市 is no figure
    ("5月25号交还来得及吗?", "请于5月20日前报送。", "来不及。"),
    ("5月18号交来得及吗?", "请于5月20日前报送。", None),
    ("联系电话是87710371吧?", "联系人许钦祥，电话87710317。", "不是。"),
    ("电话是87710317吧?", "联系人许钦祥，电话87710317。", None),
    ("这是第一批试点的通知吧?", "本通知是第二批试点项目申报。", "不是。"),
    ("这个通知是2017年发的吧?", "通知落款日期为2016年3月15日。", "不是。"),
    ("这个通知是2016年发的吧?", "通知落款日期为2016年3月15日。", None),
    ("文号是鄂质监标函(2016)67号吗?", "发文字号为鄂质监标函〔2016〕76号。", "不是。"),
    ("文号是鄂质监标函〔2016〕76号吧?", "发文字号为鄂质监标函〔2016〕76号。", None),
    ("我们2012年成立的,能报吗?", "须具有法人资格,三年内未发生严重问题。", None),  # no year to disagree with
])
def test_a_yes_no_question_on_a_wrong_figure_gets_its_no_first(question, answer, lead):
    assert negative_lead(question, answer) == lead


@pytest.mark.parametrize("question, conclusion, flipped", [
    ("没有县里的支持也能报吗?", "需要", "不能"),
    ("完全没有标准化基础也能申报吧?", "需要", "不能"),
    ("需要县级以上支持吗?", "需要", None),        # asked the right way up
    ("没有县里的支持也能报吗?", "可以", None),     # only a necessary condition flips
    ("我们没有法人资格,也能当承担单位吧?", "需要", "不能"),
])
def test_going_without_what_is_needed_is_answered_no(question, conclusion, flipped):
    assert flipped_conclusion(question, conclusion) == flipped


@pytest.mark.parametrize("question, conclusion, lead", [
    ("市州没建联席会议的就不能推荐了吗?", "", "不是。"),
    ("市里没有联席会议是不是就没法推荐了?", "", "不是。"),
    ("个人就不能申报了吗?", "不能", None),      # the entry itself says no: no reassurance
    ("市州怎么推荐?", "", None),
])
def test_a_fear_that_a_door_is_shut_is_answered_no_when_the_entry_shows_the_way(question, conclusion, lead):
    assert reassuring_lead(question, conclusion) == lead


@pytest.mark.parametrize("question, conclusion, lead", [
    ("企业一律不能申报,对吧?", "可以，但限于“提供公共服务的企业”", "不对。"),
    ("不需要主要领导牵头,是吗?", "需要", "不是。"),
    ("试点领域只限社区管理吧?", "属于所列领域", "不是。"),
    ("只有具有法人资格的单位才能申报吧?", "需要", None),   # 只有……才 states a true condition
    ("个人不能申报,对吧?", "不能", None),                  # the claim agrees with the entry
    ("企业可以申报吗?", "可以", None),                     # a question, not a claim to confirm
])
def test_a_claim_to_confirm_that_contradicts_the_entry_is_answered_no(question, conclusion, lead):
    assert claim_lead(question, conclusion, conclusion) == lead


@pytest.mark.parametrize("question, conclusion, answer, lead", [
    ("推荐单位收到材料直接转报就行,不用审查,是吗?", "", "推荐单位要严格掌握条件,对承担单位认真审查。", "不是。"),
    ("申请书里不需要填写近三年有无事故的情况,对吧?", "", "申请书第一部分还要填写“近3年来有无质量、安全、环保事故”。",
     "不对。"),
    ("场所设施设备这些不用管吧?", "", "要对条件、场所、设施、设备等制定标准规范。", "不是。"),
    ("参加单位不用盖章吧?", "", "参加单位可有可无;如有参加单位,需签署意见并签字盖章。", None),  # optional: the claim holds
    ("不用交纸质材料吧?", "不需要", "只交电子档即可。", None),       # the entry itself says no
    ("不用审查吧?", "", "须于5月20日前报送。", None),                # the answer does not speak of it
    ("推荐单位要审查吗?", "", "推荐单位要认真审查。", None),          # nothing waived
])
def test_a_claim_that_waives_what_the_answer_requires_is_answered_no(question, conclusion, answer, lead):
    assert requirement_lead(question, conclusion, answer) == lead


def test_a_typo_is_corrected_only_towards_one_near_miss():
    sounds = {"申": "shen", "报": "bao", "抱": "bao", "宝": "bao", "神": "shen"}
    one = PinyinCorrector([("申报", "shen bao")], sounds.get, known_chars="申报")
    assert one.correct("申抱") == "申报"
    # Two terms sound alike and each is one character away: no guess.
    two = PinyinCorrector([("申报", "shen bao"), ("申宝", "shen bao")], sounds.get, known_chars="申报宝")
    assert two.correct("申抱") == "申抱"
    # Two characters away from the term: not a near-miss.
    assert one.correct("神抱") == "神抱"


# -- vectors ------------------------------------------------------------------------------------


def test_vectors_are_cached_by_content_so_a_restart_embeds_nothing(tmp_path):
    db = sqlite_utils.Database(tmp_path / "cache.db")
    first = CountingEmbedder()
    vectors = VectorCache(db, first).passages(["截止时间", "几份", "截止时间"])
    assert first.embedded == ["截止时间", "几份"]  # each new text once
    assert vectors.shape == (3, CountingEmbedder.dim) and np.allclose(vectors[0], vectors[2])
    vectors_module._memory.clear()  # a new process: only the SQLite table remains
    again = CountingEmbedder()
    assert np.allclose(VectorCache(db, again).passages(["几份"]), vectors[1])
    assert again.embedded == []
    VectorCache(db, again).passages(["新问法"])
    assert again.embedded == ["新问法"]


# -- the engine without the model ---------------------------------------------------------------


def test_without_the_model_the_engine_still_answers(kb, index_path):
    lexical = Assistant(kb, Index.open(index_path, kb), today=lambda: AFTER_DEADLINE, embedder=None)
    assert not lexical.semantic
    assert lexical.engine.policy == load_policy(semantic=False)
    reply = lexical.answer("申报截止时间是什么时候？")
    assert reply.outcome is Outcome.ANSWERED and "5月20日" in reply.text


def test_a_model_that_cannot_load_is_reported_not_fatal(monkeypatch):
    monkeypatch.setenv("PILOT_SEMANTIC", "1")

    def broken() -> None:
        raise OSError("libgomp.so.1: cannot open shared object file")

    monkeypatch.setattr(embedding, "E5Embedder", broken)
    assert embedding.load_embedder() is None
    assert "无法加载" in embedding.embedder_status() and "仅用词语匹配" in embedding.embedder_status()
    monkeypatch.setenv("PILOT_SEMANTIC", "0")
    assert embedding.load_embedder() is None and "已关闭" in embedding.embedder_status()


def test_the_policy_is_data_and_a_stale_one_is_refused(tmp_path):
    policy = load_policy()
    assert policy.model.features == FEATURES and 0 < policy.answer_floor < 1
    doc = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    doc["hybrid"]["ranker"]["features"] = doc["hybrid"]["ranker"]["features"][:-1]
    stale = tmp_path / "policy.yaml"
    stale.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="特征与引擎不一致"):
        load_policy(stale)


def test_a_tree_confidence_model_is_data_too_and_a_looping_one_is_refused(tmp_path):
    doc = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    # One split on p1 (the ranker's probability for its first entry): below 0.5 unsure, above sure.
    tree = {"feature": [0, -2, -2], "threshold": [0.5, -2.0, -2.0], "left": [1, -1, -1], "right": [2, -1, -1],
            "value": [0.0, -3.0, 3.0]}
    doc["hybrid"]["confidence"] = {"kind": "trees", "features": list(CONFIDENCE_FEATURES), "rate": 1.0,
                                   "intercept": 0.0, "trees": [tree]}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    confidence = load_policy(path).confidence
    row = [0.0] * len(CONFIDENCE_FEATURES)
    assert confidence.probability(tuple([0.9, *row[1:]])) > 0.95
    assert confidence.probability(tuple([0.1, *row[1:]])) < 0.05
    tree["left"] = [0, -1, -1]  # a node that is its own child would never reach a leaf
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="决策树结构有误"):
        load_policy(path)


def test_a_message_its_focus_and_its_parts_are_embedded_in_one_call(kb, tmp_path, monkeypatch):
    monkeypatch.setenv("PILOT_VECTOR_CACHE", str(tmp_path / "vectors.db"))
    embedder = CountingEmbedder()
    engine = Engine(kb, Index.open(tmp_path / "index.db", kb), embedder)
    before = embedder.calls
    engine.reply("我们是区博物馆，截止时间和联系电话分别是什么？", AFTER_DEADLINE)
    assert embedder.calls == before + 1
    engine.reply("我们是区博物馆，截止时间和联系电话分别是什么？", AFTER_DEADLINE)
    assert embedder.calls == before + 1  # asked again: nothing embedded again


def test_a_held_out_batch_is_answered_as_unseen(assistant, monkeypatch):
    """The fit chooses floors on train questions answered as if unseen: their own batch's
    labelled examples hidden, on every path of the reply (the whole message and each part)."""
    engine = assistant.engine
    examples = load_examples(examples_path(engine.kb))
    counts = Counter(engine.index.normalise(e.text) for e in examples)
    example = next(e for e in examples if e.entry_id and counts[engine.index.normalise(e.text)] == 1)
    column = FEATURES.index("ex_cos")

    def closest_example(exclude_batch):
        _, _, rows = engine.features(example.text, exclude_batch)
        return max(row[column] for row in rows)

    assert closest_example(None) > 0.999  # the question itself
    assert closest_example(example.batch) < closest_example(None)
    seen = []
    features = engine._features
    monkeypatch.setattr(engine, "_features", lambda normal, exclude_batch=None: (
        seen.append(exclude_batch), features(normal, exclude_batch))[1])
    engine.reply("截止时间是哪天？联系电话是多少？", AFTER_DEADLINE, exclude_batch=example.batch)
    assert len(seen) >= 3 and set(seen) == {example.batch}


# -- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "２", " 3 ", "三"])
def test_a_bare_number_is_not_a_question(assistant, text):
    reply = assistant.answer(text)
    assert reply.outcome is Outcome.UNKNOWN and reply.faq_id is None
    assert "数字" in reply.text


def test_a_lone_surrogate_does_not_cost_the_answer(assistant):
    reply = assistant.answer("截止\ud800时间")
    assert reply.outcome is Outcome.ANSWERED and "5月20日" in reply.text


def test_a_stored_phrasing_word_for_word_gets_its_entry(assistant):
    for entry in list(assistant.kb.entries.values())[:40]:
        for text in entry.phrasings[:2]:
            if assistant.engine.exact_owners(text) == {entry.id}:
                assert assistant.answer(text).faq_ids[0] == entry.id


def test_a_repeated_question_is_served_from_the_cache(assistant, monkeypatch):
    first = assistant.answer("材料最晚哪天交到省里")
    monkeypatch.setattr(assistant.engine, "reply", lambda *a: pytest.fail("recomputed"))
    assert assistant.answer("材料最晚哪天交到省里") is first


def test_an_answer_offers_the_runners_up(assistant):
    reply = assistant.answer("申报截止时间是什么时候？")
    assert reply.outcome is Outcome.ANSWERED
    assert 1 <= len(reply.buttons) <= 3 and all(b.action.startswith("ask:") for b in reply.buttons)
    assert reply.faq_id not in {b.action.removeprefix("ask:") for b in reply.buttons}


def test_an_english_question_gets_the_chinese_answer(assistant):
    reply = assistant.answer("When is the deadline?")
    assert reply.outcome is Outcome.ANSWERED and "5月20日" in reply.text


def test_of_tied_entries_the_one_whose_figure_the_question_gets_wrong_is_answered(kb):
    from knowledge.answering import compose

    tied = [kb.entries["scope_fields"], kb.entries["copies"]]
    checked = compose.contradicted(kb, tied, "申请书交一份就够了吧?", AFTER_DEADLINE)
    assert checked is not None and checked.id == "copies"
    assert compose.contradicted(kb, tied, "申请书交几份?", AFTER_DEADLINE) is None  # no figure to check
    reply = compose.entry_reply(kb, checked, AFTER_DEADLINE, question="申请书交一份就够了吧?")
    assert reply.text.startswith("不够。")
