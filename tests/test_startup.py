"""Configuration and start-up faults give a clear message and the right exit status
(issue 10, items 8-11)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

import pytest

from bot.cli import main
from bot.config import ConfigError, Settings
from knowledge.loader import DATA_DIR
from tests.fake_bot_api import TOKEN
from tests.test_config import run_main


def test_data_dir_that_is_a_file_is_a_config_error(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ConfigError, match="PILOT_DATA_DIR"):
        Settings.from_env({"PILOT_DATA_DIR": str(not_a_dir / "var")})


def test_data_dir_fault_exits_2_with_a_message(tmp_path, monkeypatch, capsys):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("PILOT_DATA_DIR", str(not_a_dir))
    monkeypatch.delenv("USER_HASH_SALT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["ask", "截止"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("错误：") and "PILOT_DATA_DIR" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["TELEGRAM_RATE_PER_CHAT", "TELEGRAM_RATE_OVERALL", "TELEGRAM_RATE_GROUP_PER_MINUTE"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "0.000001"])
def test_rates_must_be_finite_and_in_range(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value, "USER_HASH_SALT": "s"})


def test_zero_rate_still_switches_a_limit_off():
    assert Settings.from_env({"TELEGRAM_RATE_PER_CHAT": "0", "USER_HASH_SALT": "s"}).rate_per_chat_per_second == 0


async def test_wrong_base_url_path_is_named_not_blamed_on_the_token(fake_api, tmp_path):
    wrong = fake_api.base_url.removesuffix("/bot") + "/api/bot"
    proc = await run_main({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": wrong,
                           "PILOT_DATA_DIR": str(tmp_path)}, tmp_path)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    output = (stdout + stderr).decode()
    assert proc.returncode == 2, output
    assert "TELEGRAM_BASE_URL" in output and "/api/bot" in output and "404" in output
    assert "拒绝了" not in output and TOKEN.split(":")[1] not in output


async def test_unreachable_server_gives_up_within_the_startup_timeout(tmp_path):
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        proc = await run_main({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": f"http://127.0.0.1:{port}/bot",
                               "TELEGRAM_STARTUP_TIMEOUT": "2", "PILOT_DATA_DIR": str(tmp_path)}, tmp_path)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    output = (stdout + stderr).decode()
    assert proc.returncode == 1, output
    assert "已等待" in output and "秒" in output and f"127.0.0.1:{port}" in output
    assert elapsed < 12  # interpreter start and imports, plus the 2 s bound


def test_knowledge_dir_setting_is_where_the_yaml_is_read(tmp_path, monkeypatch, capsys):
    kb = tmp_path / "kb"
    shutil.copytree(DATA_DIR, kb)
    faq = kb / "faq.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").replace("clauses:", "clausez:", 1), encoding="utf-8")
    monkeypatch.setenv("KNOWLEDGE_DIR", str(kb))
    monkeypatch.setenv("USER_HASH_SALT", "s")
    monkeypatch.setenv("PILOT_DATA_DIR", str(tmp_path / "var"))
    assert main(["kb", "check"]) == 2  # the staff's edited copy is the one checked
    assert "faq.yaml" in capsys.readouterr().err
    assert Settings.from_env().knowledge_dir == kb


def test_knowledge_dir_must_be_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="KNOWLEDGE_DIR"):
        Settings.from_env({"KNOWLEDGE_DIR": str(tmp_path / "missing"), "USER_HASH_SALT": "s"})


async def test_probe_accepts_a_base_url_with_a_token_placeholder(fake_api):
    import dataclasses

    from bot.telegram_app import Redactor, probe

    settings = dataclasses.replace(Settings(token=TOKEN, user_hash_salt="s"),
                                   base_url=fake_api.base_url + "{token}", startup_timeout=5)
    assert await probe(settings, Redactor([TOKEN])) is None
