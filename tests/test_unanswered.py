"""Unanswered questions: which rows count, how they are grouped, and the FAQ stubs
export, which the real knowledge-base loader must accept once staff fill them in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from knowledge.errors import KnowledgeError
from knowledge.loader import DATA_DIR, MIN_PHRASINGS, load_knowledge
from knowledge.staff import unanswered
from knowledge.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


def log(store: Store, text: str, outcome: str, faq_id: str | None = None, days_ago: float = 1, times: int = 1) -> int:
    qid = 0
    for _ in range(times):
        qid = store.log_question(user_hash="u", text=text, outcome=outcome, faq_id=faq_id,
                                 ts=NOW - timedelta(days=days_ago))
    return qid


@pytest.fixture
def store():
    s = Store(":memory:", "salt")
    yield s
    s.close()


def test_collect_counts_unknown_ambiguous_and_thumbs_down_only(store):
    log(store, "有补贴吗", "unknown", times=3)
    log(store, "材料", "ambiguous", times=2)
    down = log(store, "截止时间", "answered", "deadline")
    store.log_feedback(user_hash="u", rating=-1, question_id=down, faq_id="deadline", ts=NOW - timedelta(hours=5))
    up = log(store, "联系电话", "answered", "contact_phone")
    store.log_feedback(user_hash="u", rating=1, question_id=up, ts=NOW - timedelta(hours=5))
    log(store, "可以网上申报吗", "unknown", "nc_online")  # a "not covered" entry answered it: staff wrote that
    log(store, "你好", "smalltalk")
    log(store, "很久以前的问题", "unknown", days_ago=90)  # outside the period
    # An old question rated 👎 today counts: the rating is what happened in the period.
    old = log(store, "申报书几份", "answered", "copies", days_ago=60)
    store.log_feedback(user_hash="u", rating=-1, question_id=old, ts=NOW - timedelta(hours=1))

    asked = unanswered.collect(store, days=30, now=NOW)
    got = sorted((a.text, a.reason) for a in asked)
    assert got == sorted([("有补贴吗", "unknown")] * 3 + [("材料", "ambiguous")] * 2
                         + [("截止时间", "thumbs_down"), ("申报书几份", "thumbs_down")])


def test_grouping_by_similarity_most_frequent_first():
    A = unanswered.Asked
    asked = ([A("有没有补贴？", "unknown")] * 2 + [A("请问有没有补贴", "unknown")] * 3
             + [A("有没有补贴", "unknown")] + [A("评审专家是谁", "unknown")] * 2
             + [A("评审专家是哪些人？", "ambiguous")] + [A("武汉今天天气怎么样", "unknown")]
             + [A("截止时间", "thumbs_down", "deadline")] + [A("！！！", "unknown")])
    groups = unanswered.group(asked)
    assert [g.count for g in groups] == [6, 3, 1, 1]  # "！！！" has no words: dropped
    subsidy, experts = groups[0], groups[1]
    # Punctuation does not make another wording (shown as most often typed); "请问" does,
    # though it is the same question, so both are kept as phrasings.
    # Ties go to the wording asked first.
    assert subsidy.members == [("有没有补贴？", 3), ("请问有没有补贴", 3)]
    assert subsidy.example == "有没有补贴？"
    assert subsidy.reasons == {"unknown": 6}
    assert {t for t, _ in experts.members} == {"评审专家是谁", "评审专家是哪些人？"}
    assert experts.reasons == {"unknown": 2, "ambiguous": 1}
    text = unanswered.format_groups(groups, 30)
    assert text.index("6 次") < text.index("3 次")
    assert "未能回答 6" in text and "👎 1" in text


def test_engine_tokens_group_paraphrases(assistant):
    A = unanswered.Asked
    asked = [A("个体户能申报吗", "unknown"), A("个人可以申报吗", "unknown"), A("补贴多少钱", "unknown")]
    assert len(unanswered.group(asked)) == 3  # characters alone do not see it
    groups = unanswered.group(asked, assistant.index.tokens)
    assert sorted(g.count for g in groups) == [1, 2]


def fill(entry: dict, topic: str) -> None:
    """What staff do with a stub: answer, clause, enough phrasings, a real topic."""
    entry["answer"] = f"测试答案：{entry['question']}"
    entry["clauses"] = ["四.3"]
    phrasings = list(entry.get("phrasings") or [])
    n = 0
    while len(phrasings) < MIN_PHRASINGS:
        n += 1
        phrasings.append(f"{entry['question']}（补写问法{n}）")
    entry["phrasings"] = phrasings
    if entry["topic"] == unanswered.PLACEHOLDER_TOPIC:
        entry["topic"] = topic


def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def paste(data_dir: Path, stub_text: str) -> None:
    """Paste the stub entries (the lines after "entries:") at the end of faq.yaml, as the header says."""
    lines = stub_text.splitlines()
    body = "\n".join(lines[lines.index("entries:") + 1:])
    faq = data_dir / "faq.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").rstrip("\n") + "\n" + body + "\n", encoding="utf-8")


def test_export_stubs_paste_then_fill_then_load(store, kb, tmp_path):
    log(store, "有没有补贴", "unknown", times=4)
    log(store, "请问有没有补贴？", "unknown", times=2)
    log(store, "评审专家是谁", "unknown", times=2)
    log(store, "评审专家是哪些人", "ambiguous")
    log(store, "id: 冒号 # 井号 'quote' \"双引号\"", "unknown")  # YAML-hostile text stays a plain string
    down = log(store, "截止时间", "answered", "deadline")
    store.log_feedback(user_hash="u", rating=-1, question_id=down, ts=NOW)
    groups = unanswered.unanswered(store, 30, now=NOW)
    text = unanswered.export_stubs(groups, kb, days=30)
    doc = yaml.safe_load(text)
    stubs = doc["entries"]
    assert len(stubs) == len(groups) == 4
    assert [s["id"] for s in stubs] == ["new_001", "new_002", "new_003", "new_004"]
    for stub in stubs:
        assert stub["answer"] == "" and stub["clauses"] == [] and stub["related"] == []
    assert stubs[0]["question"] == "有没有补贴" and stubs[0]["phrasings"] == ["请问有没有补贴？"]
    assert "id: 冒号 # 井号 'quote' \"双引号\"" in [s["question"] for s in stubs]
    # 👎 on the deadline entry: its topic is the guess.
    assert next(s for s in stubs if s["question"] == "截止时间")["topic"] == kb.entries["deadline"].topic

    # Pasted as exported, the loader refuses the stub and says where.
    data = data_copy(tmp_path)
    paste(data, text)
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(data)
    assert err.value.file == "faq.yaml" and err.value.entry == "new_001"

    # Filled in, the loader accepts every stub.
    faq = yaml.safe_load((DATA_DIR / "faq.yaml").read_text(encoding="utf-8"))
    for stub in stubs:
        fill(stub, kb.topics[0].id)
    faq["entries"] += stubs
    (data / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True, sort_keys=False), encoding="utf-8")
    loaded = load_knowledge(data)
    assert {"new_001", "new_002", "new_003", "new_004"} <= set(loaded.entries)
    assert loaded.entries["new_001"].answer == "测试答案：有没有补贴"


def test_stub_ids_skip_existing_and_empty_export_is_valid(kb):
    taken = type(kb)(**{**kb.__dict__, "entries": {**kb.entries, "new_001": kb.entries["deadline"]}})
    groups = unanswered.group([unanswered.Asked("有没有补贴", "unknown")])
    assert yaml.safe_load(unanswered.export_stubs(groups, taken))["entries"][0]["id"] == "new_002"
    assert yaml.safe_load(unanswered.export_stubs([], kb)) == {"entries": []}


def test_unanswered_command_exports_stubs_the_loader_accepts_once_filled(tmp_path, kb):
    db = tmp_path / "assistant.db"
    store = Store(db, "salt")
    now = datetime.now(UTC)
    for text, times in (("有没有补贴", 3), ("请问有没有补贴？", 2), ("评审专家是谁", 2), ("武汉今天天气怎么样", 1)):
        for _ in range(times):
            store.log_question(user_hash="u", text=text, outcome="unknown", ts=now - timedelta(hours=2))
    store.log_question(user_hash="u", text="材料", outcome="ambiguous", ts=now - timedelta(hours=1))
    store.close()
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PILOT_DATA_DIR=str(tmp_path))
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("DATABASE_PATH", None)
    out = tmp_path / "stubs" / "new.yaml"
    proc = subprocess.run([sys.executable, "-m", "bot", "unanswered", "--days", "7", "--export", str(out)],
                          capture_output=True, text=True, encoding="utf-8", cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "有没有补贴 — 5 次" in proc.stdout
    stubs = yaml.safe_load(out.read_text(encoding="utf-8"))["entries"]
    assert stubs[0]["question"] == "有没有补贴" and len(stubs) == 4
    topics = {t.id for t in kb.topics}
    for stub in stubs:
        assert stub["topic"] in topics | {unanswered.PLACEHOLDER_TOPIC}
        fill(stub, kb.topics[0].id)
    data = data_copy(tmp_path)
    faq = yaml.safe_load((data / "faq.yaml").read_text(encoding="utf-8"))
    faq["entries"] += stubs
    (data / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True, sort_keys=False), encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data), "kb", "check"],
                           capture_output=True, text=True, encoding="utf-8", cwd=ROOT, env=env, timeout=120)
    assert check.returncode == 0, check.stderr
    assert {s["id"] for s in stubs} <= set(load_knowledge(data).entries)
