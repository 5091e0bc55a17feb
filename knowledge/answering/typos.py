"""Homophone typos and pinyin typed as letters, corrected against the knowledge base's words.

Pinyin input methods make typos that sound right and look wrong (申抱 for
申报, 资革 for 资格, 覆盖律 for 覆盖率); some people type the pinyin itself
(shidian). A stretch of the question that is not a known word but sounds
exactly like one and differs from it in one character only, is replaced by
that word (when exactly one term fits). Pinyin is per character (first reading, no tones),
the same way on both sides, so polyphones cannot make the two disagree.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache

MIN_WORD, MAX_WORD = 2, 5


def toneless(reading: str) -> str:
    """"lǜ" -> "lv", "xíng" -> "xing"."""
    reading = reading.replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v").replace("ǚ", "v").replace("ǜ", "v")
    return "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))


def word_sounds(words: Iterable[str], table: dict[str, str]) -> Iterable[tuple[str, str]]:
    """(word, its per-character pinyin) for the Chinese words worth correcting towards."""
    for word in words:
        if MIN_WORD <= len(word) <= MAX_WORD and all(c in table for c in word):
            yield word, " ".join(table[c] for c in word)


def pinyin_table() -> Iterable[tuple[str, str]]:
    """(character, toneless first reading) for every character pypinyin knows; used at index build."""
    from pypinyin.pinyin_dict import pinyin_dict

    for code, readings in pinyin_dict.items():
        yield chr(code), toneless(readings.split(",")[0])


class PinyinCorrector:
    """word_sounds: (word, space-joined toneless pinyin) of the words worth correcting
    towards (the knowledge base's terms and synonyms); known_words: every word of the
    knowledge base, kept whole; known_chars: every character the knowledge base uses.
    char_pinyin looks up one character's toneless pinyin (None when unknown).

    A stretch is corrected only when it holds a character the knowledge base never
    uses: 申抱 (抱 is foreign to the notice) is a typo, 是事业 is just Chinese."""

    def __init__(self, word_sounds: Iterable[tuple[str, str]], char_pinyin: Callable[[str], str | None],
                 known_words: Iterable[str] = (), known_chars: Iterable[str] = ()) -> None:
        self._lookup = lru_cache(maxsize=8192)(char_pinyin)
        self._known: set[str] = set(known_words)
        self._chars = frozenset(known_chars)
        self._by_sound: dict[tuple[str, ...], list[str]] = {}
        self._by_letters: dict[str, str] = {}
        for word, sound in word_sounds:
            key = tuple(sound.split())
            self._known.add(word)
            self._by_sound.setdefault(key, []).append(word)
            self._by_letters.setdefault("".join(key), word)

    def _sound(self, text: str) -> tuple[str, ...] | None:
        sound = []
        for ch in text:
            reading = self._lookup(ch)
            if not reading:
                return None
            sound.append(reading)
        return tuple(sound)

    def correct(self, text: str) -> str:
        text = self._letters(text)
        if self._chars.issuperset(text):
            return text  # only the knowledge base's characters (its own phrasings): nothing to correct
        foreign = [c not in self._chars for c in text]
        out, i = [], 0
        while i < len(text):
            found = None
            for size in range(MAX_WORD, MIN_WORD - 1, -1):
                window = text[i:i + size]
                if len(window) < size:
                    continue
                if window in self._known:
                    found = window  # a real word: keep it whole, never "correct" inside it
                    break
                if not any(foreign[i:i + size]):
                    continue
                sound = self._sound(window)
                if sound is None:
                    continue
                found = self._near_miss(window, sound)
                if found:
                    break
            if found:
                out.append(found)
                i += len(found)
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _near_miss(self, window: str, sound: tuple[str, ...]) -> str | None:
        """The one term that sounds like the window and differs from it in exactly one
        character. A window that sounds like two terms, or differs from a term in more
        than one character, is left alone: a guess could confirm the wrong term."""
        found = {w for w in self._by_sound.get(sound, ())
                 if sum(a != b for a, b in zip(w, window, strict=True)) == 1}
        return found.pop() if len(found) == 1 else None

    def _letters(self, text: str) -> str:
        """Latin runs that spell a known word's pinyin ("shidian") become the word."""
        if not any("a" <= c <= "z" for c in text):
            return text
        out, word = [], []
        for ch in text + "\0":
            if "a" <= ch <= "z":
                word.append(ch)
                continue
            if word:
                letters = "".join(word)
                out.append(self._by_letters.get(letters, letters))
                word = []
            out.append(ch)
        return "".join(out[:-1])
