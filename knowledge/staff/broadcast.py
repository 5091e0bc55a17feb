"""Announcements to subscribers, the part that knows nothing of Telegram:
the announcement's wording, the delivery report, and when the deadline reminder is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from knowledge.staff.stats import OFFICE_TZ

ANNOUNCEMENT_HEAD = "📢 申报通知"
UNSUBSCRIBE_HINT = "（不想再收到通知，请发送 /unsubscribe）"
REMINDER_HOUR = 9  # office time: a reminder at breakfast, not at midnight


def announcement(text: str) -> str:
    """What subscribers receive for a staff /broadcast (plain text; the sender escapes it)."""
    return f"{ANNOUNCEMENT_HEAD}\n{text.strip()}\n\n{UNSUBSCRIBE_HINT}"


@dataclass
class DeliveryReport:
    total: int = 0
    sent: int = 0
    blocked: int = 0  # the user blocked the bot (403): marked, skipped from now on
    failed: int = 0   # anything else; the rest of the delivery went on
    migrated: int = 0  # groups that became supergroups; delivered under the new id
    seconds: float = 0.0

    def text(self) -> str:
        lines = [f"发送完成：共 {self.total} 位订阅者，成功 {self.sent}，已屏蔽机器人 {self.blocked}，失败 {self.failed}。"]
        if self.blocked:
            lines.append("屏蔽机器人的用户已标记，以后不再发送。")
        if self.migrated:
            lines.append(f"{self.migrated} 个群组已升级为超级群组，已改用新的群组 ID。")
        lines.append(f"用时 {self.seconds:.1f} 秒。")
        return "\n".join(lines)


def reminder_due(deadline: date, days_before: int, now: datetime, hour: int = REMINDER_HOUR) -> datetime | None:
    """When to send the deadline reminder: `days_before` days before the deadline at `hour`
    office time. If that moment has passed but the deadline day has not (the bot started
    late), now; once the deadline day is over, None."""
    now = now.astimezone(OFFICE_TZ)
    if now.date() > deadline:
        return None
    at = datetime.combine(deadline - timedelta(days=days_before), time(hour), OFFICE_TZ)
    return max(at, now)


def reminder_key(deadline: date, days_before: int) -> str:
    """Remembered once sent, so a restart (or a /reload) does not send it again."""
    return f"reminder:{deadline.isoformat()}:{days_before}"
