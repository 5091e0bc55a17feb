"""Settings and start-up: environment and .env, clear refusals, the token never shown,
and the main command running the bot with long polling against the fake Bot API."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.telegram_app import Redactor, build_application, configure_logging
from tests.fake_bot_api import TOKEN

ROOT = Path(__file__).resolve().parent.parent
SECRET_PART = TOKEN.split(":", 1)[1]


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"PILOT_DATA_DIR": str(tmp_path), **values}


# -- parsing ---------------------------------------------------------------------------


def test_defaults(tmp_path):
    s = Settings.from_env(env_for(tmp_path))
    assert s.token is None and s.base_url is None and s.base_file_url is None
    assert s.database_path == tmp_path / "assistant.db"
    assert s.flood_limit_per_minute == 20
    assert (s.rate_overall_per_second, s.rate_per_chat_per_second, s.rate_group_per_minute) == (30, 1, 20)
    assert s.webhook_url is None and s.log_level == "INFO"
    assert s.user_hash_salt and (tmp_path / "user_hash_salt").read_text().strip() == s.user_hash_salt


def test_telegram_settings_are_read(tmp_path):
    s = Settings.from_env(env_for(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL="http://127.0.0.1:8081/bot",
        TELEGRAM_BASE_FILE_URL="http://127.0.0.1:8081/file/bot", DATABASE_PATH=str(tmp_path / "x.db"),
        TELEGRAM_RATE_OVERALL="25.5", TELEGRAM_RATE_PER_CHAT="0", FLOOD_LIMIT_PER_MINUTE="5",
        WEBHOOK_URL="https://example.org/pilot-bot", WEBHOOK_SECRET="s3cret-Token_x", LOG_LEVEL="debug",
    ))
    assert s.token == TOKEN and s.base_url == "http://127.0.0.1:8081/bot"
    assert s.base_file_url == "http://127.0.0.1:8081/file/bot" and s.database_path == tmp_path / "x.db"
    assert s.rate_overall_per_second == 25.5 and s.rate_per_chat_per_second == 0
    assert s.flood_limit_per_minute == 5 and s.webhook_secret == "s3cret-Token_x" and s.log_level == "DEBUG"
    assert TOKEN not in repr(s) and "s3cret" not in repr(s)


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_BASE_URL", "PILOT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\nTELEGRAM_BASE_URL=http://127.0.0.1:9/bot\nPILOT_DATA_DIR={tmp_path}\n",
        encoding="utf-8")
    s = Settings.from_env()
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_BASE_URL", "PILOT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)  # load_dotenv put them in os.environ
    assert s.token == TOKEN and s.base_url == "http://127.0.0.1:9/bot"


@pytest.mark.parametrize("name, value, words", [
    ("TELEGRAM_BOT_TOKEN", "not-a-token-SECRETVALUE", "TELEGRAM_BOT_TOKEN"),
    ("TELEGRAM_BASE_URL", "127.0.0.1:8081/bot", "TELEGRAM_BASE_URL"),
    ("TELEGRAM_BASE_FILE_URL", "ftp://x", "TELEGRAM_BASE_FILE_URL"),
    ("TELEGRAM_RATE_OVERALL", "fast", "TELEGRAM_RATE_OVERALL"),
    ("TELEGRAM_RATE_PER_CHAT", "-1", "TELEGRAM_RATE_PER_CHAT"),
    ("FLOOD_LIMIT_PER_MINUTE", "0", "FLOOD_LIMIT_PER_MINUTE"),
    ("WEBHOOK_URL", "http://example.org/hook", "WEBHOOK_URL"),
    ("WEBHOOK_PORT", "70000", "WEBHOOK_PORT"),
    ("WEBHOOK_SECRET", "has spaces!", "WEBHOOK_SECRET"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
])
def test_malformed_setting_is_refused_by_name(tmp_path, name, value, words):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env_for(tmp_path, **{name: value}))
    assert words in str(err.value)
    assert "SECRETVALUE" not in str(err.value) and "has spaces" not in str(err.value)


def test_building_without_token_is_a_config_error(tmp_path, assistant):
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        build_application(Settings.from_env(env_for(tmp_path)), assistant)


def test_redactor_hides_token_in_messages_and_tracebacks(caplog):
    settings = Settings(token=TOKEN, webhook_secret="hook-secret")
    logger = logging.getLogger("test.redact")
    with caplog.at_level(logging.DEBUG):
        configure_logging(settings)
        try:
            raise RuntimeError(f"failed calling https://api.telegram.org/bot{TOKEN}/getMe")
        except RuntimeError:
            logger.exception("url %s secret %s part %s", f"/bot{TOKEN}/x", "hook-secret", SECRET_PART)
    for handler in logging.getLogger().handlers:
        for f in [f for f in handler.filters if isinstance(f, Redactor)]:
            handler.removeFilter(f)
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "***" in text
    assert TOKEN not in text and SECRET_PART not in text and "hook-secret" not in text


# -- the main command, in a subprocess, against the fake Bot API ---------------------------------


async def run_main(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    full.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8",
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_main_command_runs_the_bot_with_long_polling(fake_api, tmp_path):
    data = tmp_path / "data"
    proc = await run_main({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": fake_api.base_url,
                           "TELEGRAM_BASE_FILE_URL": fake_api.base_file_url, "PILOT_DATA_DIR": str(data),
                           "LOG_LEVEL": "DEBUG", "LOG_TELEGRAM_DEBUG": "1"}, tmp_path)
    try:
        await fake_api.wait_for_call("setMyCommands", timeout=60)
        fake_api.message(1, "申报截止时间是什么时候？")
        reply = await fake_api.wait_for_call("sendMessage", 1, timeout=20)
        assert "5月20日" in reply.text
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    output = (stdout + stderr).decode()
    assert proc.returncode == 0, output
    assert "is up" in output and "bot***" in output  # DEBUG logs the API URL, redacted
    assert TOKEN not in output and SECRET_PART not in output
    # The first start created the database; the question was committed there.
    with sqlite3.connect(data / "assistant.db") as db:
        assert db.execute("select text, channel from questions").fetchall() == [("申报截止时间是什么时候？", "telegram")]


async def test_rejected_token_stops_with_a_clear_message(fake_api, tmp_path):
    wrong = "999:WRONG-secret-value"
    proc = await run_main({"TELEGRAM_BOT_TOKEN": wrong, "TELEGRAM_BASE_URL": fake_api.base_url,
                           "PILOT_DATA_DIR": str(tmp_path)}, tmp_path)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    output = (stdout + stderr).decode()
    assert proc.returncode == 2, output
    assert "TELEGRAM_BOT_TOKEN" in output and "@BotFather" in output
    assert "WRONG-secret-value" not in output


async def test_malformed_setting_stops_the_start(tmp_path):
    proc = await run_main({"TELEGRAM_BOT_TOKEN": "oops-SECRETVALUE", "PILOT_DATA_DIR": str(tmp_path)}, tmp_path)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in stderr.decode() and b"SECRETVALUE" not in stdout + stderr


async def test_webhook_mode_serves_updates_posted_with_the_secret(fake_api, tmp_path):
    import socket

    import aiohttp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await run_main({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": fake_api.base_url,
                           "PILOT_DATA_DIR": str(tmp_path), "WEBHOOK_URL": "https://example.org/pilot-hook",
                           "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(port),
                           "WEBHOOK_SECRET": "hook-Secret_1"}, tmp_path)
    try:
        registered = await fake_api.wait_for_call("setWebhook", timeout=60)
        assert registered.params["url"] == "https://example.org/pilot-hook"
        assert registered.params["secret_token"] == "hook-Secret_1"
        update = {"update_id": 1, "message": {
            "message_id": 1, "date": 0, "text": "/contact", "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
            "chat": fake_api.chat(77, "private"), "from": fake_api.user(77)}}
        url = f"http://127.0.0.1:{port}/pilot-hook"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the webhook server starts right after setWebhook
                try:
                    async with http.post(url, json=update) as refused:
                        assert refused.status == 403  # no secret header: not from Telegram
                    break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            headers = {"X-Telegram-Bot-Api-Secret-Token": "hook-Secret_1"}
            async with http.post(url, json=update, headers=headers) as accepted:
                assert accepted.status == 200
        reply = await fake_api.wait_for_call("sendMessage", 77, timeout=20)
        assert "87710317" in reply.text
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    output = (stdout + stderr).decode()
    assert proc.returncode == 0, output
    assert TOKEN not in output and "hook-Secret_1" not in output
