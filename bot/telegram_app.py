"""Telegram wiring: build the python-telegram-bot Application and run it.

    run(settings)  # long polling; webhook mode when WEBHOOK_URL is set

The handlers live in `handlers/`; this module only assembles the Application
(token, optional self-hosted Bot API server, rate limiting, HTML defaults),
keeps the token out of every log line and turns start-up failures into a clear
message and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import secrets
import sqlite3
import sys
from typing import Any
from urllib.parse import urlparse

from aiolimiter import AsyncLimiter
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from bot.config import ConfigError, Settings
from bot.journal import INBOX_KEY, JournalledApplication, JournalQueue, replay
from handlers import register_all
from handlers.commands import BOT_COMMANDS
from handlers.common import Services
from handlers.flood import FloodLimiter
from knowledge.assistant import Assistant
from knowledge.errors import KnowledgeError
from knowledge.storage.inbox import Inbox
from knowledge.storage.store import Store

log = logging.getLogger(__name__)

# httpcore (under httpx) runs `import sniffio` on every request and falls back to
# asyncio when it is missing; a failed import is not cached, so each request pays
# a sys.path scan (a third of the CPU time at 200 users). Marking the module as
# absent makes the failure instant, with the same outcome.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

NO_TOKEN = "未设置 TELEGRAM_BOT_TOKEN：请向 @BotFather 申请机器人令牌后设置该环境变量（或写入 .env）。"

# Only what the handlers use; Telegram then does not send us the rest.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]


# -- outgoing traffic -----------------------------------------------------------------


class BotRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (overall and per-group limits, retries after 429) plus:

    * a per-chat limit for private chats (Telegram: about one message a second per
      chat, short bursts tolerated), which AIORateLimiter does not have;
    * retries with back-off on network errors (a timed-out send may then arrive
      twice; a duplicate answer is better than a lost one);
    * chat actions ("typing") bypass the limiters: they are not messages, and a
      typing indicator queued behind the very reply it announces would be useless;
    * at most `max_in_flight` requests on the wire: httpcore's connection pool scans
      every connection and every queued request for each request, which made
      hundreds of simultaneous replies quadratic; queueing here keeps it linear.
    """

    def __init__(self, *, per_chat_rate: float, chat_burst: int, network_retries: int, max_in_flight: int,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._per_chat_rate = per_chat_rate
        self._chat_burst = chat_burst
        self._network_retries = network_retries
        self._chat_limiters: dict[int, AsyncLimiter] = {}
        self._in_flight = asyncio.Semaphore(max_in_flight)

    def _chat_limiter(self, chat_id: object) -> AsyncLimiter | None:
        try:
            chat = int(chat_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
        if chat <= 0 or not self._per_chat_rate:  # groups: AIORateLimiter's group limit applies
            return None
        if len(self._chat_limiters) > 4096:  # forget chats whose bucket has fully drained
            for key, limiter in list(self._chat_limiters.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chat_limiters[key]
        limiter = self._chat_limiters.get(chat)
        if limiter is None:
            limiter = AsyncLimiter(self._chat_burst, self._chat_burst / self._per_chat_rate)
            self._chat_limiters[chat] = limiter
        return limiter

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):  # noqa: ANN001, ANN201
        async def on_the_wire(*a: Any, **kw: Any) -> Any:
            async with self._in_flight:
                return await callback(*a, **kw)

        if endpoint == "sendChatAction":
            return await on_the_wire(*args, **kwargs)
        if endpoint == "answerCallbackQuery":
            return await self._answer_press(on_the_wire, args, kwargs, data, rate_limit_args)
        limiter = self._chat_limiter(data.get("chat_id"))
        attempt = 0
        while True:
            try:
                async with limiter or contextlib.nullcontext():
                    return await super().process_request(on_the_wire, args, kwargs, endpoint, data,
                                                         rate_limit_args)
            except BadRequest:  # a NetworkError subclass, but retrying cannot fix it
                raise
            except NetworkError as exc:
                if attempt >= self._network_retries:
                    raise
                delay = 0.5 * 2 ** attempt
                attempt += 1
                log.warning("%s failed (%s); retry %d of %d in %.1f s",
                            endpoint, exc, attempt, self._network_retries, delay)
                await asyncio.sleep(delay)


    async def _answer_press(self, callback, args, kwargs, data, rate_limit_args):  # noqa: ANN001, ANN202
        """A press answered too late ("query is too old", e.g. replayed after a restart, or
        pressed while the bot was down) is an ordinary event: one log line, and the handler
        goes on to send its reply."""
        try:
            return await super().process_request(callback, args, kwargs, "answerCallbackQuery", data,
                                                 rate_limit_args)
        except BadRequest as exc:
            if not any(s in str(exc).lower() for s in EXPIRED_QUERY):
                raise
            log.info("button press %s expired before it was answered", data.get("callback_query_id"))
            return True


# Telegram's words for a press that can no longer be answered.
EXPIRED_QUERY = ("query is too old", "query id is invalid", "query_id_invalid")


def rate_limiter(settings: Settings) -> BotRateLimiter:
    return BotRateLimiter(
        overall_max_rate=settings.rate_overall_per_second,
        overall_time_period=1,
        group_max_rate=settings.rate_group_per_minute,
        group_time_period=60,
        max_retries=settings.max_retries,
        per_chat_rate=settings.rate_per_chat_per_second,
        chat_burst=settings.rate_chat_burst,
        network_retries=settings.max_retries,
        max_in_flight=settings.connection_pool_size,
    )


# -- logging without secrets ------------------------------------------------------------


class Redactor(logging.Filter):
    """Replaces secrets in a record's message and traceback. The Bot API URL contains the
    token, and PTB puts it in some messages (e.g. InvalidToken), so this sits on every
    root handler rather than trusting each library."""

    def __init__(self, secrets_: list[str]) -> None:
        super().__init__()
        # The token's part after ":" is the secret; redact it alone too.
        parts = [s for s in secrets_ if s] + [s.split(":", 1)[1] for s in secrets_ if s and ":" in s]
        self.secrets = sorted(set(parts), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not break logging, nor leak
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure_logging(settings: Settings) -> Redactor:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(settings.log_level)
    # httpx logs every request URL at INFO, and the URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # At DEBUG, PTB dumps whole updates and requests (names, texts, chat ids): only on request.
    library_debug = settings.log_level == "DEBUG" and settings.log_telegram_debug
    logging.getLogger("telegram").setLevel(logging.DEBUG if library_debug else max(logging.INFO, root.level))
    redactor = Redactor([settings.token or "", settings.webhook_secret or ""])
    for handler in root.handlers:
        if not any(isinstance(f, Redactor) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor


# -- the application -------------------------------------------------------------------


async def _post_init(application: Application) -> None:
    bot = application.bot
    inbox: Inbox | None = application.bot_data.get(INBOX_KEY)
    services = application.bot_data.get("services")
    if inbox is not None and services is not None:
        replay(application, inbox, services.settings.replay_max_age_minutes * 60)
    try:
        await bot.set_my_commands(list(BOT_COMMANDS))
    except TelegramError as exc:  # the menu is a nicety; answering matters more
        log.warning("could not set the command menu: %s", exc)
    log.info("Telegram bot @%s is up", bot.username)


def build_application(settings: Settings, assistant: Assistant | None = None,
                      store: Store | None = None) -> Application:
    """The configured Application, handlers registered; not yet initialised.
    The store (created at settings.database_path when not given) is closed by the caller."""
    if not settings.token:
        raise ConfigError(NO_TOKEN)
    assistant = assistant or Assistant.load(settings.index_path, settings.knowledge_dir)
    store = store or Store(settings.database_path, settings.user_hash_salt)
    store.start_writer()  # from here on, writes never hold up the event loop
    inbox = Inbox(settings.inbox_path or settings.database_path.with_name("inbox.db"))
    builder = (
        ApplicationBuilder()
        .application_class(JournalledApplication)
        .update_queue(JournalQueue(inbox))
        .token(settings.token)
        .rate_limiter(rate_limiter(settings))
        .concurrent_updates(settings.concurrent_updates)
        .connection_pool_size(settings.connection_pool_size)
        # Requests wait in the rate limiter, not for a connection; this only guards a stall.
        .pool_timeout(30.0)
        .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .post_init(_post_init)
    )
    if settings.base_url:
        builder = builder.base_url(settings.base_url)
    if settings.base_file_url:
        builder = builder.base_file_url(settings.base_file_url)
    application = builder.build()
    application.bot_data[INBOX_KEY] = inbox
    flood = FloodLimiter(settings.flood_limit_per_minute, window=60.0)
    press_flood = FloodLimiter(settings.flood_press_limit_per_minute, window=60.0)
    register_all(application, Services(assistant=assistant, store=store, settings=settings, flood=flood,
                                       press_flood=press_flood))
    return application


def close_storage(application: Application, store: Store) -> None:
    """Commit what is queued (inbox first: it says what is still owed), then close."""
    inbox: Inbox | None = application.bot_data.get(INBOX_KEY)
    if inbox is not None:
        inbox.close()
    store.close()


def _run_webhook(application: Application, settings: Settings) -> None:
    """Behind a reverse proxy: it terminates TLS at WEBHOOK_URL and forwards to
    WEBHOOK_LISTEN:WEBHOOK_PORT; the URL's path is the path we serve."""
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlparse(settings.webhook_url).path.lstrip("/"),
        webhook_url=settings.webhook_url,
        # Telegram sends this back in a header, so only Telegram can post updates.
        secret_token=settings.webhook_secret or secrets.token_urlsafe(32),
        allowed_updates=ALLOWED_UPDATES,
        bootstrap_retries=3,
    )


TELEGRAM_API = "https://api.telegram.org/bot"


async def probe(settings: Settings, redactor: Redactor) -> tuple[int, str] | None:
    """Ask getMe before starting, within settings.startup_timeout seconds. None when the
    server answers and accepts the token, else (exit status, message). PTB's own start
    retries for a minute or more and reports a wrong URL as a wrong token."""
    import httpx

    base = settings.base_url or TELEGRAM_API
    # As PTB builds it: the token appended, or put where the URL says "{token}".
    url = (base.format(token=settings.token) if "{token}" in base else f"{base}{settings.token}") + "/getMe"
    shown = redactor.redact(url)
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    last_error = ""
    async with httpx.AsyncClient(timeout=httpx.Timeout(min(5.0, settings.startup_timeout))) as client:
        while True:
            try:
                response = await asyncio.wait_for(
                    client.get(url), max(0.1, settings.startup_timeout - (loop_time() - started)))
            except (httpx.HTTPError, OSError, TimeoutError) as exc:
                last_error = redactor.redact(str(exc) or type(exc).__name__)
            else:
                if response.status_code == 200:
                    return None
                if response.status_code == 401 or (response.status_code == 404 and not settings.base_url):
                    return 2, ("Telegram 拒绝了 TELEGRAM_BOT_TOKEN（令牌无效或已被撤销），请在 @BotFather 中核对。")
                if response.status_code == 404:
                    return 2, (f"TELEGRAM_BASE_URL 的地址不对：{shown} 返回 404（找不到），"
                               "请核对地址的路径（应形如 http://主机:端口/bot，令牌接在其后）。")
                last_error = f"HTTP {response.status_code}"
            waited = loop_time() - started
            if waited >= settings.startup_timeout:
                where = redactor.redact(base)
                return 1, (f"无法连接 Telegram Bot API（{where}），已等待 {waited:.0f} 秒"
                           f"（TELEGRAM_STARTUP_TIMEOUT={settings.startup_timeout:g}）：{last_error}")
            await asyncio.sleep(min(1.0, max(0.0, settings.startup_timeout - waited)))


def _check_store(store: Store) -> None:
    """A corrupt log that still opens: say so once, at start; answers go on regardless."""
    problem = store.integrity_problem()
    if problem is not None:
        log.error("the database %s is damaged (%s): answers go on, but logging may fail; restore it from a "
                  "backup or move it aside to start a new one", store.path, problem)
        print(f"警告：数据库 {store.path} 已损坏（{problem}）。机器人照常回答，但记录可能失败；"
              "请从备份恢复，或将其移走后重新启动以新建。", file=sys.stderr)


def run(settings: Settings, assistant: Assistant | None = None) -> int:
    """Run the bot until SIGINT/SIGTERM: long polling, or a webhook when WEBHOOK_URL is set.
    Returns the exit status; failures print a message that never contains the token."""
    redactor = configure_logging(settings)
    if not settings.token:
        print(f"错误：{NO_TOKEN}", file=sys.stderr)
        return 2
    failure = asyncio.run(probe(settings, redactor))
    if failure is not None:
        print(f"错误：{failure[1]}", file=sys.stderr)
        return failure[0]
    try:
        store = Store(settings.database_path, settings.user_hash_salt)  # the first start creates it
    except (OSError, sqlite3.Error) as exc:
        print(f"错误：无法打开数据库 {settings.database_path}（设置 DATABASE_PATH）：{exc}", file=sys.stderr)
        return 2
    _check_store(store)
    try:
        application = build_application(settings, assistant, store)
    except (ConfigError, KnowledgeError) as exc:
        store.close()
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    # The loaded knowledge base, index and dictionaries live as long as the process:
    # keep them out of the cyclic GC, whose full passes over them stalled replies.
    gc.collect()
    gc.freeze()
    try:
        if settings.webhook_url:
            _run_webhook(application, settings)
        else:
            application.run_polling(allowed_updates=ALLOWED_UPDATES, bootstrap_retries=3)
    except InvalidToken:
        print("错误：Telegram 拒绝了 TELEGRAM_BOT_TOKEN（令牌无效或已被撤销），请在 @BotFather 中核对。",
              file=sys.stderr)
        return 2
    except TelegramError as exc:
        where = redactor.redact(settings.base_url or "api.telegram.org")
        print(f"错误：无法连接 Telegram Bot API（{where}）：{redactor.redact(str(exc))}", file=sys.stderr)
        return 1
    finally:
        close_storage(application, store)
    return 0
