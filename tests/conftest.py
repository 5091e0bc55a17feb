"""Shared fixtures. Engine fixtures here; Telegram fixtures may be added below."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.config import Settings
from knowledge.answering.index import Index
from knowledge.assistant import Assistant
from knowledge.loader import DATA_DIR, KnowledgeBase, load_knowledge
from knowledge.storage.store import Store
from tests.fake_bot_api import TOKEN, Call, FakeBotAPI

AFTER_DEADLINE = date(2026, 11, 28)
BEFORE_DEADLINE = date(2016, 5, 1)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the knowledge base's YAML that a test may edit."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit(data_dir: Path, name: str, change) -> None:
    """Apply change(doc) to one YAML file of a knowledge base copy."""
    path = data_dir / name
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="session")
def index_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("index") / "index.db"
    Index.open(path, load_knowledge()).db.close()
    return path


@pytest.fixture(scope="session")
def assistant(kb, index_path) -> Assistant:
    """The real knowledge base, with the clock fixed after the deadline."""
    return Assistant(kb, Index.open(index_path, kb), today=lambda: AFTER_DEADLINE)


# -- Telegram: a fake Bot API server and the real Application against it ---------------


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    """A fake Telegram Bot API on 127.0.0.1 (random port), recording every call."""
    api = await FakeBotAPI().start()
    yield api
    await api.stop()


def telegram_settings(api: FakeBotAPI, tmp_path: Path, **overrides) -> Settings:
    """Settings pointing at the fake server. The rate limiter stays on (it is what
    production runs) but with limits far above Telegram's, so tests measure the bot,
    not the quota; tests of the limits themselves pass lower ones."""
    base = Settings(
        token=TOKEN, base_url=api.base_url, base_file_url=api.base_file_url,
        data_dir=tmp_path, database_path=tmp_path / "assistant.db", index_path=tmp_path / "index.db",
        user_hash_salt="test-salt",
        rate_overall_per_second=10_000, rate_per_chat_per_second=1_000, rate_chat_burst=100,
        rate_group_per_minute=10_000, typing_delay_ms=5_000,
    )
    return dataclasses.replace(base, **overrides)


@dataclasses.dataclass
class BotHarness:
    """A running Application against the fake API, with helpers to talk to it."""

    app: object  # telegram.ext.Application
    api: FakeBotAPI
    store: Store

    async def ask(self, user_id: int, text: str, timeout: float = 10.0, **kwargs) -> Call:
        """Send a text as user_id and return the bot's next message to that chat."""
        chat_id = kwargs.get("chat_id", user_id)
        before = len(self.api.sent(chat_id))
        self.api.message(user_id, text, **kwargs)
        return await self.api.wait_for_call("sendMessage", chat_id, count=before + 1, timeout=timeout)

    async def press(self, user_id: int, sent: Call, data: str, timeout: float = 10.0) -> Call:
        """Press a button under `sent`; return the bot's answerCallbackQuery call."""
        before = len(self.api.calls_to("answerCallbackQuery"))
        self.api.press(user_id, sent, data)
        return await self.api.wait_for_call("answerCallbackQuery", count=before + 1, timeout=timeout)


@pytest.fixture
async def start_bot(fake_api, assistant, tmp_path) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """Factory: `harness = await start_bot(flood_limit_per_minute=5)` starts the real
    Application (initialize, post_init, start_polling, start) with those settings."""
    running: list[BotHarness] = []

    async def start(**overrides) -> BotHarness:
        settings = telegram_settings(fake_api, tmp_path, **overrides)
        harness = await run_application(fake_api, settings, assistant)
        running.append(harness)
        return harness

    yield start
    for harness in running:
        await stop_application(harness)


async def run_application(api: FakeBotAPI, settings: Settings, assistant: Assistant) -> BotHarness:
    """The real Application against the fake API: initialize, post_init, start_polling, start."""
    from bot.telegram_app import ALLOWED_UPDATES, build_application

    store = Store(settings.database_path, settings.user_hash_salt)
    app = build_application(settings, assistant, store)
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.updater.start_polling(poll_interval=0, allowed_updates=ALLOWED_UPDATES)
    await app.start()
    return BotHarness(app, api, store)


async def stop_application(harness: BotHarness) -> None:
    from bot.telegram_app import close_storage

    app = harness.app
    if app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
    close_storage(app, harness.store)


@pytest.fixture
async def bot(start_bot) -> BotHarness:
    """The bot with test settings, running."""
    return await start_bot()
