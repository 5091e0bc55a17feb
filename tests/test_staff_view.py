"""The /stats view staff read (issue 10, items 13 and 14)."""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.staff import stats
from knowledge.staff.chart import LABELS_ZH, cjk_font, daily_chart_png, packaged_font_file
from knowledge.storage.store import Store

README = Path(__file__).resolve().parent.parent / "README.md"


def test_chart_font_ships_with_the_dependencies():
    assert packaged_font_file() is not None  # mplfonts' Noto Sans CJK SC, no system font needed
    assert cjk_font() is not None


def test_chart_has_chinese_labels_on_a_fresh_machine(monkeypatch):
    from matplotlib.text import Text

    drawn: list[str] = []
    original = Text.draw

    def record(self, renderer):
        drawn.append(self.get_text())
        return original(self, renderer)

    monkeypatch.setattr(Text, "draw", record)
    store = Store(":memory:", "s")
    store.log_question(user_hash="u", text="截止", outcome="answered")
    assert daily_chart_png(stats.compute(store, 7)).startswith(b"\x89PNG")
    assert LABELS_ZH["answered"] in drawn and any(LABELS_ZH["title"] in t for t in drawn)


def test_readme_describes_the_stats_top_list_as_it_is():
    store = Store(":memory:", "s")
    store.log_question(user_hash="u", text="截止", outcome="answered", faq_id="deadline")
    report = stats.format_report(stats.compute(store, 7), None)
    assert "最常问的问题" in report  # questions (with their topic), not topics
    row = next(line for line in README.read_text(encoding="utf-8").splitlines() if "`/stats [days]`" in line)
    assert "top 10 questions" in row and not re.search(r"top 10 topics", row)
