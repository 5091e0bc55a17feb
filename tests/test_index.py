import shutil

import yaml

from knowledge.answering.index import Index, is_current
from knowledge.assistant import Assistant
from knowledge.loader import DATA_DIR, load_knowledge


def test_index_is_rebuilt_when_the_yaml_changes(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    index_path = tmp_path / "index.db"
    kb = load_knowledge(data)
    index = Index.open(index_path, kb)
    assert is_current(index.db, kb)
    assert Assistant(kb, index).answer("盖章用什么颜色的印泥").faq_id != "ink_colour"

    doc = yaml.safe_load((data / "faq.yaml").read_text(encoding="utf-8"))
    doc["entries"].append({
        "id": "ink_colour", "topic": doc["topics"][0]["id"], "question": "盖章用什么颜色的印泥？",
        "phrasings": ["印泥颜色", "印泥用红色吗", "盖章印泥有要求吗", "什么颜色印泥", "印泥要求", "红印泥可以吗"],
        "answer": "测试条目。", "clauses": ["四.1"],
    })
    (data / "faq.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    changed = load_knowledge(data)
    assert changed.content_hash != kb.content_hash
    assert not is_current(index.db, changed)
    reply = Assistant.load(index_path, data).answer("盖章用什么颜色的印泥")
    assert reply.faq_id == "ink_colour"


def test_up_to_date_index_is_reused(tmp_path):
    index_path = tmp_path / "index.db"
    kb = load_knowledge()
    Index.open(index_path, kb).db.close()
    reopened = Index.open(index_path, kb)
    # a rebuild would drop and recreate the table; its rows keep their ids when reused
    first_ids = [r["id"] for r in reopened.db["docs"].rows_where(limit=3)]
    assert is_current(reopened.db, kb)
    assert first_ids == [1, 2, 3]
    assert reopened.candidates(["截止"])[0].entry_id in reopened.kb.entries
