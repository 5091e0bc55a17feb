"""Greetings, thanks and "what can you do": recognised, or peeled off a question."""

from __future__ import annotations

import re

from knowledge.answering.normalise import basic_normalise
from knowledge.loader import SmallTalk

_NOISE = re.compile(r"[\s?!.,;:()\-~]+")
_FILLER = ("呀", "啊", "哈", "呢", "吧", "哦", "噢", "嗯", "啦", "呐", "哇", "请问", "那个", "小助手", "助手", "机器人")


def _squash(text: str) -> str:
    return _NOISE.sub("", basic_normalise(text))


class SmallTalkDetector:
    def __init__(self, intents: tuple[SmallTalk, ...]) -> None:
        self._exact: dict[str, SmallTalk] = {}
        for intent in intents:
            for pattern in intent.patterns:
                self._exact[_squash(pattern)] = intent
        # Longest first, so "您好啊" is peeled whole rather than "您好" + "啊".
        self._greetings = sorted((p for p, i in self._exact.items() if i.id == "greeting"), key=len, reverse=True)
        self._thanks = sorted((p for p, i in self._exact.items() if i.id in ("thanks", "bye")),
                              key=len, reverse=True)

    def detect(self, text: str) -> SmallTalk | None:
        """The intent when the whole message is small talk, else None."""
        squashed = _squash(text)
        for _ in range(2):  # "你好啊" / "谢谢啦": drop one trailing filler and retry
            if squashed in self._exact:
                return self._exact[squashed]
            for filler in _FILLER:
                if squashed.endswith(filler) and len(squashed) > len(filler):
                    squashed = squashed[: -len(filler)]
                    break
        return self._exact.get(squashed)

    def strip(self, text: str) -> str:
        """The message without a leading greeting or trailing thanks ("你好，几号截止？谢谢")."""
        normal = basic_normalise(text)
        squashed_head = _NOISE.sub("", normal)
        for g in self._greetings:
            if squashed_head.startswith(g) and len(squashed_head) > len(g):
                normal = _drop_prefix(normal, g)
                break
        squashed_tail = _NOISE.sub("", normal)
        for t in self._thanks:
            if squashed_tail.endswith(t) and len(squashed_tail) > len(t):
                normal = _drop_suffix(normal, t)
                break
        return normal.strip(" ,.!?;:")


def _drop_prefix(text: str, squashed_prefix: str) -> str:
    """Remove squashed_prefix from the start of text, skipping noise characters."""
    i = j = 0
    while i < len(text) and j < len(squashed_prefix):
        if _NOISE.fullmatch(text[i]):
            i += 1
            continue
        i += 1
        j += 1
    return text[i:]


def _drop_suffix(text: str, squashed_suffix: str) -> str:
    i, j = len(text), len(squashed_suffix)
    while i > 0 and j > 0:
        if _NOISE.fullmatch(text[i - 1]):
            i -= 1
            continue
        i -= 1
        j -= 1
    return text[:i]
