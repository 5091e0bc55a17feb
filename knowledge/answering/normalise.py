"""Text normalisation: the same question, however it is typed, looks the same.

NFKC folds full-width forms, OpenCC turns traditional characters into
simplified ones, case is folded, punctuation is unified, and the knowledge
base's own misspellings and multi-word synonyms are rewritten.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import opencc

_T2S = opencc.OpenCC("t2s")
# Sentence-ending and separating punctuation becomes one of a few ASCII marks,
# which the multi-question splitter and the tokenizer both understand.
_PUNCT = str.maketrans({
    "？": "?", "！": "!", "。": ".", "，": ",", "、": ",", "；": ";", "：": ":",
    "“": " ", "”": " ", "‘": " ", "’": " ", "「": " ", "」": " ", "『": " ", "』": " ",
    "《": " ", "》": " ", "（": "(", "）": ")", "【": " ", "】": " ", "〔": "(", "〕": ")",
    "～": "-", "~": "-", "—": "-", "–": "-", "－": "-", "…": " ", "·": " ", "\u3000": " ",
})
_SPACES = re.compile(r"\s+")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
_REPEATED_PUNCT = re.compile(r"([?!.,;:])\1+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\ufeff]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]")


# A lone UTF-16 surrogate (raw JSON "\ud800") is not a character: OpenCC and SQLite
# cannot encode it, so it is dropped before anything else sees the text.
_SURROGATE = re.compile("[\ud800-\udfff]")


def sanitise(text: str) -> str:
    return _SURROGATE.sub("", text)


def to_simplified(text: str) -> str:
    return _T2S.convert(sanitise(text))


def basic_normalise(text: str) -> str:
    """NFKC, simplified characters, folded case, unified punctuation and spacing."""
    text = unicodedata.normalize("NFKC", sanitise(str(text)))
    text = _CONTROL.sub("", text)
    text = to_simplified(text).casefold().translate(_PUNCT)
    text = _EMOJI.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    return _CJK_GAP.sub("", text)


class Normaliser:
    """basic_normalise plus the knowledge base's rewrites (misspellings, phrases)."""

    def __init__(self, rewrites: dict[str, str] | None = None) -> None:
        cleaned = {basic_normalise(k): v for k, v in (rewrites or {}).items() if basic_normalise(k)}
        # Longest first, so "联席会义办公室" wins over "联席会义"; one pass, so a
        # replacement is never rewritten again.
        keys = sorted(cleaned, key=len, reverse=True)
        self._rewrites = cleaned
        self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else None

    def __call__(self, text: str) -> str:
        text = basic_normalise(text)
        if self._pattern is not None:
            text = _CJK_GAP.sub("", self._pattern.sub(lambda m: self._rewrites[m.group(0)], text))
        return text


def phrase_rewrites(misspellings: dict[str, str], synonym_groups: Iterable[Iterable[str]]) -> dict[str, str]:
    """Misspellings, plus synonym variants with a space in them ("application form"),
    which the word segmenter could not keep whole."""
    rewrites = dict(misspellings)
    for group in synonym_groups:
        group = list(group)
        for variant in group[1:]:
            if " " in variant.strip():
                rewrites[variant] = group[0]
    return rewrites
