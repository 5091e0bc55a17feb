"""Every way a staff edit can break the knowledge base is refused with file, entry and field."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowledge.errors import KnowledgeError
from knowledge.loader import load_knowledge
from tests.conftest import edit


def first_entry(doc):
    return doc["entries"][0]


def expect_error(data_dir: Path, file: str, entry: str | None, field: str | None) -> KnowledgeError:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(data_dir)
    err = info.value
    assert err.file == file
    if entry is not None:
        assert err.entry == entry
    assert err.field == field
    assert file in str(err)
    return err


def test_real_knowledge_base_loads():
    kb = load_knowledge()
    assert sum(e.covered for e in kb.entries.values()) >= 45
    assert all(len(e.phrasings) >= 6 for e in kb.entries.values())
    assert kb.meta.deadline.isoformat() == "2016-05-20"
    assert kb.meta.notice_date.isoformat() == "2016-03-15"


def test_missing_required_field(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).pop("answer"))
    eid = yaml.safe_load((data_dir / "faq.yaml").read_text(encoding="utf-8"))["entries"][0]["id"]
    expect_error(data_dir, "faq.yaml", eid, "answer")


def test_duplicate_entry_id(data_dir):
    def dup(d):
        d["entries"][1]["id"] = d["entries"][0]["id"]
    edit(data_dir, "faq.yaml", dup)
    expect_error(data_dir, "faq.yaml", None, "id")


def test_unknown_clause_id(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("clauses", ["九.9"]))
    err = expect_error(data_dir, "faq.yaml", None, "clauses")
    assert "九.9" in str(err)


def test_unknown_related_id(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("related", ["no_such_entry"]))
    expect_error(data_dir, "faq.yaml", None, "related")


def test_empty_phrasing(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d)["phrasings"].append("  "))
    expect_error(data_dir, "faq.yaml", None, "phrasings")


def test_too_few_phrasings(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("phrasings", ["一", "二"]))
    expect_error(data_dir, "faq.yaml", None, "phrasings")


def test_answer_too_long(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("answer", "长" * 301))
    expect_error(data_dir, "faq.yaml", None, "answer")


def test_unknown_placeholder(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("answer", "截止：{deadlin}"))
    expect_error(data_dir, "faq.yaml", None, "answer")


def test_undefined_topic(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("topic", "nowhere"))
    expect_error(data_dir, "faq.yaml", None, "topic")


def test_bad_deadline_date(data_dir):
    edit(data_dir, "meta.yaml", lambda d: d["deadline"].__setitem__("date", "2016-05-32"))
    expect_error(data_dir, "meta.yaml", "deadline", "date")


def test_duplicate_clause_id(data_dir):
    edit(data_dir, "notice.yaml", lambda d: d["clauses"].append(dict(d["clauses"][0])))
    expect_error(data_dir, "notice.yaml", "标题", "id")


def test_synonym_in_two_groups(data_dir):
    edit(data_dir, "synonyms.yaml", lambda d: d["synonyms"].append(["某词", d["synonyms"][0][0]]))
    expect_error(data_dir, "synonyms.yaml", None, "synonyms")


def test_yaml_syntax_error_names_line(data_dir):
    (data_dir / "faq.yaml").write_text("entries:\n  - id: [unclosed\n", encoding="utf-8")
    err = expect_error(data_dir, "faq.yaml", None, None)
    assert "行" in str(err)


def test_missing_file(data_dir):
    (data_dir / "synonyms.yaml").unlink()
    expect_error(data_dir, "synonyms.yaml", None, None)


def test_kb_check_command_reports_without_traceback(data_dir):
    edit(data_dir, "faq.yaml", lambda d: first_entry(d).__setitem__("clauses", ["九.9"]))
    proc = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data_dir), "kb", "check"],
                          capture_output=True, text=True, encoding="utf-8")
    assert proc.returncode == 2
    assert "faq.yaml" in proc.stderr and "clauses" in proc.stderr
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "bot", "kb", "check"], capture_output=True, text=True,
                        encoding="utf-8")
    assert ok.returncode == 0, ok.stderr
    assert "知识库检查通过" in ok.stdout
