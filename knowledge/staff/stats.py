"""Figures for staff, computed from the log tables (no Telegram, no matplotlib here).

    stats = compute(store, days=7)
    print(format_report(stats, kb))

A period of N days is N whole calendar days in Beijing time (the office's day),
today included, so the daily chart has exactly N bars and its bars add up to
the totals. Small talk (greetings, thanks) is counted apart: the answered /
ambiguous / not-covered shares are shares of real questions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

import sqlite_utils

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase
    from knowledge.storage.store import Store

# The office is in Wuhan; China has one time zone and no daylight saving.
OFFICE_TZ = timezone(timedelta(hours=8), "北京时间")
QUESTION_OUTCOMES = ("answered", "ambiguous", "unknown")
OUTCOME_NAMES = {"answered": "已回答", "ambiguous": "需澄清", "unknown": "未涵盖"}
VERDICTS = ("eligible", "caution", "ineligible")
VERDICT_NAMES = {"eligible": "符合", "caution": "需注意", "ineligible": "不符合"}
TOP_N = 10


@dataclass(frozen=True)
class Period:
    first_day: date  # office-time calendar days, both included
    last_day: date
    start: datetime  # UTC bounds: start <= ts < end
    end: datetime

    @property
    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]


def period(days: int, now: datetime | None = None) -> Period:
    """The last `days` calendar days in office time, today included."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = (now or datetime.now(UTC)).astimezone(OFFICE_TZ)
    last = now.date()
    first = last - timedelta(days=days - 1)
    start = datetime.combine(first, time(0), OFFICE_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), OFFICE_TZ).astimezone(UTC)
    return Period(first, last, start, end)


@dataclass(frozen=True)
class Stats:
    period: Period
    outcomes: dict[str, int]  # answered / ambiguous / unknown (real questions only)
    smalltalk: int
    thumbs_up: int
    thumbs_down: int
    selfchecks_started: int
    selfchecks_finished: int
    verdicts: dict[str, int]
    top_entries: list[tuple[str, int]]  # (faq_id, times answered), most asked first
    daily: dict[date, dict[str, int]] = field(default_factory=dict)  # day -> outcome -> count

    @property
    def questions(self) -> int:
        return sum(self.outcomes.values())

    def share(self, outcome: str) -> float:
        return self.outcomes.get(outcome, 0) / self.questions if self.questions else 0.0

    @property
    def ratings(self) -> int:
        return self.thumbs_up + self.thumbs_down

    @property
    def thumbs_up_share(self) -> float:
        return self.thumbs_up / self.ratings if self.ratings else 0.0


def _db(source: Store | sqlite_utils.Database) -> sqlite_utils.Database:
    return source if isinstance(source, sqlite_utils.Database) else source.db


def _iso(ts: datetime) -> str:
    # Same form as Store writes (UTC, seconds, "+00:00"), so text comparison orders correctly.
    return ts.astimezone(UTC).isoformat(timespec="seconds")


def compute(source: Store | sqlite_utils.Database, days: int = 7, now: datetime | None = None) -> Stats:
    """All figures for the last `days` days from the store's tables."""
    db = _db(source)
    p = period(days, now)
    bounds = [_iso(p.start), _iso(p.end)]
    where = "ts >= ? and ts < ?"

    outcomes = Counter({o: 0 for o in QUESTION_OUTCOMES})
    smalltalk = 0
    daily: dict[date, dict[str, int]] = {d: {o: 0 for o in QUESTION_OUTCOMES} for d in p.days}
    # Aggregated in SQLite (a year of a busy bot is ~100k rows). The stored ts carries its
    # "+00:00", which SQLite's date() honours; '+8 hours' then gives the office's day.
    offset = f"{int(OFFICE_TZ.utcoffset(None).total_seconds() // 3600):+d} hours"
    for day, outcome, n in db.execute(
        f"select date(ts, ?), outcome, count(*) from questions where {where} group by 1, 2", [offset, *bounds]
    ).fetchall():
        if outcome not in QUESTION_OUTCOMES:
            smalltalk += n
            continue
        outcomes[outcome] += n
        daily[date.fromisoformat(day)][outcome] += n
    top = dict(db.execute(
        f"select faq_id, count(*) from questions where {where} and outcome = 'answered' and faq_id is not null "
        "group by faq_id", bounds
    ).fetchall())

    ratings = dict(db.execute(
        f"select rating, count(*) from feedback where {where} group by rating", bounds
    ).fetchall())
    events = dict(db.execute(
        f"select event, count(*) from selfchecks where {where} group by event", bounds
    ).fetchall())
    verdicts = Counter({v: 0 for v in VERDICTS})
    for verdict, n in db.execute(
        f"select verdict, count(*) from selfchecks where {where} and event = 'finished' group by verdict", bounds
    ).fetchall():
        verdicts[verdict or "unknown"] += n

    return Stats(
        period=p,
        outcomes=dict(outcomes),
        smalltalk=smalltalk,
        thumbs_up=int(ratings.get(1, 0)),
        thumbs_down=int(ratings.get(-1, 0)),
        selfchecks_started=int(events.get("started", 0)),
        selfchecks_finished=int(events.get("finished", 0)),
        verdicts=dict(verdicts),
        # Ties broken by id so the list is stable from one run to the next.
        top_entries=sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N],
        daily=daily,
    )


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def entry_label(faq_id: str, kb: KnowledgeBase | None) -> str:
    """"【topic】question" when the knowledge base knows the entry, else its id."""
    entry = kb.entries.get(faq_id) if kb is not None else None
    if entry is None:
        return faq_id + ("（已不在知识库中）" if kb is not None else "")
    topics = {t.id: t.name for t in kb.topics}
    return f"【{topics.get(entry.topic, entry.topic)}】{entry.question}"


@dataclass(frozen=True)
class LearnedFigures:
    """Phrasings staff added in the last 7 days, and how the same questions fared afterwards."""

    phrasings: int
    asked: int     # the same questions (same comparison key) asked after their change
    answered: int  # ... of which answered with an entry (an answer, or a "not covered" entry)

    @property
    def answered_share(self) -> float:
        return self.answered / self.asked if self.asked else 0.0

    def line(self) -> str:
        rate = f"{_pct(self.answered_share)}（{self.answered}/{self.asked}）" if self.asked else "—（其后尚无相同提问）"
        return f"本周新增问法 {self.phrasings}，其后相同问题回答率 {rate}"


def learned_figures(source: Store | sqlite_utils.Database, changes: Iterable[tuple[datetime, Iterable[str]]],
                    now: datetime | None = None, days: int = 7) -> LearnedFigures:
    """`changes`: (when accepted, the question texts added) per change staff made, e.g. from
    knowledge/learning's learned.yaml. Only changes of the last `days` days count."""
    from knowledge.staff.unanswered import key  # (unanswered builds on this module)

    p = period(days, now)
    recent = [(when, {key(t) for t in texts} - {""}) for when, texts in changes if p.start <= when < p.end]
    phrasings = sum(len(keys) for _, keys in recent)
    if not recent:
        return LearnedFigures(0, 0, 0)
    first = min(when for when, _ in recent)
    asked = answered = 0
    for ts, text, outcome, faq_id in _db(source).execute(
            "select ts, text, outcome, faq_id from questions where ts >= ? and ts < ?", [_iso(first), _iso(p.end)]):
        k = key(text or "")
        when = datetime.fromisoformat(ts)
        # Strictly after: both times are whole seconds, and the question that led to the
        # change is often logged in the same second as the change itself.
        if any(k in keys and when > changed for changed, keys in recent):
            asked += 1
            answered += bool(faq_id) and outcome in ("answered", "unknown")
    return LearnedFigures(phrasings, asked, answered)


def format_report(stats: Stats, kb: KnowledgeBase | None = None, learned: LearnedFigures | None = None) -> str:
    """The figures as plain text (the Telegram handler escapes it; the CLI prints it)."""
    p = stats.period
    n = stats.questions
    lines = [
        f"📊 统计（{p.first_day:%Y-%m-%d} 至 {p.last_day:%Y-%m-%d}，{len(p.days)} 天，北京时间）",
        f"提问：{n} 条" + (f"（另有问候、致谢等 {stats.smalltalk} 条未计入）" if stats.smalltalk else ""),
    ]
    for outcome in QUESTION_OUTCOMES:
        lines.append(f"· {OUTCOME_NAMES[outcome]}：{stats.outcomes.get(outcome, 0)}（{_pct(stats.share(outcome))}）")
    lines.append(f"评价：👍 {stats.thumbs_up} / 👎 {stats.thumbs_down}"
                 + (f"（好评率 {_pct(stats.thumbs_up_share)}）" if stats.ratings else ""))
    verdicts = "，".join(f"{VERDICT_NAMES.get(v, v)} {c}" for v, c in stats.verdicts.items())
    lines.append(f"资格自测：开始 {stats.selfchecks_started}，完成 {stats.selfchecks_finished}"
                 + (f"（{verdicts}）" if stats.selfchecks_finished else ""))
    if stats.top_entries:
        lines.append(f"最常问的问题（前 {min(TOP_N, len(stats.top_entries))}）：")
        for rank, (faq_id, count) in enumerate(stats.top_entries, 1):
            lines.append(f"{rank}. {entry_label(faq_id, kb)} — {count} 次")
    else:
        lines.append("最常问的问题：暂无")
    if learned is not None:
        lines.append(learned.line())
    return "\n".join(lines)
