"""BM25 over the passages, on the search tokens of rag/text/segment.py (``tokens``:
ICU words normalised, numbers and product codes in one form, Arabic articles stripped,
Chinese and Japanese words and bigrams), so it works for every corpus language.
Passages are indexed with both the folded and the exact form of a word whose
diacritics were folded (``forms="both"``); questions ask for the form they were typed
in (``forms="query"``): a Vietnamese question typed without tone marks finds the text
that has them, and one typed with them prefers the words that match them exactly.
(Measured on XQuAD vi->vi BM25 alone, hit@1 of the gold paragraph: folded only 0.873,
both forms 0.917 (0.918 before folding); with the questions' tone marks stripped
0.873, against 0.387 before folding.)"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np

from rag.text.segment import tokens as search_tokens

_EMPTY = "\u2205"
"""Placeholder token of a passage with no search tokens (bm25s needs one)."""


def best(ids: Sequence[str], scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` ids with the highest positive ``scores``, best first."""
    k = min(k, len(scores))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(ids[i], float(scores[i])) for i in top if scores[i] > 0]


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over passage texts, addressed by passage id."""

    def __init__(self, ids: Sequence[str], bm25: bm25s.BM25) -> None:
        self.ids = list(ids)
        self._bm25 = bm25
        self._frequencies: dict[str, int] | None = None

    @classmethod
    def build(
        cls, ids: Sequence[str], texts: Iterable[str], k1: float = 1.5, b: float = 0.75
    ) -> LexicalIndex:
        """BM25 (Lucene variant, bm25s' defaults) of ``texts``, built while streaming
        them: each passage keeps only its distinct token ids and counts in compact
        arrays, so a million passages never hold their token lists at once (bm25s'
        own ``index`` does, several GB at that size). The result is an ordinary
        ``bm25s.BM25`` object: searching, saving and loading are bm25s'."""
        vocab: dict[str, int] = {}
        token_ids, counts, distinct, lengths = array("i"), array("f"), array("i"), array("i")
        for text in texts:
            # bm25s cannot score a passage without tokens: give it a placeholder.
            tokens = search_tokens(text, forms="both") or [_EMPTY]
            tf = Counter(vocab.setdefault(token, len(vocab)) for token in tokens)
            token_ids.extend(tf.keys())
            counts.extend(tf.values())
            distinct.append(len(tf))
            lengths.append(len(tokens))
        n_docs, n_vocab = len(lengths), len(vocab)
        tok = np.frombuffer(token_ids, dtype=np.int32)
        per_doc = np.frombuffer(distinct, dtype=np.int32)
        doc_len = np.frombuffer(lengths, dtype=np.int32).astype(np.float32)
        df = np.bincount(tok, minlength=n_vocab)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(doc_len.mean()) if n_docs else 1.0
        norm = np.repeat((k1 * ((1 - b) + b * doc_len / avg)).astype(np.float32), per_doc)
        tf_arr = np.frombuffer(counts, dtype=np.float32)
        scores = idf[tok] * (tf_arr / (norm + tf_arr))
        del norm
        order = np.argsort(tok, kind="stable")  # by token, then passage: CSC columns
        docs = np.repeat(np.arange(n_docs, dtype=np.int32), per_doc)[order]
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.scores = {
            "data": scores[order],
            "indices": docs,
            "indptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int32),
            "num_docs": n_docs,
        }
        bm25.vocab_dict = {**vocab, "": n_vocab}
        bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
        bm25.nonoccurrence_array = None  # only BM25L and BM25+ use it
        return cls(ids, bm25)

    def save(self, folder: Path) -> None:
        """Write bm25s' files and ``ids.txt`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.txt").write_text("\n".join(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """The index ``save`` wrote into ``folder`` (OSError, ValueError when damaged)."""
        bm25 = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        ids = (folder / "ids.txt").read_text(encoding="utf-8").split("\n")
        return cls(ids, bm25)

    def document_frequencies(self) -> dict[str, int]:
        """How many passages contain each token (read off the BM25 matrix once; the
        retriever and the answerer both use it)."""
        if self._frequencies is None:
            counts = np.diff(self._bm25.scores["indptr"])
            self._frequencies = {
                token: int(counts[i])
                for token, i in self._bm25.vocab_dict.items()
                if token and token != _EMPTY and i < len(counts)
            }
        return self._frequencies

    def containing(self, tokens: Sequence[str]) -> list[str]:
        """Ids of the passages that hold every one of ``tokens`` (none when a token is
        in no passage), read off the BM25 matrix."""
        scores, vocab = self._bm25.scores, self._bm25.vocab_dict
        found: set[int] | None = None
        for token in tokens:
            column = vocab.get(token)
            if column is None or not token or column + 1 >= len(scores["indptr"]):
                return []
            start, end = scores["indptr"][column], scores["indptr"][column + 1]
            rows = {int(i) for i in scores["indices"][start:end]}
            found = rows if found is None else found & rows
            if not found:
                return []
        return [self.ids[i] for i in sorted(found or ())]

    def scores(self, query: str | Sequence[str]) -> np.ndarray:
        """BM25 score of every passage (in ``ids`` order) for ``query`` (a question,
        or its tokens when the caller has them already: ``tokens(question,
        forms="query")``)."""
        if isinstance(query, str):
            tokens = search_tokens(query, forms="query", known=self._bm25.vocab_dict)
        else:
            tokens = list(query)
        if not tokens or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str | Sequence[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best passages with a positive score, best first."""
        return best(self.ids, self.scores(query), k)
