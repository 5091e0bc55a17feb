"""Word segmentation with jieba, on a dictionary made from the knowledge base.

The dictionary holds only words that occur in the knowledge base (plus its
terms and synonyms), so it loads in milliseconds; a word the knowledge base
never uses falls apart into single characters, which is exactly what the
matcher needs to notice that a question is about something else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import jieba

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w%]+")
# Latin letters are cut out before jieba, which would otherwise find "it" in "hospital".
_LATIN = re.compile(r"([a-z]+)")
# Frequency given to the knowledge base's own terms so they always stay whole.
TERM_FREQ = 100_000


def make_tokenizer(word_freqs: dict[str, int]) -> jieba.Tokenizer:
    """A jieba Tokenizer on exactly these words, without touching jieba's big dictionary."""
    tokenizer = jieba.Tokenizer()
    freq: dict[str, int] = {}
    total = 0
    for word, count in word_freqs.items():
        freq[word] = count
        total += count
        for end in range(1, len(word)):
            freq.setdefault(word[:end], 0)
    tokenizer.FREQ, tokenizer.total = freq, max(total, 1)
    tokenizer.initialized = True
    return tokenizer


class Segmenter:
    """Text (already normalised) -> content tokens: canonical synonyms, no stopwords."""

    def __init__(self, word_freqs: dict[str, int], canonical: dict[str, str], stopwords: Iterable[str]) -> None:
        self._tokenizer = make_tokenizer(word_freqs)
        self._canonical = canonical
        self._stopwords = frozenset(stopwords)

    def words(self, text: str) -> list[str]:
        """Every segment that is a word (punctuation and spaces dropped)."""
        out = []
        for n, piece in enumerate(_LATIN.split(text)):
            if n % 2:
                out.append(piece)
            elif piece:
                out += [w for w in self._tokenizer.lcut(piece, HMM=False) if _WORD.fullmatch(w)]
        return out

    def tokens(self, text: str) -> list[str]:
        out = []
        for word in self.words(text):
            word = self._canonical.get(word, word)
            if word not in self._stopwords:
                out.append(word)
        return out


def canonical_map(groups: Iterable[Iterable[str]]) -> dict[str, str]:
    """variant -> canonical (the first word of its synonym group)."""
    mapping: dict[str, str] = {}
    for group in groups:
        group = list(group)
        for variant in group[1:]:
            mapping[variant] = group[0]
    return mapping
