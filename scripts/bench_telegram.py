#!/usr/bin/env python3
"""Throughput and reply latency of the Telegram bot under many concurrent users.

    python scripts/bench_telegram.py                    # 200 users x 5 questions each
    python scripts/bench_telegram.py --users 50 --rounds 10
    python scripts/bench_telegram.py --telegram-limits  # with Telegram's real rate limits

The bot runs as in production (bot.telegram_app.run, long polling) in its own process,
against the fake Bot API server (tests/fake_bot_api.py) run here. Each simulated
user asks a question, waits for the reply, then asks the next one. Latency is
from the update being queued at the fake server to the bot's sendMessage
arriving there (so it includes long polling, the engine, SQLite logging and the
rate limiter). Every reply is checked against the engine's own answer for that
user's question: no reply may be lost or go to the wrong user.

By default the rate limiter is on but set far above Telegram's limits, to measure
the bot; --telegram-limits uses the production defaults (30 messages/s overall,
1/s per chat), where 200 simultaneous replies necessarily take about 7 s.
Target (issue): no lost or crossed reply; p99 < 100 ms at 200 users.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.assistant import Assistant  # noqa: E402
from knowledge.loader import DATA_DIR  # noqa: E402
from tests.fake_bot_api import TOKEN, FakeBotAPI  # noqa: E402

EXTRA = ["你好", "武汉今天天气怎么样", "入选后有补贴吗", "截止时间和联系电话", "谢谢"]


def question_pool(assistant: Assistant) -> list[str]:
    """What users type: canonical questions, their phrasings, small talk and off-topic."""
    pool = list(EXTRA)
    for entry in assistant.kb.entries.values():
        pool.append(entry.question)
        pool.extend(entry.phrasings[:3])
    return pool


# The bot process: production wiring (settings from the environment, bot.telegram_app.run),
# on the same knowledge-base snapshot the expected answers were computed from.
CHILD = """
import sys
from bot.config import Settings
from bot.telegram_app import run
from knowledge.assistant import Assistant
settings = Settings.from_env()
raise SystemExit(run(settings, Assistant.load(settings.index_path, sys.argv[1])))
"""


async def start_bot(api: FakeBotAPI, data_dir: Path, kb_dir: Path, telegram_limits: bool,
                    flood: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api.base_url, TELEGRAM_BASE_FILE_URL=api.base_file_url,
        PILOT_DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", FLOOD_LIMIT_PER_MINUTE=str(flood),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    if not telegram_limits:
        env.update(TELEGRAM_RATE_OVERALL="100000", TELEGRAM_RATE_PER_CHAT="100000", TELEGRAM_RATE_CHAT_BURST="100")
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    return await asyncio.create_subprocess_exec(sys.executable, *profile, "-c", CHILD, str(kb_dir), cwd=data_dir,
                                                env=env)


polling: list[float] = []  # inject -> fetched by getUpdates, the long-polling share of latency


async def user(api: FakeBotAPI, user_id: int, questions: list[str], expected: dict[str, str],
               latencies: list[float], problems: list[str], timeout: float, think: float = 0.0) -> None:
    rng = random.Random(user_id)
    for question in questions:
        if think:  # reading the last answer and typing the next question (Poisson arrivals)
            await asyncio.sleep(rng.expovariate(1 / think))
        reply = api.next_call("sendMessage", user_id)
        update_id = api.message(user_id, question)
        try:
            call = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            problems.append(f"lost: user {user_id} asked {question!r}, no reply in {timeout:g} s")
            return
        latencies.append((call.at - api.injected_at[update_id]) * 1000)
        polling.append((api.delivered_at[update_id] - api.injected_at[update_id]) * 1000)
        if call.text != expected[question]:
            problems.append(f"crossed: user {user_id} asked {question!r}, got {call.text[:40]!r}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def bench(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench_telegram_"))
    kb_dir = work / "kb"
    shutil.copytree(DATA_DIR, kb_dir)  # a snapshot: the YAML may be edited while this runs
    assistant = Assistant.load(work / "index.db", kb_dir)
    pool = question_pool(assistant)
    expected = {q: assistant.answer(q).text for q in pool}
    rng = random.Random(7)
    api = await FakeBotAPI().start()
    with tempfile.TemporaryDirectory() as data:
        proc = await start_bot(api, Path(data), kb_dir, args.telegram_limits, flood=max(20, args.rounds + 5))
        try:
            await api.wait_for_call("setMyCommands", timeout=60)
            # Warm-up (not measured): a few questions so every code path is loaded.
            warm_latencies: list[float] = []
            await asyncio.gather(*(user(api, 10_000_000 + n, [pool[n % len(pool)]], expected, warm_latencies, [], 30)
                                   for n in range(10)))
            latencies: list[float] = []
            problems: list[str] = []
            plans = {1_000 + n: [rng.choice(pool) for _ in range(args.rounds)] for n in range(args.users)}
            started = time.perf_counter()
            await asyncio.gather(*(user(api, uid, qs, expected, latencies, problems, args.timeout, args.think)
                                   for uid, qs in plans.items()))
            elapsed = time.perf_counter() - started
            extra = [c for c in api.sent() if c.chat_id in plans]
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    await api.stop()
    shutil.rmtree(work, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = args.users * args.rounds
    surplus = len(extra) - len(latencies)
    print(f"users: {args.users}, questions each: {args.rounds}, mean think time: {args.think:g} s, "
          f"updates: {total}, limits: {'Telegram defaults' if args.telegram_limits else 'raised (bot capacity)'}")
    per_second: dict[int, int] = {}
    for call in extra:
        per_second[int(call.at - started)] = per_second.get(int(call.at - started), 0) + 1
    print(f"wall time: {elapsed:.2f} s   updates handled per second: {len(latencies) / elapsed:.0f} on average, "
          f"{max(per_second.values(), default=0)} in the busiest second")
    print(f"reply latency: median {statistics.median(latencies):.1f} ms, p90 {percentile(latencies, 90):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")
    print(f"  of which waiting to be fetched (long polling): median {statistics.median(polling):.1f} ms, "
          f"p99 {percentile(polling, 99):.1f} ms")
    print(f"peak memory of the bot process: {peak_mb:.0f} MB (max RSS)")
    print(f"lost or crossed replies: {len(problems)}; unexpected extra messages: {surplus}; "
          f"exit status of the bot: {proc.returncode}")
    for problem in problems[:10]:
        print("  " + problem)
    return 0 if not problems and surplus == 0 and proc.returncode == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10, help="questions per user, asked one after another")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds between a reply and the user's next question (0: all at once, "
                             "a capacity test)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a reply counts as lost")
    parser.add_argument("--telegram-limits", action="store_true", help="use the production rate limits")
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
