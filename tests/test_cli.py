"""The command line, through a subprocess, as the evaluation harness uses it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args, stdin="", env_extra=None, tmp_path=None):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    if tmp_path is not None:
        env["PILOT_DATA_DIR"] = str(tmp_path)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, env=env, timeout=120)


def test_batch_protocol(tmp_path):
    questions = ["申报截止时间是什么时候？", "武汉今天天气怎么样", "单位", "截止时间和联系电话"]
    proc = run(["ask", "--batch"], "\n".join(questions) + "\n", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["question"] for r in records] == questions
    for r in records:
        assert set(r) >= {"question", "reply", "buttons", "faq_id", "clauses", "outcome", "confidence"}
        assert r["outcome"] in ("answered", "ambiguous", "unknown")
        assert "<" not in r["reply"]  # plain text, no markup
        assert len(r["reply"]) <= 600
    assert records[0]["outcome"] == "answered" and records[0]["clauses"] == ["四.3"]
    assert records[1]["outcome"] == "unknown" and records[1]["faq_id"] is None
    assert records[2]["outcome"] == "ambiguous" and len(records[2]["buttons"]) >= 2
    assert "87710317" in records[3]["reply"] and "5月20日" in records[3]["reply"]


def test_ask_prints_reply_and_clock_is_injectable(tmp_path):
    proc = run(["--today", "2016-05-10", "ask", "几号截止"], tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "还有10天" in proc.stdout
    assert "依据：通知第四条第3项" in proc.stdout


def test_clause_command(tmp_path):
    proc = run(["clause", "四.3"], tmp_path=tmp_path)
    assert proc.returncode == 0
    assert "逾期不再受理" in proc.stdout and "通知第四条第3项" in proc.stdout
    missing = run(["clause", "九"], tmp_path=tmp_path)
    assert missing.returncode == 1 and "没有编号" in missing.stderr


def test_console_chat_without_token(tmp_path):
    proc = run([], "你好\n截止时间\n1\n原文\n/quit\n", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "您好" in proc.stdout
    assert "5月20日" in proc.stdout
    assert "【通知第四条第3项】" in proc.stdout  # "原文" showed the cited clause
    assert "再见" in proc.stdout


def test_bad_setting_stops_with_message(tmp_path):
    proc = run(["ask", "截止"], env_extra={"TELEGRAM_BOT_TOKEN": "not-a-token"}, tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in proc.stderr
    assert "not-a-token" not in proc.stderr


def test_console_runs_the_self_check_and_writes_the_form(tmp_path):
    from docx import Document

    # 事业单位, then answer every remaining question with its first option ("yes"-like)
    lines = ["/check", "2", "为什么", "申报截止时间？", "1", "上一步", "1"] + ["1"] * 12 + ["生成申请书", "武汉市某某中心"]
    proc = run([], "\n".join(lines) + "\n/quit\n", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "资格自测开始" in out and "为什么问这个" in out
    assert "5月20日" in out and "——继续资格自测——" in out   # a question mid-interview is answered
    assert "符合申报条件" in out
    forms = list(tmp_path.glob("申请书-*.docx"))
    assert len(forms) == 1
    text = "\n".join(p.text for p in Document(forms[0]).paragraphs)
    text += "\n".join(c.text for t in Document(forms[0]).tables for r in t.rows for c in r.cells)
    assert "武汉市某某中心" in text
