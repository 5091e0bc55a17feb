#!/usr/bin/env python3
"""Soak test: hostile traffic, a kill -9 mid-burst, and a locked database.

    python scripts/soak.py                      # about two minutes
    python scripts/soak.py --updates 10000 --users 500 --lock-seconds 12

The bot runs as in production (bot.telegram_app.run, long polling) in its own
process, against the fake Bot API (tests/fake_bot_api.py) served here on
127.0.0.1: nothing leaves the machine. Every phase is bounded in time
(--phase-timeout), so the script ends even if the bot hangs. It prints:

1. hostile updates: updates sent, crashes (the process dying, or a handler
   error it logged), malformed sends (what Telegram would refuse: bad HTML,
   over-long text, bad button data), unanswered presses (no answerCallbackQuery);
2. kill -9: 200 users ask at once, the bot is killed after 60 replies and
   restarted; lost replies (users never answered) and duplicated ones;
3. latency: reply latency p50/p99 with no lock, and while another connection
   holds BEGIN EXCLUSIVE on assistant.db for --lock-seconds; and whether the
   log rows queued meanwhile were all written once the lock went.
(The latency phases run first, on a quiet bot; then the hostile traffic; then
the kill -9, on a bot of its own.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.assistant import Assistant  # noqa: E402
from knowledge.loader import DATA_DIR  # noqa: E402
from tests.fake_bot_api import TOKEN, FakeBotAPI  # noqa: E402

CHILD = """
import sys
from bot.config import Settings
from bot.telegram_app import run
from knowledge.assistant import Assistant
settings = Settings.from_env()
raise SystemExit(run(settings, Assistant.load(settings.index_path, sys.argv[1])))
"""
GROUP = -1009876543210
MALFORMED = ("can't parse entities", "message is too long", "message text is empty", "BUTTON_DATA_INVALID",
             "RESULT_ID_INVALID")
JUNK_TEXTS = [
    "", " ", "\u200b", "<b>粗体</b>", "<script>alert(1)</script>", "&amp; &lt; &", "' OR 1=1 --", "\x00\x01",
    "1", "2", "9", "/start check", "/start zzz", "/unknown", "/faq@pilot_test_bot", "/cancel", "/help",
    "/stats", "/broadcast 你好", "申報截止時間", "shenbao jiezhi", "截止" * 3000, "😀" * 50, "\u202e反向文字",
    "问" * 301, "申报截止时间和联系电话？", "\n\n\n", "@pilot_test_bot", "@pilot_test_bot 截止时间",
]
JUNK_DATA = ["zzz", "A" * 64, "\x00", "ask:nonexistent", "clause:九.9", "fb:+1:abc:", "fb:+9:1:x", "fb:+1:1:",
             "sc:a:xxx:yy:zz", "sc:new", "sc:doc:abc", "sc:", "topic:none", "topics", "cmd:faq", "cmd:help",
             "cmd:bogus", "bc:ok:deadbeef", "ask:deadline", "clause:四.3"]


def env_for(api: FakeBotAPI, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api.base_url, TELEGRAM_BASE_FILE_URL=api.base_file_url,
        PILOT_DATA_DIR=str(data), LOG_LEVEL="WARNING", USER_HASH_SALT="soak",
        FLOOD_LIMIT_PER_MINUTE="100000", FLOOD_PRESS_LIMIT_PER_MINUTE="100000",
        TELEGRAM_RATE_OVERALL="100000", TELEGRAM_RATE_PER_CHAT="100000", TELEGRAM_RATE_CHAT_BURST="100",
        TELEGRAM_RATE_GROUP_PER_MINUTE="100000",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


async def start(api: FakeBotAPI, data: Path, kb_dir: Path, log: Path, **extra: str) -> asyncio.subprocess.Process:
    data.mkdir(parents=True, exist_ok=True)
    before = len(api.calls_to("setMyCommands"))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, str(kb_dir), cwd=data,
                                                env=env_for(api, data, **extra), stderr=log.open("ab"))
    await api.wait_for(lambda: len(api.calls_to("setMyCommands")) > before, timeout=60)
    return proc


async def stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


# -- phase 1: hostile updates --------------------------------------------------------------------


def hostile(api: FakeBotAPI, rng: random.Random, users: int, pool: list[str], presses: set[str]) -> None:
    """One hostile update from a random user."""
    user = 100_000 + rng.randrange(users)
    kind = rng.random()
    if kind < 0.45:
        api.message(user, rng.choice(pool + JUNK_TEXTS))
    elif kind < 0.75:
        message = {"message_id": rng.randrange(1, 50), "date": int(time.time()), "chat": api.chat(user),
                   "from": api.bot_user, "text": "旧消息"}
        press = {"id": f"soak{rng.getrandbits(48)}", "from": api.user(user), "chat_instance": "ci",
                 "data": rng.choice(JUNK_DATA)}
        if rng.random() < 0.1:
            press["inline_message_id"] = "INLINE-" + str(user)
        else:
            press["message"] = message
        presses.add(press["id"])
        api.push({"callback_query": press})
    elif kind < 0.82:
        api.non_text(user, rng.choice(["sticker", "photo", "voice", "document", "location", "contact"]))
    elif kind < 0.90:
        api.inline_query(user, rng.choice(pool + JUNK_TEXTS)[:256])
    elif kind < 0.95:
        api.message(user, rng.choice(["@pilot_test_bot 截止时间", "大家好", "/help@pilot_test_bot"]),
                    chat_id=GROUP, chat_type="supergroup")
    else:
        api.message(user, "截止时间")
        last = max(mid for (chat, mid) in api._messages if chat == user)  # noqa: SLF001 (our own fake)
        api.edit(user, last, rng.choice(pool + JUNK_TEXTS) or "空")


async def phase_hostile(api: FakeBotAPI, args: argparse.Namespace, pool: list[str]) -> dict[str, int]:
    rng = random.Random(10)
    presses: set[str] = set()
    calls_before = len(api.calls)
    per_tick = max(1, args.rate // 20)
    sent = 0
    deadline = time.monotonic() + args.phase_timeout
    while sent < args.updates and time.monotonic() < deadline:
        for _ in range(min(per_tick, args.updates - sent)):
            hostile(api, rng, args.users, pool, presses)
            sent += 1
        await asyncio.sleep(0.05)
    # Done when the bot has fetched everything and gone quiet.
    while time.monotonic() < deadline and (api._updates and api.get_updates_calls):  # noqa: SLF001
        await asyncio.sleep(0.2)
    await api.settle(1.0, timeout=max(1.0, deadline - time.monotonic()))
    calls = api.calls[calls_before:]
    answered = {c.params.get("callback_query_id") for c in calls if c.method == "answerCallbackQuery"}
    malformed = [c for c in calls if c.error and any(m in c.error for m in MALFORMED)]
    return {"sent": sent, "presses": len(presses), "unanswered": len(presses - answered),
            "malformed": len(malformed), "calls": len(calls)}


# -- phase 2: kill -9 mid-burst ----------------------------------------------------------------


async def phase_kill(api: FakeBotAPI, args: argparse.Namespace, data: Path, kb_dir: Path, log: Path,
                     question: str) -> dict[str, int]:
    users = list(range(300_000, 300_000 + args.burst))
    first = await start(api, data, kb_dir, log, TELEGRAM_RATE_OVERALL="20")  # replies take a while
    before = len(api.sent())
    for user in users:
        api.message(user, question)
    try:
        await api.wait_for(lambda: len(api.sent()) - before >= args.kill_after, timeout=args.phase_timeout)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    answered_before = len({c.chat_id for c in api.sent()[before:]})
    second = await start(api, data, kb_dir, log)
    wanted = set(users)
    with contextlib.suppress(TimeoutError):  # counted as lost below
        await api.wait_for(lambda: {c.chat_id for c in api.sent()[before:]} >= wanted, timeout=args.phase_timeout)
    await api.settle(1.0)
    await stop(second)
    replies = [c.chat_id for c in api.sent()[before:] if c.chat_id in wanted]
    return {"users": len(users), "before_kill": answered_before, "lost": len(wanted - set(replies)),
            "duplicated": len(replies) - len(set(replies))}


# -- phase 3: latency with and without a database lock -------------------------------------------


async def ask_loop(api: FakeBotAPI, user: int, pool: list[str], until: float, rng: random.Random,
                   latencies: list[tuple[float, float]], lost: list[int], timeout: float) -> None:
    await asyncio.sleep(rng.uniform(0, 1.0))  # users arrive spread out, not all in the same millisecond
    while time.monotonic() < until:
        reply = api.next_call("sendMessage", user)
        update_id = api.message(user, rng.choice(pool))
        try:
            call = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            lost.append(user)
            return
        latencies.append((api.injected_at[update_id], (call.at - api.injected_at[update_id]) * 1000))
        await asyncio.sleep(rng.expovariate(1 / 0.5))


async def measure(api: FakeBotAPI, seconds: float, users: int, pool: list[str], timeout: float,
                  seed: int) -> tuple[list[tuple[float, float]], list[int]]:
    rng = random.Random(seed)
    latencies: list[tuple[float, float]] = []
    lost: list[int] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(ask_loop(api, 400_000 + seed * 1000 + u, pool, until, random.Random(rng.random()),
                                    latencies, lost, timeout) for u in range(users)))
    return latencies, lost


def hold_lock(path: Path, seconds: float, window: list[float]) -> threading.Thread:
    ready = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        db.execute("begin exclusive")
        window.append(time.perf_counter())
        ready.set()
        time.sleep(seconds)
        db.execute("rollback")
        window.append(time.perf_counter())
        db.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(30)
    return thread


def questions_logged(path: Path) -> int:
    with sqlite3.connect(path, timeout=30) as db:
        return db.execute("select count(*) from questions").fetchone()[0]


async def soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="soak_"))
    kb_dir = work / "kb"
    shutil.copytree(DATA_DIR, kb_dir)
    assistant = Assistant.load(work / "index.db", kb_dir)
    pool = [e.question for e in assistant.kb.entries.values()] + [p for e in assistant.kb.entries.values()
                                                                    for p in e.phrasings[:2]]
    api = await FakeBotAPI().start()
    data = work / "data"
    data.mkdir()
    log = work / "bot.log"
    started = time.monotonic()
    status = 0
    try:
        proc = await start(api, data, kb_dir, log)
        await measure(api, 2.0, 10, pool, 30, seed=9)  # warm-up, not counted: every code path loaded
        plain, plain_lost = await measure(api, args.measure_seconds, args.latency_users, pool, 30, seed=1)
        logged_before = questions_logged(data / "assistant.db")
        window: list[float] = []
        holder = hold_lock(data / "assistant.db", args.lock_seconds, window)
        locked_all, locked_lost = await measure(api, args.lock_seconds, args.latency_users, pool, 30, seed=2)
        await asyncio.to_thread(holder.join)
        locked = [ms for at, ms in locked_all if window[0] <= at <= window[1]]
        await asyncio.sleep(3)  # the writer retries about every second
        logged_after = questions_logged(data / "assistant.db")
        hostile_figures = await phase_hostile(api, args, pool)
        alive = proc.returncode is None
        exit_status = await stop(proc)
        crashes = (0 if alive else 1) + (1 if exit_status not in (0, -signal.SIGTERM) else 0)
        errors = log.read_text(encoding="utf-8", errors="replace").count("error while handling")

        kill_figures = await phase_kill(api, args, work / "data_kill", kb_dir, log, assistant.kb.entries[
            next(iter(assistant.kb.entries))].question)
    finally:
        await api.stop()
    elapsed = time.monotonic() - started

    h = hostile_figures
    print(f"hostile: {h['sent']} updates from {args.users} users; crashes {crashes}, handler errors logged "
          f"{errors}; malformed sends {h['malformed']}; presses {h['presses']}, unanswered {h['unanswered']}")
    k = kill_figures
    print(f"kill -9: {k['users']} users at once, killed after {k['before_kill']} replies; "
          f"lost {k['lost']}, duplicated {k['duplicated']}")
    print(f"latency, no lock: p50 {percentile([ms for _, ms in plain], 50):.1f} ms, "
          f"p99 {percentile([ms for _, ms in plain], 99):.1f} ms ({len(plain)} replies, {len(plain_lost)} lost)")
    print(f"latency, {args.lock_seconds:g} s BEGIN EXCLUSIVE on assistant.db: p50 {percentile(locked, 50):.1f} ms, "
          f"p99 {percentile(locked, 99):.1f} ms, max {max(locked, default=float('nan')):.1f} ms "
          f"({len(locked)} replies during the lock, {len(locked_lost)} lost)")
    print(f"log rows written after the lock: {logged_after - logged_before} of {len(locked_all)} questions")
    print(f"wall time {elapsed:.0f} s; work dir {work}")
    failed = (crashes or errors or h["malformed"] or h["unanswered"] or k["lost"] or plain_lost or locked_lost
              or (locked and percentile(locked, 99) > 3000))
    if failed:
        status = 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=3000, help="hostile updates to send")
    parser.add_argument("--users", type=int, default=500, help="distinct senders of the hostile updates")
    parser.add_argument("--rate", type=int, default=200, help="hostile updates per second")
    parser.add_argument("--burst", type=int, default=200, help="users asking at once in the kill -9 phase")
    parser.add_argument("--kill-after", type=int, default=60, help="replies before the kill -9")
    parser.add_argument("--latency-users", type=int, default=50)
    parser.add_argument("--measure-seconds", type=float, default=10.0)
    parser.add_argument("--lock-seconds", type=float, default=10.0)
    parser.add_argument("--phase-timeout", type=float, default=90.0, help="upper bound of each phase, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (bot log, databases)")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
