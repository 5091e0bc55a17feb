"""The search index: SQLite (through sqlite-utils), rebuilt when the YAML changes.

What is stored: the segmenter's dictionary, one row per searchable text
(canonical question, phrasings, answer) with its tokens in a full-text table,
and a weight per token. The index remembers the content hash of the YAML it
was built from; opening it with different YAML rebuilds it, never by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import jieba
import sqlite_utils

from knowledge.answering.normalise import Normaliser, phrase_rewrites
from knowledge.answering.segment import TERM_FREQ, Segmenter, canonical_map
from knowledge.answering.typos import PinyinCorrector, pinyin_table, word_sounds
from knowledge.loader import KnowledgeBase

# Bump when the way texts are tokenised or weighted changes: old indexes rebuild.
INDEX_VERSION = "6"
# A word is "rare" (used in full-text retrieval) when at most this many entries,
# or this share of them, use it; with none rare, the heaviest few are used.
RARE_ENTRIES = 20
RARE_SHARE = 0.01
FALLBACK_WORDS = 3
RANK_ALL_BELOW = 10_000  # docs
QUESTION_WORDS = ("几", "多少", "哪些", "哪个", "哪里", "哪儿", "谁", "什么时候", "何时", "多久", "多长",
                  "几个", "几份", "几年", "能不能", "可不可以", "要不要", "是否", "怎么", "如何")


@dataclass(frozen=True)
class Doc:
    entry_id: str
    kind: str  # question | phrasing | answer
    tokens: frozenset[str]
    joined: str  # the content tokens run together, for character-level fuzzy matching
    weight: float  # the sum of its tokens' weights


class Index:
    """An open index: segmenter, token weights and the docs, ready for search."""

    def __init__(self, db: sqlite_utils.Database, kb: KnowledgeBase) -> None:
        self.db = db
        self.kb = kb
        vocab = kb.vocabulary
        self.normalise = Normaliser(phrase_rewrites(vocab.misspellings, vocab.synonyms))
        word_freqs = {r["word"]: r["freq"] for r in db["words"].rows}
        self.segmenter = Segmenter(word_freqs, canonical_map(vocab.synonyms), vocab.stopwords)
        known_chars = {c for w in word_freqs for c in w}
        self.typos = PinyinCorrector(((r["word"], r["sound"]) for r in db["word_sounds"].rows), self._char_pinyin,
                                     known_words=word_freqs, known_chars=known_chars)
        self.weights: dict[str, float] = {r["token"]: r["weight"] for r in db["weights"].rows}
        self.unknown_weight = max(self.weights.values(), default=1.0)
        # Only words that few entries use go into the full-text query: a word in
        # every other entry would make SQLite rank thousands of rows for nothing.
        # Such words still count when candidates are scored.
        entries = db.execute("select count(distinct entry_id) from docs").fetchone()[0]
        self.doc_rows = db["docs"].count
        self.rare_weight = math.log(1 + entries / max(RARE_ENTRIES, entries * RARE_SHARE))

    @classmethod
    def open(cls, path: str | Path, kb: KnowledgeBase) -> Index:
        """Open the index at path, rebuilding it first if it is missing or stale."""
        if str(path) == ":memory:":
            db = sqlite_utils.Database(memory=True)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite_utils.Database(path)
        try:
            if not is_current(db, kb):
                build(db, kb)
            return cls(db, kb)
        except sqlite3.DatabaseError as exc:  # derived data: a damaged file is rebuilt, not fatal
            if str(path) == ":memory:":
                raise
            logging.getLogger(__name__).warning("index %s is damaged (%s): deleting and rebuilding it", path, exc)
            db.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            db = sqlite_utils.Database(path)
            build(db, kb)
            return cls(db, kb)

    def refresh(self, kb: KnowledgeBase) -> None:
        """Serve `kb` from now on. When it only adds phrasings to existing entries (what staff
        accept from the log), those rows are inserted in place; any other change rebuilds."""
        if is_current(self.db, kb):
            self.kb = kb
            return
        added = _added_phrasings(self.kb, kb)
        if added is None:
            build(self.db, kb)
            self.__init__(self.db, kb)
            return
        n = max(len(self.kb.entries), 1)
        rows = []
        for entry_id, text in added:
            tokens = self.segmenter.tokens(self.normalise(text))
            if tokens:
                weight = sum(self.weights.get(t, math.log(1 + n)) for t in set(tokens))
                rows.append({"entry_id": entry_id, "kind": "phrasing", "text": text, "tokens": " ".join(tokens),
                             "weight": weight})
        with self.db.conn:
            start = self.db.execute("select coalesce(max(id), 0) from docs").fetchone()[0]
            for offset, row in enumerate(rows, 1):
                row["id"] = start + offset
            self.db["docs"].insert_all(rows, pk="id")
            self.db.conn.executemany("insert into docs_fts (rowid, tokens) values (?, ?)",
                                     [(r["id"], r["tokens"]) for r in rows])
            self.db["index_meta"].upsert({"key": "content", "value": content_key(kb)}, pk="key")
        self.doc_rows += len(rows)
        self.kb = kb

    def _char_pinyin(self, ch: str) -> str | None:
        row = self.db.execute("select pinyin from char_pinyin where ch = ?", [ch]).fetchone()
        return row[0] if row else None

    def tokens(self, text: str) -> list[str]:
        return self.segmenter.tokens(self.model_text(text))

    def model_text(self, text: str) -> str:
        """The text with its homophone typos corrected: what the tokeniser and the semantic
        model both see, so "法仁资格" means 法人资格 to the embedding too."""
        return self.typos.correct(self.normalise(text))

    def weight(self, token: str) -> float:
        weight = self.weights.get(token)
        if weight is not None:
            return weight
        # A word the knowledge base never uses: heavy if it is a real word,
        # lighter for a stray single character (often colloquial filler).
        return self.unknown_weight if len(token) > 1 else self.unknown_weight * 0.5

    def candidates(self, tokens: list[str], limit: int = 60) -> list[Doc]:
        """Docs sharing rare-enough words with the question, best (BM25) first."""
        known = sorted((t for t in dict.fromkeys(tokens) if t in self.weights), key=self.weights.get, reverse=True)
        if not known:
            return []
        rare = [t for t in known if self.weights[t] >= self.rare_weight]
        # With only common words, BM25 would rank tens of thousands of rows on a
        # large base, and no candidate could be confident anyway: there, take the
        # first matches. A small base is cheap to rank whatever the words.
        order = "order by docs_fts.rank" if rare or self.doc_rows <= RANK_ALL_BELOW else ""
        words = rare or known[:FALLBACK_WORDS]
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in words)
        rows = self.db.execute(
            "select d.entry_id, d.kind, d.tokens, d.weight from docs_fts join docs d on d.id = docs_fts.rowid "
            f"where docs_fts match ? {order} limit ?", [query, limit]
        ).fetchall()
        return [Doc(entry_id, kind, frozenset(words.split()), words.replace(" ", ""), weight)
                for entry_id, kind, words, weight in rows]


def _added_phrasings(old: KnowledgeBase, new: KnowledgeBase) -> list[tuple[str, str]] | None:
    """(entry id, phrasing) for each phrasing `new` adds, when that is all that changed; else None."""
    if (old.entries.keys() != new.entries.keys() or old.vocabulary != new.vocabulary
            or old.clauses != new.clauses):
        return None
    added = []
    for entry_id, before in old.entries.items():
        after = new.entries[entry_id]
        if dataclasses.replace(after, phrasings=before.phrasings) != before:
            return None
        if not set(before.phrasings) <= set(after.phrasings):
            return None
        added += [(entry_id, p) for p in after.phrasings if p not in before.phrasings]
    return added


def content_key(kb: KnowledgeBase) -> str:
    return f"{INDEX_VERSION}:{kb.content_hash}"


def is_current(db: sqlite_utils.Database, kb: KnowledgeBase) -> bool:
    if "index_meta" not in db.table_names() or "docs_fts" not in db.table_names():
        return False
    try:
        row = db["index_meta"].get("content")
    except sqlite_utils.db.NotFoundError:
        return False
    return row["value"] == content_key(kb)


def _kb_texts(kb: KnowledgeBase) -> list[str]:
    texts = []
    for e in kb.entries.values():
        texts += [e.question, *e.phrasings, e.answer]
    texts += [c.title + c.text for c in kb.clauses.values()]
    return texts


def dictionary_words(kb: KnowledgeBase, normalise: Normaliser) -> dict[str, int]:
    """jieba's own words that occur in the knowledge base, plus its terms and synonyms."""
    texts = [normalise(t) for t in _kb_texts(kb)]
    substrings: set[str] = set()
    for text in texts:
        for size in range(2, 7):
            substrings.update(text[i:i + size] for i in range(len(text) - size + 1))
    words: dict[str, int] = {}
    with jieba.get_dict_file() as fh:
        for line in fh:
            parts = line.decode("utf-8").split(" ")
            if len(parts) >= 2 and parts[0] in substrings:
                words[parts[0]] = int(parts[1])
    vocab = kb.vocabulary
    own = list(vocab.terms) + list(vocab.stopwords) + list(vocab.misspellings.values()) + list(QUESTION_WORDS)
    for group in vocab.synonyms:
        own += [w for w in group if " " not in w]
    for word in own:
        word = normalise(word)
        if word:
            words[word] = max(words.get(word, 0), TERM_FREQ)
    return words


def correction_targets(kb: KnowledgeBase, normalise: Normaliser) -> set[str]:
    """The words a typo may be corrected towards: the knowledge base's own terms and
    synonyms, never just any word that happens to occur in its text."""
    vocab = kb.vocabulary
    words = list(vocab.terms) + list(vocab.misspellings.values())
    for group in vocab.synonyms:
        words += [w for w in group if " " not in w]
    return {normalise(w) for w in words if normalise(w)}


def build(db: sqlite_utils.Database, kb: KnowledgeBase) -> None:
    """(Re)create every index table from the knowledge base.

    The content key is written last, so an interrupted build is simply
    rebuilt at the next start."""
    vocab = kb.vocabulary
    normalise = Normaliser(phrase_rewrites(vocab.misspellings, vocab.synonyms))
    words = dictionary_words(kb, normalise)
    segmenter = Segmenter(words, canonical_map(vocab.synonyms), vocab.stopwords)

    rows = []
    entry_tokens: dict[str, set[str]] = defaultdict(set)
    for entry in kb.entries.values():
        texts = [("question", entry.question)] + [("phrasing", p) for p in entry.phrasings]
        texts.append(("answer", entry.answer))
        for kind, text in texts:
            tokens = segmenter.tokens(normalise(text))
            if not tokens:
                continue
            rows.append({"entry_id": entry.id, "kind": kind, "text": text, "tokens": " ".join(tokens)})
            if kind != "answer":
                entry_tokens[entry.id].update(tokens)
    # Weight = inverse entry frequency over questions and phrasings: a word
    # that names one topic counts for much more than one that is everywhere.
    df = Counter(t for tokens in entry_tokens.values() for t in tokens)
    n = max(len(entry_tokens), 1)
    weights = {t: math.log(1 + n / c) for t, c in df.items()}
    for row in rows:  # answer-only words still need a weight
        for t in row["tokens"].split():
            weights.setdefault(t, math.log(1 + n))
    for row in rows:
        row["weight"] = sum(weights[t] for t in set(row["tokens"].split()))

    pinyin_of = dict(pinyin_table())
    sounds = list(word_sounds(correction_targets(kb, normalise), pinyin_of))

    for table_name in ("index_meta", "docs_fts", "docs", "words", "weights", "word_sounds", "char_pinyin"):
        if table_name in db.table_names():
            db[table_name].drop()
    for name in [t for t in db.table_names() if t.startswith("docs_fts_")]:
        db[name].drop(ignore=True)
    db["words"].insert_all(({"word": w, "freq": f} for w, f in words.items()), pk="word", batch_size=5000)
    db["weights"].insert_all(({"token": t, "weight": w} for t, w in weights.items()), pk="token",
                             batch_size=5000)
    db["word_sounds"].insert_all(({"word": w, "sound": s} for w, s in sounds), pk="word", batch_size=5000)
    db["char_pinyin"].insert_all(({"ch": c, "pinyin": p} for c, p in pinyin_of.items()), pk="ch", batch_size=10000)
    db["docs"].insert_all(rows, pk="id", batch_size=5000,
                          columns={"id": int, "entry_id": str, "kind": str, "text": str, "tokens": str,
                                   "weight": float})
    db["docs"].enable_fts(["tokens"], fts_version="FTS5", tokenize="unicode61", create_triggers=False)
    db["docs"].populate_fts(["tokens"])
    db["index_meta"].insert({"key": "content", "value": content_key(kb)}, pk="key")
