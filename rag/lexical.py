"""BM25 over the passages, with tokenisation that works for every corpus language.

- Unicode NFKC and case folding.
- Arabic: diacritics and tatweel removed; alef forms (أ إ آ ٱ) -> ا, ى -> ي,
  ة -> ه, ؤ -> و, ئ -> ي; the article and its common clitics (ال، وال، بال، كال، فال،
  لل) stripped from words long enough to keep a stem.
- Chinese (and other CJK ideographs): overlapping character bigrams.
- Numbers kept whole ("600,000" -> "600000", "1.5" stays), Latin-script names and
  model names kept whole as letters-and-digits runs ("DeepSeek", "v3", "h800").
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np

_AR_DIACRITICS = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0640]")
_AR_MAP = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
)
_AR_PREFIX = re.compile(r"^(?:وال|بال|كال|فال|لل|ال)(?=\S{3,})")
_CJK = r"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"
_TOKEN = re.compile(
    rf"(?P<num>\d+(?:[.,]\d+)*)|(?P<cjk>[{_CJK}]+)|(?P<word>[^\W\d_{_CJK}](?:[^\W_{_CJK}])*)"
)
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")
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


def normalize_arabic(text: str) -> str:
    return _AR_DIACRITICS.sub("", text).translate(_AR_MAP)


def tokenize(text: str) -> list[str]:
    """Search tokens of ``text`` (see the module docstring for the rules)."""
    text = normalize_arabic(unicodedata.normalize("NFKC", text).casefold())
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "num":
            num = match.group()
            tokens.append(re.sub(r"[.,]", "", num) if _THOUSANDS.fullmatch(num) else num)
        elif match.lastgroup == "cjk":
            run = match.group()
            tokens.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            word = match.group()
            if _ARABIC_LETTER.match(word):
                word = _AR_PREFIX.sub("", word)
            tokens.append(word)
    return tokens


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
            tokens = tokenize(text) or [_EMPTY]
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
        folder.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.txt").write_text("\n".join(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
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

    def scores(self, query: str | Sequence[str]) -> np.ndarray:
        """BM25 score of every passage (in ``ids`` order) for ``query`` (a text, or
        its tokens when the caller has them already)."""
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        if not tokens or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str | Sequence[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best passages with a positive score, best first."""
        return best(self.ids, self.scores(query), k)
