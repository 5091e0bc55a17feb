"""Settings from the environment (and an optional .env file), checked once at start.

A missing or malformed setting raises ConfigError with a message fit for the
operator; the token's value never appears in any message.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the setting, never a secret."""


def _load_dotenv() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # python-dotenv is a dependency; tolerate its absence anyway
        return
    load_dotenv(Path.cwd() / ".env", override=False)


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"设置 {name} 应为整数，现为 {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"设置 {name} 不能小于 {minimum}")
    return value


def _float(env: dict[str, str], name: str, default: float, minimum: float = 0.0,
           maximum: float = 1e6, *, off_or_from: float | None = None) -> float:
    """A finite number in [minimum, maximum]; with off_or_from, 0 (off) or at least that."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"设置 {name} 应为数字，现为 {raw!r}") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:  # also refuses nan and inf
        raise ConfigError(f"设置 {name} 应为 {minimum:g} 到 {maximum:g} 之间的数字，现为 {raw!r}")
    if off_or_from is not None and 0 < value < off_or_from:
        raise ConfigError(f"设置 {name} 应为 0（不限制）或不小于 {off_or_from:g}，现为 {raw!r}")
    return value


def _flag(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"设置 {name} 应为 1 或 0，现为 {raw!r}")


# Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - as a webhook secret token.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _ids(env: dict[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "").replace(";", ",").replace(" ", ",")
    ids = set()
    for part in filter(None, raw.split(",")):
        try:
            ids.add(int(part))
        except ValueError:
            raise ConfigError(f"设置 {name} 应为以逗号分隔的 Telegram 用户数字 ID，无法识别 {part!r}") from None
    return frozenset(ids)


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)
    base_url: str | None = None
    base_file_url: str | None = None
    data_dir: Path = Path("var")
    database_path: Path = Path("var/assistant.db")
    index_path: Path = Path("var/index.db")
    inbox_path: Path | None = None  # None: inbox.db beside database_path
    knowledge_dir: Path | None = None  # None: the YAML shipped in knowledge/data
    user_hash_salt: str = field(default="", repr=False)
    admin_ids: frozenset[int] = frozenset()
    flood_limit_per_minute: int = 20
    flood_press_limit_per_minute: int = 60
    replay_max_age_minutes: int = 60  # answer updates a crash left unanswered, if no older than this
    selfcheck_ttl_hours: int = 24
    retention_days: int = 365
    reminder_days_before: int = 7
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str | None = field(default=None, repr=False)
    # Outgoing traffic (PTB AIORateLimiter plus a per-chat limit). Defaults are Telegram's
    # published limits; tests and the benchmark raise them to measure the bot, not the quota.
    # 0 switches a limit off.
    rate_overall_per_second: float = 30.0
    rate_per_chat_per_second: float = 1.0
    rate_chat_burst: int = 3
    rate_group_per_minute: float = 20.0
    max_retries: int = 3            # 429s and network errors on outgoing calls
    concurrent_updates: int = 256   # updates processed at once
    connection_pool_size: int = 16  # HTTP connections to the Bot API (and requests in flight)
    typing_delay_ms: int = 500      # show "typing" when a reply takes longer than this
    log_level: str = "INFO"
    log_telegram_debug: bool = False  # at DEBUG, also the library's dumps of whole updates
    startup_timeout: float = 15.0     # seconds to reach the Bot API at start before giving up

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, read_dotenv: bool = True) -> Settings:
        if env is None:
            if read_dotenv:
                _load_dotenv()
            env = dict(os.environ)
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip() or None
        if token is not None and (":" not in token or not token.split(":", 1)[0].isdigit()):
            raise ConfigError("设置 TELEGRAM_BOT_TOKEN 格式不正确（应形如 123456:ABC…，请向 @BotFather 获取）")
        base_url = env.get("TELEGRAM_BASE_URL", "").strip() or None
        base_file_url = env.get("TELEGRAM_BASE_FILE_URL", "").strip() or None
        for name, url in (("TELEGRAM_BASE_URL", base_url), ("TELEGRAM_BASE_FILE_URL", base_file_url)):
            if url is not None and not url.startswith(("http://", "https://")):
                raise ConfigError(f"设置 {name} 应以 http:// 或 https:// 开头")
        data_dir = Path(env.get("PILOT_DATA_DIR", "").strip() or "var")
        database_path = Path(env.get("DATABASE_PATH", "").strip() or data_dir / "assistant.db")
        index_path = Path(env.get("INDEX_PATH", "").strip() or data_dir / "index.db")
        inbox_path = Path(env.get("INBOX_PATH", "").strip() or data_dir / "inbox.db")
        knowledge_dir = _knowledge_dir(env)
        webhook_url = env.get("WEBHOOK_URL", "").strip() or None
        if webhook_url is not None and not webhook_url.startswith("https://"):
            raise ConfigError("设置 WEBHOOK_URL 应以 https:// 开头")
        log_level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("设置 LOG_LEVEL 应为 DEBUG、INFO、WARNING 或 ERROR 之一")
        webhook_port = _int(env, "WEBHOOK_PORT", 8443, minimum=1)
        if webhook_port > 65535:
            raise ConfigError("设置 WEBHOOK_PORT 应为 1-65535 之间的端口号")
        webhook_secret = env.get("WEBHOOK_SECRET", "").strip() or None
        if webhook_secret is not None and not _SECRET.match(webhook_secret):
            raise ConfigError("设置 WEBHOOK_SECRET 只能包含字母、数字、_ 和 -，长度 1-256")
        return cls(
            token=token,
            base_url=base_url,
            base_file_url=base_file_url,
            data_dir=data_dir,
            database_path=database_path,
            index_path=index_path,
            inbox_path=inbox_path,
            knowledge_dir=knowledge_dir,
            user_hash_salt=env.get("USER_HASH_SALT", "").strip() or _stored_salt(data_dir),
            admin_ids=_ids(env, "ADMIN_IDS"),
            flood_limit_per_minute=_int(env, "FLOOD_LIMIT_PER_MINUTE", 20, minimum=1),
            flood_press_limit_per_minute=_int(env, "FLOOD_PRESS_LIMIT_PER_MINUTE", 60, minimum=1),
            replay_max_age_minutes=_int(env, "REPLAY_MAX_AGE_MINUTES", 60),
            selfcheck_ttl_hours=_int(env, "SELFCHECK_TTL_HOURS", 24, minimum=1),
            retention_days=_int(env, "RETENTION_DAYS", 365, minimum=1),
            reminder_days_before=_int(env, "REMINDER_DAYS_BEFORE", 7, minimum=0),
            webhook_url=webhook_url,
            webhook_listen=env.get("WEBHOOK_LISTEN", "").strip() or "127.0.0.1",
            webhook_port=webhook_port,
            webhook_secret=webhook_secret,
            rate_overall_per_second=_float(env, "TELEGRAM_RATE_OVERALL", 30.0, off_or_from=0.01),
            rate_per_chat_per_second=_float(env, "TELEGRAM_RATE_PER_CHAT", 1.0, off_or_from=0.01),
            rate_chat_burst=_int(env, "TELEGRAM_RATE_CHAT_BURST", 3, minimum=1),
            rate_group_per_minute=_float(env, "TELEGRAM_RATE_GROUP_PER_MINUTE", 20.0, off_or_from=0.01),
            max_retries=_int(env, "TELEGRAM_MAX_RETRIES", 3),
            concurrent_updates=_int(env, "TELEGRAM_CONCURRENT_UPDATES", 256, minimum=1),
            connection_pool_size=_int(env, "TELEGRAM_CONNECTIONS", 16, minimum=1),
            typing_delay_ms=_int(env, "TELEGRAM_TYPING_DELAY_MS", 500),
            log_level=log_level,
            log_telegram_debug=_flag(env, "LOG_TELEGRAM_DEBUG"),
            startup_timeout=_float(env, "TELEGRAM_STARTUP_TIMEOUT", 15.0, minimum=1.0, maximum=600.0),
        )


def _knowledge_dir(env: dict[str, str]) -> Path | None:
    raw = env.get("KNOWLEDGE_DIR", "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError(f"设置 KNOWLEDGE_DIR 应为存放知识库 YAML 的目录，{raw!r} 不是目录")
    return path


def _stored_salt(data_dir: Path) -> str:
    """Without USER_HASH_SALT, a random salt kept beside the data (created once, private)."""
    path = data_dir / "user_hash_salt"
    try:
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        data_dir.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_hex(16)
        path.write_text(salt, encoding="utf-8")
        path.chmod(0o600)
        return salt
    except OSError as exc:
        raise ConfigError(f"设置 PILOT_DATA_DIR 指向的 {str(data_dir)!r} 无法用作数据目录"
                          f"（{exc.strerror or type(exc).__name__}）：请指定一个可写的目录，"
                          "或设置 USER_HASH_SALT") from None
