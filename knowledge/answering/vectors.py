"""Embedding vectors cached in SQLite by content hash.

A vector's key is a hash of the model's name, its role (query or passage) and
the text, so a restart, a rebuilt index or a /reload embeds only the texts
that are new; changing the model never reuses an old vector. The table lives in
a cache database shared by every index on the machine (`default_cache_path`),
else in the index database itself. A small in-process cache sits in front, so
several assistants in one process (tests, /reload) share work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import sqlite_utils

from knowledge.answering.embedding import Embedder

log = logging.getLogger(__name__)

TABLE = "vectors"
_memory: dict[str, bytes] = {}


def default_cache_path() -> Path:
    """PILOT_VECTOR_CACHE, else the user's cache directory: shared by every index and
    process on the machine, so a fresh data directory (tests, a second deployment) does not
    re-embed texts another one already embedded."""
    configured = os.environ.get("PILOT_VECTOR_CACHE", "").strip()
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "pilot-assistant" / "vectors.db"


_open: dict[Path, sqlite_utils.Database] = {}


def open_cache(fallback: sqlite_utils.Database | None) -> sqlite_utils.Database | None:
    """The shared vector cache database, or `fallback` (the index db) where it cannot be opened.
    One connection per path and process: every /reload or accepted phrasing reuses it."""
    path = default_cache_path()
    if path in _open:
        return _open[path]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(sqlite3.connect(path, timeout=30, check_same_thread=False))
        db.execute("pragma journal_mode=wal")
        db[TABLE].create({"key": str, "vector": bytes}, pk="key", if_not_exists=True)
        _open[path] = db
        return db
    except (OSError, sqlite3.Error) as exc:
        log.warning("vector cache %s unavailable (%s); caching in the index instead", path, exc)
        return fallback


def vector_key(embedder: Embedder, text: str, *, query: bool) -> str:
    role = "q" if query else "p"
    return hashlib.sha1(f"{embedder.name}\0{role}\0{text}".encode()).hexdigest()


class VectorCache:
    def __init__(self, db: sqlite_utils.Database | None, embedder: Embedder) -> None:
        self.db = db
        self.embedder = embedder

    def passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for stored texts (phrasings, answers)."""
        return self._vectors(texts, query=False)

    def queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for stored questions (labelled examples), embedded as queries."""
        return self._vectors(texts, query=True)

    def _vectors(self, texts: list[str], *, query: bool, batch: int = 64) -> np.ndarray:
        """Only texts never seen before are embedded."""
        keys = [vector_key(self.embedder, t, query=query) for t in texts]
        found = self._lookup(keys)
        first_of = {}
        for i, k in enumerate(keys):
            if k not in found:
                first_of.setdefault(k, i)
        missing = list(first_of.values())
        if missing:
            log.info("embedding %d new texts (%d cached)", len(missing), len(texts) - len(missing))
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            vectors = self.embedder.embed([texts[i] for i in chunk], query=query)
            rows = []
            for i, vector in zip(chunk, vectors, strict=True):
                blob = vector.astype(np.float32).tobytes()
                found[keys[i]] = blob
                rows.append({"key": keys[i], "vector": blob})
            # Stored chunk by chunk: an embedding run cut short keeps what it did.
            _memory.update((r["key"], r["vector"]) for r in rows)
            self._store(rows)
        out = np.empty((len(texts), self.embedder.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = np.frombuffer(found[key], dtype=np.float32)
        return out

    def _lookup(self, keys: list[str]) -> dict[str, bytes]:
        found = {k: _memory[k] for k in keys if k in _memory}
        wanted = [k for k in keys if k not in found]
        if wanted and self.db is not None and TABLE in self.db.table_names():
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in self.db.execute(f"select key, vector from {TABLE} where key in ({marks})", chunk):
                    found[key] = blob
                    _memory[key] = blob
        return found

    def _store(self, rows: list[dict]) -> None:
        if self.db is None:
            return
        try:
            self.db[TABLE].insert_all(rows, pk="key", replace=True, batch_size=500)
        except Exception as exc:  # a read-only or full disk costs a re-embed next start, never an answer
            log.warning("could not cache %d vectors: %s", len(rows), exc)
