"""Staff figures: knowledge.staff.stats against counts worked out here from the seeded rows,
the chart as a real PNG, and `python -m bot report` through a subprocess."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge.staff import chart, stats
from knowledge.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=CST)
OUTCOMES = ("answered", "ambiguous", "unknown")
FAQ_IDS = ["deadline", "deadline", "deadline", "materials_list", "materials_list", "contact_phone", "quota"]


def seed(store: Store, now: datetime) -> dict:
    """Rows at known times around the period's edges; returns what was written, for the test
    to count itself."""
    first_day = now.astimezone(CST).date() - timedelta(days=6)  # a 7-day period
    edge = datetime.combine(first_day, datetime.min.time(), CST)
    times = [
        edge,                               # first instant of the period: in
        edge - timedelta(seconds=1),        # last second before it: out
        edge + timedelta(hours=23, minutes=59),
        now - timedelta(minutes=5),
        now - timedelta(days=2, hours=3),
        now - timedelta(days=3),
        now - timedelta(days=9),            # out
        now - timedelta(days=400),          # out
    ]
    rows = {"questions": [], "feedback": [], "selfchecks": []}
    n = 0
    for i, ts in enumerate(times):
        for j in range(i + 2):  # different volumes per time slot
            outcome = ("answered", "ambiguous", "unknown", "smalltalk", "answered")[(i + j) % 5]
            faq_id = FAQ_IDS[n % len(FAQ_IDS)] if outcome == "answered" else None
            n += 1
            qid = store.log_question(user_hash=f"u{j}", text=f"问题{i}-{j}", outcome=outcome, faq_id=faq_id, ts=ts)
            rows["questions"].append((ts, outcome, faq_id))
            if j % 3 == 0:
                rating = 1 if (i + j) % 2 else -1
                store.log_feedback(user_hash=f"u{j}", rating=rating, question_id=qid, faq_id=faq_id, ts=ts)
                rows["feedback"].append((ts, rating))
        store.record_selfcheck(user_hash=f"s{i}", event="started", ts=ts)
        rows["selfchecks"].append((ts, "started", None))
        if i % 2 == 0:
            verdict = ("eligible", "caution", "ineligible")[i % 3]
            store.record_selfcheck(user_hash=f"s{i}", event="finished", answers={"q": i}, verdict=verdict, ts=ts)
            rows["selfchecks"].append((ts, "finished", verdict))
    return rows


def expected(rows: dict, now: datetime, days: int) -> dict:
    """The figures, counted directly from the seeded rows with datetime arithmetic (no SQL)."""
    today = now.astimezone(CST).date()

    def inside(ts: datetime) -> bool:
        return today - timedelta(days=days - 1) <= ts.astimezone(CST).date() <= today and ts <= now

    questions = [(ts, o, f) for ts, o, f in rows["questions"] if inside(ts)]
    outcomes = Counter(o for _, o, _ in questions)
    daily = Counter((ts.astimezone(CST).date(), o) for ts, o, _ in questions if o != "smalltalk")
    top = Counter(f for _, o, f in questions if o == "answered")
    feedback = Counter(r for ts, r in rows["feedback"] if inside(ts))
    checks = [(e, v) for ts, e, v in rows["selfchecks"] if inside(ts)]
    return {
        "questions": sum(outcomes[o] for o in OUTCOMES),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "smalltalk": outcomes["smalltalk"],
        "up": feedback[1], "down": feedback[-1],
        "started": sum(e == "started" for e, _ in checks),
        "finished": sum(e == "finished" for e, _ in checks),
        "verdicts": Counter(v for e, v in checks if e == "finished"),
        "top": top,
        "daily": daily,
    }


@pytest.fixture
def store():
    s = Store(":memory:", "salt")
    yield s
    s.close()


def test_figures_equal_independent_counts(store):
    rows = seed(store, NOW)
    for days in (1, 3, 7, 30):
        exp = expected(rows, NOW, days)
        got = stats.compute(store, days, now=NOW)
        assert got.questions == exp["questions"], days
        assert got.outcomes == exp["outcomes"]
        assert got.smalltalk == exp["smalltalk"]
        assert (got.thumbs_up, got.thumbs_down) == (exp["up"], exp["down"])
        assert (got.selfchecks_started, got.selfchecks_finished) == (exp["started"], exp["finished"])
        assert {v: n for v, n in got.verdicts.items() if n} == dict(exp["verdicts"])
        assert dict(got.top_entries) == dict(exp["top"].most_common(10))
        assert len(got.period.days) == days
        for day in got.period.days:
            for o in OUTCOMES:
                assert got.daily[day][o] == exp["daily"][(day, o)]
        # The chart's bars add up to the totals.
        assert sum(sum(v.values()) for v in got.daily.values()) == got.questions


def test_period_edges_are_office_midnights():
    p = stats.period(7, NOW)
    assert p.first_day.isoformat() == "2026-03-04" and p.last_day.isoformat() == "2026-03-10"
    assert p.start == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # 00:00 Beijing = 16:00 UTC the day before
    assert p.end == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        stats.period(0, NOW)


def test_report_text_shows_every_figure(store, kb):
    rows = seed(store, NOW)
    exp = expected(rows, NOW, 7)
    text = stats.format_report(stats.compute(store, 7, now=NOW), kb)
    assert f"提问：{exp['questions']} 条" in text
    for o, name in (("answered", "已回答"), ("ambiguous", "需澄清"), ("unknown", "未涵盖")):
        share = exp["outcomes"][o] / exp["questions"] * 100
        assert f"{name}：{exp['outcomes'][o]}（{share:.1f}%）" in text
    assert f"👍 {exp['up']} / 👎 {exp['down']}" in text
    assert f"开始 {exp['started']}，完成 {exp['finished']}" in text
    # The most asked entry is named by its topic and question, not its id.
    top_id = exp["top"].most_common(1)[0][0]
    assert f"1. 【{dict((t.id, t.name) for t in kb.topics)[kb.entries[top_id].topic]}】{kb.entries[top_id].question}" \
        in text


def test_empty_database_reports_zeroes(store):
    got = stats.compute(store, 7, now=NOW)
    assert got.questions == 0 and got.share("answered") == 0 and got.thumbs_up_share == 0
    assert "提问：0 条" in stats.format_report(got)
    assert_png(chart.daily_chart_png(got))


def assert_png(data: bytes) -> tuple[int, int]:
    """A PNG whose chunks all have correct CRCs, ending in IEND; returns (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append(kind)
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 200
    return width, height


def test_chart_is_a_valid_png(store, tmp_path):
    seed(store, NOW)
    figures = stats.compute(store, 30, now=NOW)
    data = chart.daily_chart_png(figures)
    assert_png(data)
    from matplotlib.image import imread  # decodes it fully

    image = imread(str(chart.write_daily_chart(figures, tmp_path / "sub" / "c.png")))
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert (tmp_path / "sub" / "c.png").read_bytes() == data


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PILOT_DATA_DIR=str(tmp_path))
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("DATABASE_PATH", None)
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, encoding="utf-8",
                          cwd=ROOT, env=env, timeout=120)


def test_report_command_figures_and_chart(tmp_path):
    db = tmp_path / "assistant.db"  # the default place under PILOT_DATA_DIR: no --db needed
    store = Store(db, "salt")
    now = datetime.now(UTC)
    rows = seed(store, now)
    store.close()
    exp = expected(rows, datetime.now(UTC), 7)
    proc = run_cli(["report", "--days", "7", "--chart", str(tmp_path / "out" / "chart.png")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert int(re.search(r"提问：(\d+) 条", out).group(1)) == exp["questions"]
    for o, name in (("answered", "已回答"), ("ambiguous", "需澄清"), ("unknown", "未涵盖")):
        assert int(re.search(rf"{name}：(\d+)", out).group(1)) == exp["outcomes"][o]
    assert re.search(r"👍 (\d+) / 👎 (\d+)", out).groups() == (str(exp["up"]), str(exp["down"]))
    assert re.search(r"开始 (\d+)，完成 (\d+)", out).groups() == (str(exp["started"]), str(exp["finished"]))
    assert_png((tmp_path / "out" / "chart.png").read_bytes())
    # --db names another file; a missing one is an error, not a new empty database.
    missing = run_cli(["report", "--db", str(tmp_path / "nope.db")], tmp_path)
    assert missing.returncode == 2 and "不存在" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    bad = run_cli(["report", "--days", "0"], tmp_path)
    assert bad.returncode == 2 and "天数" in bad.stderr
