"""`make fit`: fit the sentence scorer and the abstention rule on XQuAD and write
rag/query/answer_params.json and docs/fit.md (the cross-validated tables).

Data: XQuAD (RAG_XQUAD_DIR; 240 paragraphs, 1,190 questions, 48 articles, the same in
every language), paragraphs of en, ar, vi and zh each indexed as a corpus of their own
(var/fit/xquad/LANG, built from the embedding cache of RAG_CACHE_DIR when it has them).

Stages (each reruns only what is missing under var/fit; delete var/fit/rows after a
change to retrieval or scoring; ``--stage`` picks one):

- ``build``: the four corpus indexes, and the small corpora (one article's five
  paragraphs alone; its first paragraph alone) of every fourth article.
- ``rows``: for each question-language:paragraph-language pair (``PAIRS``), every
  question asked as the service asks it (rag/query/retriever.py ``Retriever.search``
  with the service's settings and the hand sentence scorer's rerank), three times:
  ``answerable``; ``removed``: its own paragraph's passages filtered out of the dense,
  BM25 and latent candidate lists before fusion (each list asked for as many more, so
  the others still bring 30): a near miss, the other paragraphs of its article remain;
  and ``off_topic``: its whole article filtered out likewise (the corpus does not speak
  of the subject; near misses alone teach the rule nothing about questions far from
  every sentence). Every candidate sentence (rag/query/sentences.py
  ``SentenceScorer.candidates``) becomes a row of ``SentenceScorer.columns``, labelled
  ``gold`` when it holds a gold answer of the paragraph language (normalised substring,
  as ``rag eval --xquad``) and ``gold_para`` when, also, it is in the question's own
  paragraph (the training label). Today's rule is run on the same search
  (rag/query/abstain.py with the hand scorer).
  Then the one-paragraph corpora (``run_paragraphs``, indexed in memory as the service
  reads a file): every paragraph alone, its questions ``answerable``; and, for each
  question, the paragraph with every sentence that holds its answer cut out (``cut``:
  a near miss of the kind a small corpus gives, where the rest of the paragraph still
  speaks of the subject but not of the asked attribute; left out when no sentence
  holds the answer alone, it spans two, or no sentence would remain). Answers are
  matched as ``gold`` is (a normalised substring: "10" is found in "2010").
- ``fit``: GroupKFold by article (5 folds; no article in two folds). In each fold, a
  logistic regression (scikit-learn, standardised features) of ``gold_para`` on the
  answerable questions' candidates of the training folds; then a question-level one
  (answerable vs removed and off-topic) on ``ABSTENTION_FEATURES``, over the training
  folds' sentence probabilities of that fold's sentence model, with the threshold at
  which 5% (and 10%) of the training folds' answerable questions abstain; both applied to
  the test fold. The file's models are then fitted on all folds the same way. The small
  and the one-paragraph corpora are only scored (by the fold model that did not see
  their article): fitted on the one-paragraph corpora too, the models moved along the
  same trade-off (one paragraph: false abstention 0.090 -> 0.065, cut abstained 0.397 ->
  0.341) and the threshold rose from 0.109 to 0.153, which abstained on a follow-up
  question of a three-file corpus that this fit answers.

Usage: python bench/fit_answer.py [--stage build|rows|fit] [--pairs en:en,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from rag.config import Settings
from rag.eval import xquad
from rag.index.build import build, in_memory
from rag.index.corpus import read_document
from rag.index.embedding import EmbeddingCache, load_embedding, model_id
from rag.index.reader import LoadedIndex, open_index
from rag.index.store import MemoryVectors, VectorStore
from rag.query.abstain import (
    ABSTENTION_FEATURES,
    HAND_THRESHOLD,
    Abstention,
    abstention_features,
    asks_quantity,
    states_quantity,
)
from rag.query.params import AnswerParams, Logistic
from rag.query.retriever import Retriever
from rag.query.sentences import SENTENCE_FEATURES, SentenceScorer, sentence_features
from rag.text.segment import segments
from rag.types import SearchResult

ROOT = Path(__file__).resolve().parent.parent
VAR = Path("var/fit")
OUT = ROOT / "rag" / "query" / "answer_params.json"
DOC = ROOT / "docs" / "fit.md"
LANGS = ("en", "ar", "vi", "zh")
PAIRS = ("en:en", "ar:ar", "vi:vi", "zh:zh", "en:ar", "en:vi", "en:zh", "ar:en", "zh:en")
SMALL_PAIRS = ("en:en", "ar:ar", "vi:vi", "zh:zh", "en:ar", "en:vi", "en:zh")
SMALL_ARTICLES = tuple(range(0, 48, 4))
"""12 of the 48 articles (every fourth) for the small corpora."""
FOLDS = 5
SEED = 0
TARGETS = ("0.05", "0.1")
TARGET = "0.05"
LEXICAL_WEIGHT = 0.08
"""Weight of the lexical share in ``max_support`` (the hand scorer's
``ScoringParams.lexical_weight``, kept: the abstention model weighs the sum)."""
C = 1.0
"""Inverse regularisation of both regressions (scikit-learn's default)."""


def settings() -> Settings:
    """The service's settings, with the fit's folders under var/fit."""
    return Settings(data_dir=VAR, cache_dir=Settings().cache_dir)  # the service's cache


# --- build ---------------------------------------------------------------------------


def corpus(name: str, paragraphs: list[xquad.Paragraph]) -> Settings:
    """Settings of corpus ``name`` (its paragraphs written once under var/fit/xquad),
    retrieving as the service does (``top_k``, ``candidates`` of Settings)."""
    base = settings()
    s = xquad.corpus_settings(base, name, paragraphs, None)
    return s.model_copy(update={"top_k": base.top_k, "candidates": base.candidates})


def small_corpora(lang: str) -> list[tuple[str, int, list[xquad.Paragraph]]]:
    """(name, article, paragraphs) of the small corpora of ``lang``: each article of
    ``SMALL_ARTICLES`` alone, and its first paragraph alone."""
    paragraphs, _ = xquad.load(settings().xquad_dir, lang)
    out = []
    for a in SMALL_ARTICLES:
        paras = [p for p in paragraphs if p.pid.startswith(f"p{a:02d}-")]
        out.append((f"small-{lang}-a{a:02d}", a, paras))
        out.append((f"small-{lang}-a{a:02d}-p0", a, paras[:1]))
    return out


def build_all(small: bool) -> None:
    for lang in LANGS:
        paragraphs, _ = xquad.load(settings().xquad_dir, lang)
        named = [(lang, paragraphs)]
        if small:
            named += [(name, paras) for name, _, paras in small_corpora(lang)]
        for name, paras in named:
            report = build(corpus(name, paras))
            if report.changed:
                print(name, report.summary(), flush=True)


# --- rows ----------------------------------------------------------------------------


class _Without:
    """A ranking (dense ``query``, BM25 or latent ``search``) with the passages of
    ``excluded`` filtered out, asked for ``extra`` more so ``k`` remain."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.excluded: set[str] = set()

    def _keep(self, found: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        return [(pid, s) for pid, s in found if pid not in self.excluded][:k]

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        return self._keep(self.inner.query(vector, k + len(self.excluded)), k)

    def search(self, query: Any, k: int) -> list[tuple[str, float]]:
        return self._keep(self.inner.search(query, k + len(self.excluded)), k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def exact(vectors: Any) -> Any:
    """The passage vectors of a Chroma store searched exactly (``MemoryVectors``, ids
    in sorted order): Chroma's approximate (HNSW) search returned a different
    candidate for a few questions from one process to the next, so the data, and the
    file, would not be reproducible. On corpora of 240 paragraphs the two agree but
    for those few."""
    if not isinstance(vectors, VectorStore):
        return vectors
    got = vectors._collection.get(include=["embeddings"])
    order = sorted(range(len(got["ids"])), key=lambda i: got["ids"][i])
    matrix = np.asarray(got["embeddings"], dtype=np.float32)[order]
    return MemoryVectors([got["ids"][i] for i in order], matrix)


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def query_cache(lang: str, embedding: Any) -> dict[str, tuple[np.ndarray, Any]]:
    """Vector and latent terms of every question of ``lang`` (made once, kept in
    var/fit)."""
    path = VAR / f"queries-{lang}.pkl"
    if path.exists():
        with open(path, "rb") as handle:
            cached: dict[str, tuple[np.ndarray, Any]] = pickle.load(handle)
            return cached
    _, questions = xquad.load(settings().xquad_dir, lang)
    out = {}
    for q in questions:
        vector = np.asarray(embedding.get_query_embedding(q.question), dtype=np.float32)
        out[q.qid] = (vector, embedding.latent_terms([q.question])[0])
    with open(path, "wb") as handle:
        pickle.dump(out, handle)
    return out


def reference_means() -> dict[str, np.ndarray]:
    """Mean sentence vector of each language over its 240 XQuAD paragraphs (the full
    corpora's centroids)."""
    out: dict[str, np.ndarray] = {}
    for lang in LANGS:
        paragraphs, _ = xquad.load(settings().xquad_dir, lang)
        index = open_index(corpus(lang, paragraphs))
        out[lang] = np.asarray(index.centroids[lang], dtype=np.float32)
        index.close()
    return out


def stub(reference: dict[str, np.ndarray], model: str) -> AnswerParams:
    """Parameters that only carry the reference means (what ``columns`` reads)."""
    none = Logistic((), np.zeros(0), np.ones(0), np.zeros(0), 0.0)
    pooled = np.mean(np.stack(list(reference.values())), axis=0)
    return AnswerParams(model, none, none, 0.0, LEXICAL_WEIGHT, reference, pooled)


def run_pair(
    pair: str,
    name: str,
    paragraphs: list[xquad.Paragraph],
    embedding: Any,
    fitted: AnswerParams,
    articles: set[int] | None,
    variants: tuple[str, ...],
) -> dict[str, Any]:
    """The rows of ``pair`` over corpus ``name`` (see the module doc)."""
    qlang, plang = pair.split(":")
    s = corpus(name, paragraphs)
    index = open_index(s)
    scorer = SentenceScorer(index)
    vectors_w, lexical_w = _Without(exact(index.vectors)), _Without(index.lexical)
    latent_w = _Without(index.latent) if index.latent is not None else None
    filtered = replace(
        index,
        vectors=cast(Any, vectors_w),
        lexical=cast(Any, lexical_w),
        latent=cast(Any, latent_w),
    )
    retriever = Retriever(cast(LoadedIndex, filtered), embedding, s, scorer)
    _, questions = xquad.load(s.xquad_dir, qlang)
    _, gold_questions = xquad.load(s.xquad_dir, plang)
    golds = {q.qid: [normalised(a) for a in q.answers] for q in gold_questions}
    cache = query_cache(qlang, embedding)
    passages_of: dict[str, set[str]] = defaultdict(set)
    for p in index.passages.values():
        passages_of[p.doc_id.removesuffix(".txt")].add(p.passage_id)
    rows = Rows()
    for q in questions:
        article = int(q.pid[1:3])
        if (articles is not None and article not in articles) or q.pid not in passages_of:
            continue
        gold = [g for g in golds.get(q.qid, []) if g]
        for variant in variants:
            excluded = set()
            if variant == "removed":
                excluded = passages_of[q.pid]
            elif variant == "off_topic":
                excluded = set().union(
                    *(ids for pid, ids in passages_of.items() if pid[:3] == q.pid[:3])
                )
            for w in (vectors_w, lexical_w, latent_w):
                if w is not None:
                    w.excluded = excluded
            rows.add(pair, name, variant, q, gold, retriever, cache[q.qid], qlang, fitted)
    index.close()
    return rows.data()


class Rows:
    """The rows of questions asked (see the module doc): every candidate sentence's
    ``SentenceScorer.columns`` and labels, and every question's hand decision."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = defaultdict(list)
        self.qrows: dict[str, list[Any]] = defaultdict(list)

    def add(
        self,
        pair: str,
        name: str,
        variant: str,
        q: xquad.Question,
        gold: list[str],
        retriever: Retriever,
        cached: tuple[np.ndarray, Any],
        qlang: str,
        fitted: AnswerParams,
    ) -> None:
        """Ask ``q`` through ``retriever`` (its cached vector and latent terms) and keep
        its rows; ``gold``: the normalised gold answers in the paragraph language."""
        scorer = retriever.scorer
        vector, terms = cached
        retriever._terms[q.question] = terms  # the cached terms, not re-embedded
        search: SearchResult = retriever.search(q.question, query_vector=vector, lang=qlang)
        decision = Abstention(scorer, HAND_THRESHOLD).decide(q.question, search)
        q_tokens = set(search.query_tokens)
        cands = scorer.candidates(q_tokens, search)
        if not cands:
            return
        query = scorer.query(q_tokens, search.query_vector, search.query_terms, search.lang)
        c = scorer.columns(query, cands, search, fitted)
        holds = [any(g in normalised(x.sentence.content) for g in gold) for x in cands]
        own = [x.doc_id.removesuffix(".txt") == q.pid for x in cands]
        asks = asks_quantity(q.question)
        states = [states_quantity(x.sentence.content) for x in cands]
        n = len(cands)
        cols, qrows = self.cols, self.qrows
        key = len(qrows["qid"])
        for k, v in c.items():
            cols[k].extend(v.tolist())
        cols["q"].extend([key] * n)
        cols["hand_order"].extend(range(n))
        cols["gold"].extend(holds)
        cols["gold_para"].extend(h and o for h, o in zip(holds, own, strict=True))
        cols["quoted"].extend((not asks) or st for st in states)
        first = decision.candidates[0] if decision.candidates else None
        qrows["pair"].append(pair)
        qrows["corpus"].append(name)
        qrows["qid"].append(q.qid)
        qrows["article"].append(int(q.pid[1:3]))
        qrows["variant"].append(variant)
        qrows["hand_abstain"].append(decision.abstain)
        qrows["hand_support"].append(decision.support)
        qrows["hand_warned"].append(bool(decision.warnings))
        qrows["hand_first_gold"].append(
            first is not None and any(g in normalised(first.sentence.content) for g in gold)
        )
        qrows["no_quantity"].append(asks and not any(states))
        qrows["gold_retrieved"].append(any(holds))

    def data(self) -> dict[str, Any]:
        return {
            "rows": {k: np.asarray(v) for k, v in self.cols.items()},
            "questions": {k: np.asarray(v) for k, v in self.qrows.items()},
        }


# --- one-paragraph corpora -----------------------------------------------------------


class Cached:
    """The embedding, its passage vectors and latent terms through the embedding cache
    of the settings (the paragraphs' sentences are there from the corpus builds; only
    the cut paragraphs' passages are new)."""

    def __init__(self, embedding: Any, cache: EmbeddingCache) -> None:
        self.embedding = embedding
        self.cache = cache

    def get_text_embedding_batch(self, texts: list[str], **_: Any) -> np.ndarray:
        return self.cache.embed(texts)

    def latent_terms(self, texts: list[str]) -> list[Any]:
        return self.cache.latent(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedding, name)


def without_gold(paragraph: str, lang: str, gold: list[str]) -> str | None:
    """``paragraph`` with every sentence that holds a gold answer (normalised) cut out,
    the others joined by a space; None when no sentence holds one alone (the answer
    spans two), none would remain, or the rest still holds one."""
    found = segments(paragraph, "text", lang)
    keep = [x for x in found if not any(g in normalised(x.content) for g in gold)]
    if len(keep) == len(found) or not keep:
        return None
    text = " ".join(paragraph[x.start : x.end] for x in keep)
    return None if any(g in normalised(text) for g in gold) else text


def paragraph_index(path: Path, text: str, embedding: Any) -> LoadedIndex:
    """An index (in memory) of one file, ``text`` written at ``path`` and read as the
    service reads a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    s = settings()
    return in_memory(
        [read_document(path, path.name)], embedding, s.chunk_tokens, s.chunk_overlap_tokens
    )


def run_paragraphs(
    plang: str, pairs: list[str], embedding: Any, fitted: AnswerParams
) -> dict[str, dict[str, Any]]:
    """The rows of each of ``pairs`` (all with paragraphs in ``plang``) over
    one-paragraph corpora: each paragraph alone, its questions ``answerable``; and, per
    question, the paragraph with the sentences that hold its answer cut out (``cut``: a
    near miss where the corpus speaks of the subject of the question but not of the
    asked attribute)."""
    s = settings()
    paragraphs, gold_questions = xquad.load(s.xquad_dir, plang)
    golds = {q.qid: [g for g in (normalised(a) for a in q.answers) if g] for q in gold_questions}
    asked: dict[str, dict[str, list[xquad.Question]]] = {}
    caches = {}
    for pair in pairs:
        qlang = pair.split(":")[0]
        asked[pair] = defaultdict(list)
        for q in xquad.load(s.xquad_dir, qlang)[1]:
            asked[pair][q.pid].append(q)
        caches[pair] = query_cache(qlang, embedding)
    folder = VAR / "para" / plang
    rows = {pair: Rows() for pair in pairs}
    for para in paragraphs:
        corpora = [("answerable", folder / "whole" / f"{para.pid}.txt", para.context, "")]
        for q in gold_questions:
            if q.pid == para.pid:
                cut = without_gold(para.context, plang, golds.get(q.qid, []))
                if cut is not None:
                    corpora.append(("cut", folder / q.qid / f"{para.pid}.txt", cut, q.qid))
        for variant, path, text, only in corpora:
            index = paragraph_index(path, text, embedding)
            retriever = Retriever(index, embedding, s, SentenceScorer(index))
            for pair in pairs:
                qlang = pair.split(":")[0]
                for q in asked[pair][para.pid]:
                    if only and q.qid != only:
                        continue
                    gold = golds.get(q.qid, [])
                    name = f"para-{plang}"
                    cached = caches[pair][q.qid]
                    rows[pair].add(pair, name, variant, q, gold, retriever, cached, qlang, fitted)
    return {pair: r.data() for pair, r in rows.items()}


def para_path(out: Path, pair: str) -> Path:
    return out / f"{pair.replace(':', '_')}-para.pkl"


def rows_all(pairs: tuple[str, ...], small: bool) -> None:
    s = settings()
    embedding = load_embedding(s.embedding)
    fitted = stub(reference_means(), model_id(embedding))
    out = VAR / "rows"
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, list[xquad.Paragraph], set[int] | None, tuple[str, ...]]] = []
    for pair in pairs:
        plang = pair.split(":")[1]
        paragraphs, _ = xquad.load(s.xquad_dir, plang)
        jobs.append((pair, plang, paragraphs, None, ("answerable", "removed")))
        jobs.append((pair, plang, paragraphs, None, ("off_topic",)))
    for plang in LANGS:
        todo = [
            pair
            for pair in pairs
            if pair.endswith(f":{plang}") and not para_path(out, pair).exists()
        ]
        if todo:
            t0 = time.time()
            cached = Cached(embedding, EmbeddingCache(s.cache_dir / "embeddings.sqlite", embedding))
            for pair, data in run_paragraphs(plang, todo, cached, fitted).items():
                with open(para_path(out, pair), "wb") as handle:
                    pickle.dump(data, handle)
                n = len(data["questions"].get("qid", []))
                print(f"{pair} one-paragraph corpora: {n} questions", flush=True)
            print(f"paragraphs of {plang}: {time.time() - t0:.0f} s", flush=True)
    if small:
        for pair in SMALL_PAIRS:
            for name, article, paras in small_corpora(pair.split(":")[1]):
                one = name.endswith("-p0")
                variants = ("answerable",) if one else ("answerable", "removed")
                jobs.append((pair, name, paras, {article}, variants))
    for pair, name, paras, articles, variants in jobs:
        suffix = ".off" if variants == ("off_topic",) else ""
        path = out / f"{pair.replace(':', '_')}-{name}{suffix}.pkl"
        if path.exists():
            continue
        t0 = time.time()
        data = run_pair(pair, name, paras, embedding, fitted, articles, variants)
        with open(path, "wb") as handle:
            pickle.dump(data, handle)
        n = len(data["questions"].get("qid", []))
        print(f"{pair} {name}: {n} questions, {time.time() - t0:.0f} s", flush=True)


# --- fit -----------------------------------------------------------------------------


@dataclass
class Data:
    """Every candidate row (``rows``: arrays of one length) and every question
    (``questions``), with ``start``/``stop``: each question's slice of the rows."""

    rows: dict[str, np.ndarray]
    questions: dict[str, np.ndarray]
    start: np.ndarray
    stop: np.ndarray
    features: np.ndarray
    """``SENTENCE_FEATURES`` of every row (``sentence_features`` per question)."""


KINDS = ("full", "small", "para")
"""The rows' corpora: the four full corpora (what the models are fitted on), the small
corpora and the one-paragraph corpora (both only scored, by the fold models)."""


def kind_of(name: str) -> str:
    """Which of ``KINDS`` the corpus ``name`` of a rows file is."""
    return "small" if name.startswith("small-") else "para" if name == "para" else "full"


def load(pairs: tuple[str, ...], kind: str) -> Data | None:
    """The rows of ``pairs`` (the small corpora: of ``SMALL_PAIRS``) over the corpora of
    ``kind`` (``KINDS``), as one Data; None when there are none."""
    files = sorted((VAR / "rows").glob("*.pkl"))
    chosen = []
    for f in files:
        pair, _, name = f.stem.partition("-")
        if pair.replace("_", ":") not in (SMALL_PAIRS if kind == "small" else pairs):
            continue
        if kind_of(name) == kind:
            chosen.append(f)
    rows: dict[str, list[np.ndarray]] = defaultdict(list)
    questions: dict[str, list[np.ndarray]] = defaultdict(list)
    offset = 0
    for f in chosen:
        with open(f, "rb") as handle:
            data = pickle.load(handle)
        if not len(data["questions"].get("qid", [])):
            continue
        for k, v in data["rows"].items():
            rows[k].append(v + offset if k == "q" else v)
        for k, v in data["questions"].items():
            questions[k].append(v)
        offset += len(data["questions"]["qid"])
    if not questions:
        return None
    r = {k: np.concatenate(v) for k, v in rows.items()}
    q = {k: np.concatenate(v) for k, v in questions.items()}
    n = len(q["qid"])
    start = np.searchsorted(r["q"], np.arange(n), side="left")
    stop = np.searchsorted(r["q"], np.arange(n), side="right")
    raw = [k for k in r if k not in ("q", "hand_order", "gold", "gold_para", "quoted")]
    features = np.empty((len(r["q"]), len(SENTENCE_FEATURES)))
    for i in range(n):
        sl = slice(start[i], stop[i])
        found = sentence_features({k: r[k][sl].astype(np.float64) for k in raw})
        features[sl] = np.stack([found[name] for name in SENTENCE_FEATURES], axis=1)
    return Data(r, q, start, stop, features)


def logistic(x: np.ndarray, y: np.ndarray) -> Any:
    """A standardised logistic regression fitted on ``x``, ``y``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    return model.fit(x, y)


def as_logistic(model: Any, features: tuple[str, ...]) -> Logistic:
    scaler, lr = model[0], model[1]
    return Logistic(
        features,
        np.asarray(scaler.mean_, dtype=np.float64),
        np.asarray(scaler.scale_, dtype=np.float64),
        np.asarray(lr.coef_[0], dtype=np.float64),
        float(lr.intercept_[0]),
    )


def columns_of(data: Data, i: int) -> dict[str, np.ndarray]:
    sl = slice(data.start[i], data.stop[i])
    return {k: v[sl].astype(np.float64) for k, v in data.rows.items()}


def abstention_matrix(
    data: Data, p: np.ndarray, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``ABSTENTION_FEATURES`` of the questions ``which`` (row probabilities ``p``),
    over the sentences an answer may quote (``quoting``: a quantity question's that
    state one), as rag/query/abstain.py computes them; and whether a question has any
    (one with none abstains: its row of features is 0)."""
    out = np.zeros((len(which), len(ABSTENTION_FEATURES)))
    valid = np.zeros(len(which), dtype=bool)
    for j, i in enumerate(which):
        sl = slice(data.start[i], data.stop[i])
        quoted = data.rows["quoted"][sl]
        if not quoted.any():
            continue
        columns = {k: v[quoted] for k, v in columns_of(data, i).items()}
        f = abstention_features(columns, p[sl][quoted], LEXICAL_WEIGHT)
        out[j] = [f[name][0] for name in ABSTENTION_FEATURES]
        valid[j] = True
    return out, valid


def threshold_for(scores: np.ndarray, target: float) -> float:
    """The threshold (abstain below it) at which a share ``target`` of ``scores``
    (of answerable questions) abstains."""
    s = np.sort(scores)
    k = math.floor(target * len(s))
    return float(s[min(k, len(s) - 1)])


def first_quote(data: Data, p: np.ndarray) -> np.ndarray:
    """Per question: whether the first sentence the answerer quotes holds a gold answer,
    candidates ordered as the fitted scorer orders them (statements first, then by
    probability; a quantity question's only among sentences that state one)."""
    out = np.zeros(len(data.start), dtype=bool)
    for i in range(len(out)):
        sl = slice(data.start[i], data.stop[i])
        quoted = data.rows["quoted"][sl]
        if not quoted.any():
            continue
        order = np.lexsort((-p[sl], data.rows["minor"][sl]))
        order = order[quoted[order]]
        out[i] = bool(data.rows["gold"][sl][order[0]])
    return out


@dataclass
class Fitted:
    sentence: Any
    abstention: Any
    thresholds: dict[str, float]


def fit_once(data: Data, train_q: np.ndarray, columns: list[int]) -> Fitted:
    """Both models on the questions ``train_q`` (indices)."""
    answerable = data.questions["variant"][train_q] == "answerable"
    rows = np.concatenate([np.arange(data.start[i], data.stop[i]) for i in train_q[answerable]])
    sentence = logistic(data.features[rows][:, columns], data.rows["gold_para"][rows])
    p = sentence.predict_proba(data.features[:, columns])[:, 1]
    x, valid = abstention_matrix(data, p, train_q)
    abstention = logistic(x[valid], answerable[valid].astype(int))
    scores = np.where(valid, abstention.predict_proba(x)[:, 1], 0.0)
    thresholds = {t: threshold_for(scores[answerable], float(t)) for t in TARGETS}
    return Fitted(sentence, abstention, thresholds)


def apply(data: Data, model: Fitted, columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Row probabilities and question abstention scores of ``data``."""
    p = model.sentence.predict_proba(data.features[:, columns])[:, 1]
    x, valid = abstention_matrix(data, p, np.arange(len(data.start)))
    return p, np.where(valid, model.abstention.predict_proba(x)[:, 1], 0.0)


def folds_of(articles: np.ndarray) -> dict[int, int]:
    from sklearn.model_selection import GroupKFold

    art = np.array(sorted(set(articles.tolist())))
    return {
        int(a): k
        for k, (_, test) in enumerate(GroupKFold(n_splits=FOLDS).split(art, groups=art))
        for a in art[test]
    }


def rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else math.nan


def table(data: Data, fqg: np.ndarray, abstain: dict[str, np.ndarray], by: str) -> list[dict]:
    """Per pair (and all): today's and the fitted figures."""
    q = data.questions
    out = []
    keys = [*sorted(set(q[by].tolist())), "ALL"]
    has_cut = bool((q["variant"] == "cut").any())
    for key in keys:
        m = np.ones(len(q["qid"]), dtype=bool) if key == "ALL" else q[by] == key
        a = m & (q["variant"] == "answerable")
        r = m & (q["variant"] == "removed")
        o = m & (q["variant"] == "off_topic")
        c = m & (q["variant"] == "cut")
        g = a & q["gold_retrieved"]
        row: dict[str, Any] = {
            by: key,
            "answerable": int(a.sum()),
            "removed": int(r.sum()),
            **({"cut": int(c.sum())} if has_cut else {}),
            "today first quote holds gold": rate(q["hand_first_gold"][a]),
            "fitted first quote holds gold": rate(fqg[a]),
            "today precision": rate(q["hand_first_gold"][g]),
            "fitted precision": rate(fqg[g]),
        }
        for name, flags in abstain.items():
            row[f"{name} FA"] = rate(flags[a])
            row[f"{name} AR"] = rate(flags[r])
            row[f"{name} off-topic AR"] = rate(flags[o])
            if has_cut:
                row[f"{name} cut AR"] = rate(flags[c])
        out.append(row)
    return out


def curve(data: Data, score: np.ndarray, negatives: tuple[str, ...]) -> list[dict[str, float]]:
    """Abstention recall of each variant of ``negatives`` against false abstention, for
    the fitted score and today's support, each threshold chosen on the same (pooled
    out-of-fold) scores."""
    v = data.questions["variant"]
    out = []
    for fa in (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3):
        row: dict[str, float] = {"false_abstention": fa}
        for name, s in (("fitted", score), ("today", data.questions["hand_support"])):
            t = threshold_for(s[v == "answerable"], fa)
            row[f"{name}_threshold"] = round(t, 4)
            for neg in negatives:
                row[f"{name}_{neg}_recall"] = round(rate(s[v == neg] < t), 4)
        out.append(row)
    return out


BASE = [i for i, f in enumerate(SENTENCE_FEATURES) if not f.startswith(("prev_", "has_prev"))]
ALL = list(range(len(SENTENCE_FEATURES)))


@dataclass
class Scored:
    """Out-of-fold results of one Data: row probabilities, question scores, and the
    decisions at each target."""

    p: np.ndarray
    score: np.ndarray
    decided: dict[str, np.ndarray]


def cross_validate(
    data: Data, aside: dict[str, Data], columns: list[int]
) -> tuple[Scored, dict[str, Scored]]:
    """Out-of-fold results of ``data``; and of each Data ``aside`` (never fitted on),
    each question scored by the fold model that did not see its article."""
    fold_of = folds_of(data.questions["article"])
    named = {"": data, **aside}
    folds = {
        k: np.array([fold_of[int(a)] for a in d.questions["article"]]) for k, d in named.items()
    }
    out = {
        k: Scored(
            np.zeros(len(d.features)),
            np.zeros(len(d.start)),
            {t: np.zeros(len(d.start), dtype=bool) for t in TARGETS},
        )
        for k, d in named.items()
    }
    for k in range(FOLDS):
        model = fit_once(data, np.flatnonzero(folds[""] != k), columns)
        for key, d in named.items():
            pk, sk = apply(d, model, columns)
            test = np.flatnonzero(folds[key] == k)
            rows = np.isin(d.rows["q"], test)
            out[key].p[rows] = pk[rows]
            out[key].score[test] = sk[test]
            for t in TARGETS:
                out[key].decided[t][test] = sk[test] < model.thresholds[t]
        print(f"fold {k}: thresholds {model.thresholds}", flush=True)
    main = out.pop("")
    return main, out


def decisions(data: Data, decided: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Today's rule, and the fitted rule at each target with the warning it keeps
    (``unknown_term``; a quantity question with no sentence stating one scores 0)."""
    q = data.questions
    unknown = q["hand_warned"] & ~q["no_quantity"]
    out = {"today": q["hand_abstain"]}
    for t in TARGETS:
        out[f"fitted@{t}"] = decided[t] | unknown
    return out


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def no_nan(value: Any) -> Any:
    """``value`` with every NaN (a rate over no question) made None: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def markdown(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def fit_all(pairs: tuple[str, ...], small_too: bool) -> None:
    s = settings()
    model = model_id(load_embedding(s.embedding))
    data = load(pairs, "full")
    if data is None:
        raise SystemExit(f"no rows of {', '.join(pairs)} under {VAR / 'rows'}: run --stage rows")
    kinds = ("small", "para") if small_too else ("para",)
    aside = {k: d for k in kinds if (d := load(pairs, k)) is not None}
    print(f"{len(data.start)} questions, {len(data.features)} rows", flush=True)
    base, _ = cross_validate(data, {}, BASE)
    main, scored = cross_validate(data, aside, ALL)
    p, score = main.p, main.score
    fqg = first_quote(data, p)
    fqg_base = first_quote(data, base.p)
    main_table = table(data, fqg, decisions(data, main.decided), "pair")
    answerable = data.questions["variant"] == "answerable"
    feature_sets = {
        "today": rate(data.questions["hand_first_gold"][answerable]),
        "fitted, base features": rate(fqg_base[answerable]),
        "fitted, base + previous sentence": rate(fqg[answerable]),
    }
    para_table: list[dict[str, Any]] = []
    para_curve: list[dict[str, float]] = []
    if "para" in aside:
        d, r = aside["para"], scored["para"]
        para_table = table(d, first_quote(d, r.p), decisions(d, r.decided), "pair")
        para_curve = curve(d, r.score, ("cut",))
    small_table: list[dict[str, Any]] = []
    if "small" in aside:
        small, r = aside["small"], scored["small"]
        sfqg = first_quote(small, r.p)
        kind = np.array(
            [
                "one paragraph" if c.endswith("-p0") else "one article"
                for c in small.questions["corpus"]
            ]
        )
        small.questions["kind"] = np.char.add(np.char.add(kind, " "), small.questions["pair"])
        small_table = [r for r in table(small, sfqg, decisions(small, r.decided), "kind")]
        small_table.pop()  # "ALL" of both kinds together: shown per kind below
        small.questions["kind"] = np.char.add(kind, ", all pairs")
        small_table += [
            row
            for row in table(small, sfqg, decisions(small, r.decided), "kind")
            if row["kind"] != "ALL"
        ]
    final = fit_once(data, np.arange(len(data.start)), ALL)
    reference = reference_means()
    sentence = as_logistic(final.sentence, SENTENCE_FEATURES)
    abstention = as_logistic(final.abstention, ABSTENTION_FEATURES)

    def arr(a: np.ndarray) -> list[float]:
        return [round(float(x), 8) for x in a]

    params = {
        "embedding_model": model,
        "note": (
            "Fitted by bench/fit_answer.py (make fit) on XQuAD (en, ar, vi, zh paragraphs; "
            f"pairs {', '.join(pairs)}; every question answerable, with its own paragraph "
            f"removed and with its article removed), {len(data.start)} questions, "
            f"{len(data.features)} candidate sentences; GroupKFold by article, {FOLDS} "
            "folds; cross-validated figures in docs/fit.md and under 'cv'."
        ),
        "sentence": {
            "features": list(SENTENCE_FEATURES),
            "mean": arr(sentence.mean),
            "scale": arr(sentence.scale),
            "coef": arr(sentence.coef),
            "intercept": round(sentence.intercept, 8),
        },
        "abstention": {
            "features": list(ABSTENTION_FEATURES),
            "mean": arr(abstention.mean),
            "scale": arr(abstention.scale),
            "coef": arr(abstention.coef),
            "intercept": round(abstention.intercept, 8),
            "threshold": {t: round(v, 6) for t, v in final.thresholds.items()},
            "target": TARGET,
            "support_lexical_weight": LEXICAL_WEIGHT,
        },
        "reference_means": {k: [round(float(x), 6) for x in v] for k, v in reference.items()},
        "cv": {
            "pairs": main_table,
            "feature_sets": feature_sets,
            "curve": curve(data, score, ("removed", "off_topic")),
            "paragraphs": para_table,
            "paragraph_curve": para_curve,
            "small": small_table,
        },
    }
    params = no_nan(params)
    OUT.write_text(
        json.dumps(params, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    DOC.write_text(report(params, pairs), encoding="utf-8")
    print(f"wrote {OUT} and {DOC}", flush=True)


# --- main ----------------------------------------------------------------------------


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # sums over sets of tokens (a sentence's lexical share) follow the sets'
        # order, which follows string hashing: fixed, the file is reproducible
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("build", "rows", "fit", "all"), default="all")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--no-small", action="store_true", help="skip the small corpora")
    args = parser.parse_args()
    pairs = tuple(args.pairs.split(","))
    small = not args.no_small
    if args.stage in ("build", "all"):
        build_all(small)
    if args.stage in ("rows", "all"):
        rows_all(pairs, small)
    if args.stage in ("fit", "all"):
        fit_all(pairs, small)


REPORT_HEAD = """# Fitted sentence scorer and abstention (XQuAD, cross-validated)

Written by `make fit` (bench/fit_answer.py) with rag/query/answer_params.json; do not
edit by hand. Every figure here is cross-validated: GroupKFold by article ({folds}
folds), each question scored by the models of the fold that did not see its article;
the small corpora by the fold model that did not see their article.

- Data: XQuAD paragraphs of en, ar, vi, zh, each language a corpus of its own (240
  paragraphs); pairs QUESTION:PARAGRAPH languages {pairs}. Each question is asked as
  the service asks it (`answerable`), and with its own paragraph's passages filtered
  out of every ranking before fusion (`removed`: a near miss; the other paragraphs of
  its article remain), and with its whole article filtered out (`off_topic`: the
  corpus does not speak of the subject at all). And every paragraph as a corpus of
  its own: whole (`answerable`), and for each question with the sentences that hold
  its answer cut out (`cut`: the near miss of a small corpus, where what remains
  still speaks of the subject but not of the asked attribute). The models are fitted
  on the full corpora; the one-paragraph corpora, like the small ones, are only
  scored, each question by the fold model that did not see its article.
- *today* is the hand rule (ScoringParams, abstain below support 0.071, or a quantity
  question with no quantity sentence, or an unknown product code); *fitted* is
  rag/query/answer_params.json: a logistic regression per candidate sentence over
  {n_sentence} features (rag/query/sentences.py `sentence_features`) and one per
  question over the best sentence's probability, the best support against a fixed
  reference mean of each language, the best latent cosine, whether the best
  sentence is in the question's language, and their products with it
  (rag/query/abstain.py `abstention_features`), abstaining below the score at which
  5% (`@0.05`) or 10% (`@0.1`) of the training folds' answerable questions fall.
  Both rules read the sentences an answer may quote: a quantity question's that state
  a quantity (rag/query/abstain.py `quoting`; none: it abstains, as today). On XQuAD
  this changes nothing measurable (measured once, before off-topic questions were
  added: over all candidates, FA 0.050 and AR 0.387; over the quotable ones, 0.051
  and 0.385; all pairs, @0.05).
- first quote holds gold: the first sentence the answerer quotes holds a gold answer
  (all answerable questions; *precision*: those whose retrieved passages hold one).
  FA: false abstention (answerable questions abstained); AR: abstention recall (near
  misses abstained); off-topic AR: the same for the `off_topic` questions.
"""


def report(params: dict[str, Any], pairs: tuple[str, ...]) -> str:
    cv = params["cv"]
    n = len(params["sentence"]["features"])
    parts = [REPORT_HEAD.format(folds=FOLDS, pairs=", ".join(pairs), n_sentence=n)]
    quote_cols = [
        "today first quote holds gold",
        "fitted first quote holds gold",
        "today precision",
        "fitted precision",
    ]
    abst = ["today", "fitted@0.05", "fitted@0.1"]
    abst_cols = [f"{a} {m}" for a in abst for m in ("FA", "AR", "off-topic AR")]
    parts.append("## Per language pair\n")
    parts.append(markdown(cv["pairs"], ["pair", "answerable", *quote_cols]) + "\n")
    parts.append(markdown(cv["pairs"], ["pair", *abst_cols]) + "\n")
    parts.append("## Sentence scorer: feature sets (first quote holds gold, all pairs)\n")
    fs = [{"model": k, "first quote holds gold": v} for k, v in cv["feature_sets"].items()]
    parts.append(markdown(fs) + "\n")
    parts.append(
        "## Trade-off curve (pooled out-of-fold scores; threshold chosen on the same scores)\n"
    )
    parts.append(markdown(cv["curve"]) + "\n")
    if cv.get("paragraphs"):
        parts.append(
            "## One paragraph alone, whole (`answerable`) and with the sentences that hold "
            "the answer cut out (`cut`)\n"
        )
        cut_cols = [f"{a} {m}" for a in abst for m in ("FA", "cut AR")]
        parts.append(
            markdown(cv["paragraphs"], ["pair", "answerable", "cut", *quote_cols[:2], *cut_cols])
            + "\n"
        )
        parts.append("Trade-off curve of the one-paragraph corpora (as above):\n")
        parts.append(markdown(cv["paragraph_curve"]) + "\n")
    if cv["small"]:
        parts.append(
            "## Small corpora: one article alone (5 paragraphs), and its first paragraph "
            "alone (answerable questions only)\n"
        )
        parts.append(
            markdown(
                cv["small"],
                ["kind", "answerable", "removed", *quote_cols[:2], *abst_cols],
            )
            + "\n"
        )
    a = params["abstention"]
    parts.append(
        "## The file\n\n"
        f"Abstention threshold (P of answerable): {a['threshold'][a['target']]} "
        f"(target false abstention {a['target']}; at 0.1: {a['threshold']['0.1']}).\n"
    )
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
