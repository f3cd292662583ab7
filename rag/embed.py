"""Offline semantic similarity: WordLlama's static token embeddings, loaded from the installed package.

``wordllama`` (MIT, by its author on PyPI) ships its 256-dimension weights and tokenizer inside its
wheel (``weights/l2_supercat_256.safetensors``, ``tokenizers/l2_supercat_tokenizer_config.json``). We
read those two files directly with ``safetensors`` and ``tokenizers`` and average-pool token vectors
as WordLlama does: nothing is downloaded, ever (its own loader looks for the tokenizer in the wrong
folder and would then try the network), and importing wordllama's modules (which configure the root
logger) is avoided. A text costs one tokenizer call and a numpy mean: about 30 µs.

Used for a second retrieval channel (chunk vectors stored at index time) and for sentence selection
(question/sentence similarity and soft word matches: "expand" ~ "extend").
"""

from __future__ import annotations

import importlib.util
import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ConfigError

DIM = 256
MODEL = "wordllama-l2-supercat-256"
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
# The tokenizer (a SentencePiece-style BPE) turns spaces into "▁" and merges over the whole text, which
# costs ~0.25 ms per chunk. No token of its vocabulary has "▁" after another character (checked when
# loading), so no merge crosses the start of a "▁" run: the pieces below tokenize independently, to the
# same ids, and are cached.
_PIECE = re.compile("\u2581*[^\u2581]+|\u2581+")
_CACHE_PIECES = 1 << 18


class Embedder:
    """Unit-length text vectors (float32, ``DIM`` wide); similar texts have a high dot product."""

    def __init__(self, root: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        weights, tokenizer = root / _WEIGHTS, root / _TOKENIZER
        if not weights.is_file() or not tokenizer.is_file():
            raise ConfigError(f"the wordllama package at {root} lacks its bundled model files",
                              hint="pip install --force-reinstall 'wordllama>=0.4'")
        with safe_open(str(weights), framework="np") as f:
            self.table = np.ascontiguousarray(f.get_tensor("embedding.weight").astype(np.float32))
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._lock = threading.Lock()
        self._pieces: dict[str, list[int]] | None = {} if self._pieces_are_independent() else None

    def _pieces_are_independent(self) -> bool:
        import json

        config = json.loads(self.tokenizer.to_str())
        normalizers = (config.get("normalizer") or {}).get("normalizers") or []
        expected = [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]
        if config.get("pre_tokenizer") is not None or normalizers != expected or (config.get("model") or {}).get("type") != "BPE":
            return False
        return not any(re.search("[^\u2581]\u2581", token) for token in self.tokenizer.get_vocab())

    def token_ids(self, text: str) -> list[int]:
        """The tokenizer's ids for ``text`` (the same as ``tokenizer.encode``), from cached pieces."""
        if self._pieces is None or not text:
            return self.tokenizer.encode(text, add_special_tokens=False).ids if text else []
        cache = self._pieces
        ids: list[int] = []
        for piece in _PIECE.findall("\u2581" + text.replace(" ", "\u2581")):
            got = cache.get(piece)
            if got is None:
                got = [t.id for t in self.tokenizer.model.tokenize(piece)]
                if len(cache) >= _CACHE_PIECES:
                    cache.clear()
                cache[piece] = got
            ids.extend(got)
        return ids

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text; an empty text gets a zero row."""
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        if not texts:
            return out
        with self._lock:  # the piece cache is shared
            encodings = [self.token_ids(t) for t in texts]
        for i, ids in enumerate(encodings):
            if ids:
                out[i] = self.table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ConfigError("the offline embedding model is not installed", hint="pip install 'wordllama>=0.4'")
    return Embedder(Path(spec.origin).parent)


@lru_cache(maxsize=1 << 15)
def word_vector(word: str) -> np.ndarray:
    return get_embedder().embed_one(word.lower())


@lru_cache(maxsize=1 << 16)
def word_similarity(a: str, b: str) -> float:
    """Cosine similarity of two single words (cached: vocabularies are small)."""
    if a == b:
        return 1.0
    return float(word_vector(a) @ word_vector(b))


def to_blob(vectors: np.ndarray) -> bytes:
    """Vectors as float16 bytes for the index (half the size; ranking is unchanged at this precision)."""
    return np.asarray(vectors, dtype=np.float16).tobytes()


def from_blob(blob: bytes, rows: int | None = None) -> np.ndarray:
    array = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
    return array.reshape(-1 if rows is None else rows, DIM)
