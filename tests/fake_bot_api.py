"""A fake Telegram Bot API server for end-to-end tests and the benchmark.

It serves the HTTP API the real python-telegram-bot Application talks to
(`ApplicationBuilder.base_url(api.base_url)`): tests inject updates, the bot
fetches them with getUpdates (long polling), and every call it makes is
recorded for assertions. Where Telegram would refuse a request, so does this:
malformed HTML, texts over 4096 characters, callback data over 64 bytes, an
edit that changes nothing. Failures (429, 502) can be injected to exercise
retries.

    api = FakeBotAPI()
    await api.start()
    api.message(1001, "申报截止时间是什么时候？")
    call = await api.wait_for_call("sendMessage", chat_id=1001)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:TEST-fake-token_for-e2e-tests"
BOT_ID = 123456789
BOT_USERNAME = "pilot_test_bot"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64

# String parameters PTB sends as-is; every other value is JSON-encoded.
_TEXT_KEYS = {"text", "caption", "query", "callback_query_id", "inline_query_id", "action", "parse_mode",
              "url", "secret_token", "description", "short_description", "name", "title", "language_code",
              "next_offset", "switch_pm_text", "switch_pm_parameter", "message_effect_id", "business_connection_id"}
_ENTITY_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
                "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code",
                "pre": "pre", "a": "text_link", "tg-spoiler": "spoiler", "span": "spoiler",
                "blockquote": "blockquote", "tg-emoji": "custom_emoji"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode, strictly enough to catch unescaped text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict] = []
        self.open: list[tuple[str, int, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in _ENTITY_TAGS:
            raise ApiError(400, f"Bad Request: can't parse entities: Unsupported start tag \"{tag}\"")
        self.open.append((tag, utf16_len(self.text), dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise ApiError(400, f"Bad Request: can't parse entities: Unexpected end tag \"{tag}\"")
        _, start, attrs = self.open.pop()
        length = utf16_len(self.text) - start
        if length:
            entity = {"type": _ENTITY_TAGS[tag], "offset": start, "length": length}
            if tag == "a":
                entity["url"] = attrs.get("href", "")
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text += data


def parse_html(markup: str) -> tuple[str, list[dict]]:
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.open:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
                            f"\"{parser.open[-1][0]}\"")
    return parser.text, sorted(parser.entities, key=lambda e: e["offset"])


@dataclass
class Call:
    """One request the bot made: method, decoded parameters, when, and what was returned."""

    method: str
    params: dict[str, Any]
    at: float
    result: Any = None
    error: str | None = None

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        """The text as a user sees it (tags removed) for sent and edited messages."""
        return self.result.get("text") if isinstance(self.result, dict) else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data or url) of every inline button, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data") or b.get("url", ""))
                for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class _Failure:
    status: int
    description: str
    parameters: dict | None
    times: int


@dataclass
class FakeBotAPI:
    token: str = TOKEN
    bot_id: int = BOT_ID
    username: str = BOT_USERNAME
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = defaultdict(lambda: itertools.count(1))
        self._messages: dict[tuple[int, int], dict] = {}
        self._chats: dict[int, dict] = {}
        self._failures: dict[str, list[_Failure]] = defaultdict(list)
        self._changed = asyncio.Condition()
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.get_updates_calls = 0
        self.injected_at: dict[int, float] = {}  # update_id -> time injected (perf_counter)
        self.injected: dict[int, dict] = {}  # update_id -> the update
        self.delivered_at: dict[int, float] = {}  # update_id -> first returned by getUpdates
        self._next: dict[tuple[str, Any], list[asyncio.Future]] = defaultdict(list)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._new_update.set()  # release any long poll
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "申报助手", "username": self.username}

    # -- injecting updates -------------------------------------------------------

    def user(self, user_id: int) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": f"用户{user_id}", "language_code": "zh-hans"}

    def chat(self, chat_id: int, chat_type: str = "private", user_id: int | None = None) -> dict:
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": f"用户{user_id or chat_id}"}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": "申报交流群"}
        self._chats[chat_id] = chat
        return chat

    def push(self, update: dict) -> int:
        update_id = next(self._update_ids)
        update["update_id"] = update_id
        self._updates.append(update)
        self.injected_at[update_id] = time.perf_counter()
        self.injected[update_id] = update
        self._new_update.set()
        return update_id

    def _entities(self, text: str) -> list[dict]:
        """What Telegram's clients mark up: a leading /command and @mentions."""
        entities = []
        if text.startswith("/"):
            command = text.split()[0]
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        start = 0
        while (at := text.find("@", start)) != -1:
            end = at + 1
            while end < len(text) and (text[end].isascii() and (text[end].isalnum() or text[end] == "_")):
                end += 1
            if end - at > 1 and not (entities and entities[0]["type"] == "bot_command" and at < len(text.split()[0])):
                entities.append({"type": "mention", "offset": utf16_len(text[:at]), "length": utf16_len(text[at:end])})
            start = end
        return entities

    def _message(self, user_id: int, chat_id: int | None, chat_type: str, **content: Any) -> dict:
        chat_id = chat_id if chat_id is not None else user_id
        message_id = next(self._message_ids[chat_id])
        message = {"message_id": message_id, "date": int(time.time()), "from": self.user(user_id),
                   "chat": self.chat(chat_id, chat_type, user_id), **content}
        self._messages[(chat_id, message_id)] = message
        return message

    def message(self, user_id: int, text: str, *, chat_id: int | None = None, chat_type: str = "private",
                reply_to: dict | None = None) -> int:
        """A text message (a /command or @mention is marked up as a client would)."""
        content: dict[str, Any] = {"text": text}
        entities = self._entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        return self.push({"message": self._message(user_id, chat_id, chat_type, **content)})

    def edit(self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None) -> int:
        chat_id = chat_id if chat_id is not None else user_id
        original = self._messages[(chat_id, message_id)]
        edited = {**original, "text": text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        if self._entities(text):
            edited["entities"] = self._entities(text)
        self._messages[(chat_id, message_id)] = edited
        return self.push({"edited_message": edited})

    def non_text(self, user_id: int, kind: str, *, chat_id: int | None = None, chat_type: str = "private") -> int:
        """A sticker, photo, voice, document, location or contact message."""
        file = {"file_id": f"{kind}-file", "file_unique_id": f"{kind}-u"}
        payloads: dict[str, Any] = {
            "sticker": {**file, "type": "regular", "width": 512, "height": 512, "is_animated": False,
                        "is_video": False, "emoji": "👍"},
            "photo": [{**file, "width": 90, "height": 90}],
            "voice": {**file, "duration": 3, "mime_type": "audio/ogg"},
            "document": {**file, "file_name": "申请书.docx"},
            "location": {"latitude": 30.55, "longitude": 114.34},
            "contact": {"phone_number": "+8627000000", "first_name": "张三"},
        }
        return self.push({"message": self._message(user_id, chat_id, chat_type, **{kind: payloads[kind]})})

    def press(self, user_id: int, sent: Call | dict, data: str) -> int:
        """The user presses the button with this callback data under a message the bot sent."""
        message = sent.result if isinstance(sent, Call) else sent
        return self.push({"callback_query": {
            "id": f"cq{next(self._update_ids)}", "from": self.user(user_id), "chat_instance": "ci",
            "data": data, "message": message,
        }})

    def inline_query(self, user_id: int, query: str) -> int:
        return self.push({"inline_query": {"id": f"iq{next(self._update_ids)}", "from": self.user(user_id),
                                           "query": query, "offset": ""}})

    def fail(self, method: str, status: int = 429, *, times: int = 1, retry_after: int = 1,
             description: str | None = None) -> None:
        """The next `times` calls of `method` fail: 429 with retry_after, or e.g. 502 (a network error),
        or any status with Telegram's description (e.g. 400 "Bad Request: query is too old …")."""
        if status == 429:
            failure = _Failure(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after},
                               times)
        else:
            failure = _Failure(status, description or ("Bad Gateway" if status == 502 else f"Error {status}"),
                               None, times)
        self._failures[method].append(failure)

    # -- reading what the bot did --------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)
                and (c.error is None or not ok_only)]

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """Successful sendMessage calls, optionally to one chat, in order."""
        return self.calls_to("sendMessage", chat_id)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until predicate() is truthy (re-checked after every call); return its value."""
        async def check() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        return await asyncio.wait_for(check(), timeout)

    async def wait_for_call(self, method: str, chat_id: int | None = None, count: int = 1,
                            timeout: float = 10.0) -> Call:
        """The count-th successful call of method (to chat_id); waits for it."""
        calls = await self.wait_for(lambda: (c := self.calls_to(method, chat_id)) and len(c) >= count and c,
                                    timeout)
        return calls[count - 1]

    def next_call(self, method: str, chat_id: Any) -> asyncio.Future:
        """A future for the next successful call of method to chat_id (cheap: for load tests,
        where hundreds of waiters re-scanning every call would be quadratic)."""
        future = asyncio.get_running_loop().create_future()
        self._next[(method, chat_id)].append(future)
        return future

    async def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no call has arrived for `quiet` seconds (to assert that nothing more is sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = len(self.calls)
            await asyncio.sleep(quiet)
            if len(self.calls) == before:
                return

    # -- the HTTP side -------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=b"fake file")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                raw.update(await request.json())
                return raw
            form = await request.post()
            for key, value in form.items():
                # An uploaded file: its name and bytes (e.g. a test opens a sent .docx).
                raw[key] = value if isinstance(value, str) else {"filename": value.filename,
                                                                 "content": value.file.read()}
        params = {}
        for key, value in raw.items():
            if isinstance(value, str) and key not in _TEXT_KEYS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[key] = value
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        try:
            params = await self._params(request)
        except ConnectionResetError:  # the client went away mid-request (e.g. the bot was stopped)
            return web.Response(status=499)
        if method.lower() == "getupdates":
            self.get_updates_calls += 1
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        call = Call(method, params, time.perf_counter())
        try:
            failures = self._failures.get(method)
            if failures:
                failure = failures[0]
                failure.times -= 1
                if failure.times <= 0:
                    failures.pop(0)
                raise ApiError(failure.status, failure.description, failure.parameters)
            handler = getattr(self, f"_api_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            call.result = handler(params)
            body: dict[str, Any] = {"ok": True, "result": call.result}
            status = 200
        except ApiError as exc:
            call.error = exc.description
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            status = exc.code
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if call.error is None:
            for future in self._next.pop((method, call.chat_id), ()):
                if not future.done():
                    future.set_result(call)
        return web.json_response(body, status=status)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict]:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        batch = self._updates[:limit]
        now = time.perf_counter()
        for update in batch:
            self.delivered_at.setdefault(update["update_id"], now)
        return batch

    # -- methods ---------------------------------------------------------------------

    def _chat_of(self, params: dict) -> dict:
        chat_id = params.get("chat_id")
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chats[chat_id]

    def _check_markup(self, params: dict) -> None:
        for row in (params.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _render(self, params: dict) -> tuple[str, list[dict]]:
        text = params.get("text", "")
        if params.get("parse_mode") == "HTML":
            text, entities = parse_html(text)
        else:
            entities = params.get("entities") or []
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return text, entities

    def _new_bot_message(self, params: dict, **content: Any) -> dict:
        chat = self._chat_of(params)
        message_id = next(self._message_ids[chat["id"]])
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": self.bot_user,
                   **content}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        reply_to = (params.get("reply_parameters") or {}).get("message_id")
        if reply_to and (chat["id"], reply_to) in self._messages:
            message["reply_to_message"] = self._messages[(chat["id"], reply_to)]
        self._messages[(chat["id"], message_id)] = message
        return message

    def _api_getme(self, params: dict) -> dict:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": True}

    def _api_sendmessage(self, params: dict) -> dict:
        self._check_markup(params)
        text, entities = self._render(params)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._new_bot_message(params, **content)

    def _api_editmessagetext(self, params: dict) -> dict | bool:
        self._check_markup(params)
        text, entities = self._render(params)
        if "inline_message_id" in params:
            return True
        key = (params.get("chat_id"), params.get("message_id"))
        if key not in self._messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        old = self._messages[key]
        if old.get("text") == text and old.get("reply_markup") == params.get("reply_markup") \
                and old.get("entities", []) == entities:
            raise ApiError(400, "Bad Request: message is not modified")
        new = {**old, "text": text, "edit_date": int(time.time())}
        new.pop("entities", None)
        new.pop("reply_markup", None)
        if entities:
            new["entities"] = entities
        if params.get("reply_markup"):
            new["reply_markup"] = params["reply_markup"]
        self._messages[key] = new
        return new

    def _api_editmessagereplymarkup(self, params: dict) -> dict:
        key = (params.get("chat_id"), params.get("message_id"))
        if key not in self._messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        new = {**self._messages[key]}
        new.pop("reply_markup", None)
        if params.get("reply_markup"):
            new["reply_markup"] = params["reply_markup"]
        self._messages[key] = new
        return new

    def _api_senddocument(self, params: dict) -> dict:
        document = params.get("document")
        name = document.get("filename") if isinstance(document, dict) else "file"
        return self._new_bot_message(params, document={"file_id": "doc-file", "file_unique_id": "doc-u",
                                                       "file_name": name})

    def _api_sendchataction(self, params: dict) -> bool:
        self._chat_of(params)
        return True

    def _api_answercallbackquery(self, params: dict) -> bool:
        return True

    def _api_answerinlinequery(self, params: dict) -> bool:
        results = params.get("results") or []
        ids = [r.get("id", "") for r in results]
        if len(ids) != len(set(ids)) or any(not 1 <= len(i.encode()) <= 64 for i in ids) or len(results) > 50:
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        for result in results:
            content = result.get("input_message_content") or {}
            if content.get("parse_mode") == "HTML":
                parse_html(content.get("message_text", ""))
        return True

    def _api_setmycommands(self, params: dict) -> bool:
        return True

    def _api_getmycommands(self, params: dict) -> list:
        sets = self.calls_to("setMyCommands")
        return sets[-1].params.get("commands", []) if sets else []

    def _api_deletewebhook(self, params: dict) -> bool:
        return True

    def _api_setwebhook(self, params: dict) -> bool:
        return True

    def _api_deletemessage(self, params: dict) -> bool:
        return True

    def _api_close(self, params: dict) -> bool:
        return True
