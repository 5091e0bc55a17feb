"""/subscribe and /unsubscribe (anyone), delivery to every subscriber (used by staff
/broadcast and the reminder), and the deadline reminder on PTB's JobQueue.

Delivery goes through the application's rate limiter (Telegram's ~30 messages a
second overall), a few sends in flight at a time. A user who blocked the bot
(403 Forbidden) is marked and skipped next time; a group that became a supergroup
is followed to its new id; any other failure is counted and the rest go on.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
import warnings
from datetime import UTC, datetime, timedelta

from telegram import Bot, Update
from telegram.error import ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from handlers.common import SERVICES_KEY, Services, services
from knowledge.answering.compose import cn_date
from knowledge.staff.broadcast import UNSUBSCRIBE_HINT, DeliveryReport, reminder_due, reminder_key
from knowledge.staff.stats import OFFICE_TZ
from knowledge.storage.store import Store

log = logging.getLogger(__name__)

REMINDER_JOB = "deadline-reminder"
IN_FLIGHT = 16        # sends awaiting Telegram at once; the rate limiter does the pacing
UNLIMITED_RATE = 25   # messages a second when the bot has no rate limiter (never in production)
MAX_ATTEMPTS = 3      # per subscriber: a 429 that outlived the limiter's retries, a migration


# -- /subscribe /unsubscribe ---------------------------------------------------------------


def _reminder_note(context: ContextTypes.DEFAULT_TYPE) -> str:
    deps = services(context)
    deadline = deps.assistant.kb.meta.deadline
    if reminder_due(deadline, deps.settings.reminder_days_before, office_now(deps)) is None:
        return ""
    days = deps.settings.reminder_days_before
    when = f"截止日（{cn_date(deadline)}）" + (f"前 {days} 天" if days else "当天")
    return f"{when}还会提醒您。"


async def subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = update.effective_chat.id
    if services(context).store.subscribe(chat_id):
        text = "已订阅申报通知：办公室发布新通知时会发给您。" + _reminder_note(context)
    else:
        text = "您已订阅申报通知。"
    await context.bot.send_message(chat_id, text + "退订请发送 /unsubscribe。")


async def unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat_id = update.effective_chat.id
    if services(context).store.unsubscribe(chat_id):
        text = "已退订，不会再收到通知。重新订阅请发送 /subscribe。"
    else:
        text = "您没有订阅通知。订阅请发送 /subscribe。"
    await context.bot.send_message(chat_id, text)


# -- delivery -----------------------------------------------------------------------------


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns on reading retry_after as an int
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def deliver(bot: Bot, store: Store, text: str, *, in_flight: int = IN_FLIGHT) -> DeliveryReport:
    """Send `text` (plain; escaped here) to every active subscriber; never raises for one chat."""
    started = time.perf_counter()
    chat_ids = store.active_subscribers()
    report = DeliveryReport(total=len(chat_ids))
    body = html.escape(text, quote=False)
    gate = asyncio.Semaphore(in_flight)
    # Without a rate limiter (tests of other parts, scripts) keep under Telegram's limit here.
    pace = None if getattr(bot, "rate_limiter", None) is not None else asyncio.Semaphore(1)

    async def one(chat_id: int) -> None:
        async with gate:
            for _ in range(MAX_ATTEMPTS):
                try:
                    if pace is not None:
                        async with pace:
                            await asyncio.sleep(1 / UNLIMITED_RATE)
                    await bot.send_message(chat_id, body)
                    report.sent += 1
                    return
                except Forbidden as exc:  # blocked, kicked from the group, account deleted
                    log.info("subscriber %s unreachable (%s): marked blocked", store.user_hash(chat_id), exc)
                    store.mark_blocked(chat_id)
                    report.blocked += 1
                    return
                except ChatMigrated as exc:
                    store.migrate_subscriber(chat_id, exc.new_chat_id)
                    chat_id = exc.new_chat_id
                    report.migrated += 1
                except RetryAfter as exc:  # the rate limiter already retried; wait once more
                    await asyncio.sleep(_retry_seconds(exc))
                except TelegramError as exc:
                    log.warning("announcement to %s failed: %s", store.user_hash(chat_id), exc)
                    break
                except Exception:  # one bad chat must never stop the rest
                    log.exception("announcement to %s failed", store.user_hash(chat_id))
                    break
            report.failed += 1

    await asyncio.gather(*(one(c) for c in chat_ids))
    report.seconds = time.perf_counter() - started
    log.info("announcement delivered: %s", report)
    return report


# -- deadline reminder --------------------------------------------------------------------


def office_now(deps: Services) -> datetime:
    """Now in office time, on the assistant's calendar (a fixed --today / test clock moves the
    date, the time of day stays real); in production both are simply now."""
    real = datetime.now(OFFICE_TZ)
    today = deps.assistant.today()
    return real if today == real.date() else datetime.combine(today, real.timetz())


def reminder_text(deps: Services) -> str:
    reply = deps.assistant.deadline()  # the deadline wording, today's status and the clause
    return f"⏰ 申报截止提醒\n{reply.text}\n\n{UNSUBSCRIBE_HINT}"


async def send_reminder(context: ContextTypes.DEFAULT_TYPE) -> None:
    deps = services(context)
    deadline = deps.assistant.kb.meta.deadline
    key = reminder_key(deadline, deps.settings.reminder_days_before)
    if deps.store.load_session(key, "reminder") is not None:
        log.info("deadline reminder %s already sent", key)
        return
    # Remembered before sending: a crash mid-way must not send everyone a second copy.
    deps.store.save_session(key, "reminder", {"started": datetime.now(UTC).isoformat(timespec="seconds")})
    report = await deliver(context.bot, deps.store, reminder_text(deps))
    deps.store.save_session(key, "reminder", {"report": report.text()})


def schedule_reminder(application: Application, deps: Services | None = None) -> datetime | None:
    """(Re)schedule the reminder for the current knowledge base's deadline; returns when it
    is due (office time), or None when the deadline has passed or there is no JobQueue."""
    queue = application.job_queue
    if queue is None:
        log.warning("no JobQueue (install python-telegram-bot[job-queue]): no deadline reminder")
        return None
    for job in queue.get_jobs_by_name(REMINDER_JOB):
        job.schedule_removal()
    deps = deps or application.bot_data[SERVICES_KEY]
    deadline = deps.assistant.kb.meta.deadline
    now = office_now(deps)
    due = reminder_due(deadline, deps.settings.reminder_days_before, now)
    if due is None:
        return None
    if deps.store.load_session(reminder_key(deadline, deps.settings.reminder_days_before), "reminder"):
        return None
    queue.run_once(send_reminder, when=max(0.0, (due - now).total_seconds()), name=REMINDER_JOB)
    log.info("deadline reminder due %s", due.isoformat(timespec="minutes"))
    return due


def register(application: Application, deps: Services) -> None:
    only_messages = filters.UpdateType.MESSAGE  # an edited /subscribe is not a second request
    application.add_handlers([
        CommandHandler("subscribe", subscribe, filters=only_messages),
        CommandHandler("unsubscribe", unsubscribe, filters=only_messages),
    ])
    schedule_reminder(application, deps)
