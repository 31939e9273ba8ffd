"""Every tuned figure of the read side's scoring, in one place, each with where it
comes from. User-facing knobs (``top_k``, the fusion weights, ``abstain_threshold``)
are Settings (rag/config.py); these are the answerer's and the sentence scorer's own.

The scorer and the answerers take a ``ScoringParams`` (``DEFAULT`` unless told
otherwise), so other values can be tried without touching the code. Which sentence
answers and whether to abstain are *fitted* (``AnswerParams``, from
rag/query/answer_params.json, written by ``make fit``); the hand weights below still
score sentences for retrieval's rerank and choose further citations (``margin``,
``corroboration``, ``translation``), and are the documented fallback when the fitted
file does not match the index's embedding model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ScoringParams:
    """Weights and thresholds of sentence scoring (rag/query/sentences.py) and of
    choosing what to quote (rag/query/extractive.py). Cosines and scores are unitless
    (cosine similarities of unit vectors, in [-1, 1], and sums of them)."""

    lexical_weight: float = 0.08
    """Weight of a sentence's lexical evidence (the IDF-weighted share of the
    question's tokens it contains: numbers, names, rare words) next to its cosine
    similarity to the question."""

    sentence_latent_weight: float = 0.7
    """Weight of the cosine of the question's and a sentence's latent terms
    (rag/index/latent.py) for a sentence in another language than the question's.
    XQuAD (sentence that holds the gold answer ranked first among the top passages'
    sentences): en->ar 0.617 -> 0.646 and en->vi 0.603 -> 0.644 with the terms at
    this weight; on the dev set 0.769 -> 0.872."""

    same_language_latent: float = 0.35
    """The same weight for a sentence in the question's language. Latent terms bridge
    languages; within one, words and the embedding already meet, and the terms' noise
    costs: answers quoting the gold in their first quote on XQuAD at 0.7 -> 0.35 -> 0,
    vi:vi 0.746 -> 0.765 -> 0.772, ar:ar 0.713 -> 0.720 -> 0.724, en:en 0.812 ->
    0.814 -> 0.798."""

    sentence_language_centering: float = 1.0
    """A sentence's score is less this times the question's similarity to the mean
    vector of the sentence's language (as retrieval does with
    ``Settings.language_centering``, rag/query/retriever.py ``Retriever.centred``)."""

    rank_weight: float = 0.01
    """Small prior for sentences of passages that retrieval ranked higher: a
    sentence's score is less this times its passage's rank (0-based)."""

    corroboration: float = 0.90
    """Two sentences of one language whose embeddings are this close (cosine) say the
    same thing."""

    translation: float = 0.42
    """Two sentences of two languages whose meanings (rag/index/reader.py
    ``LoadedIndex.meanings``) are this close say the same thing. On the seeds, 0.42
    keeps 93% of the Malay sentences' Vietnamese translations and 4% of their nearest
    sentences in unrelated files (the most translations kept less unrelated sentences
    kept). On XQuAD's Arabic and Vietnamese paragraphs as one corpus, English
    questions (held out): answers citing both translations 0.04 -> 0.65, quotes from
    the gold paragraph 0.836 -> 0.861 (at 0.50: 0.54 and 0.865)."""

    margin: float = 0.005
    """A further citation from another file must score within this of the best one
    (one from the same file within half of it)."""


DEFAULT = ScoringParams()
"""The figures above: what the service uses."""


PARAMS_FILE = "answer_params.json"
"""The fitted rules (package data of rag.query), written by ``make fit``
(bench/fit_answer.py) with the cross-validated figures they were chosen on."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Logistic:
    """A logistic regression fitted by scikit-learn, evaluated with numpy:
    ``P = sigmoid(((x - mean) / scale) . coef + intercept)`` over the named features
    (the standardisation and the coefficients are those of the fit)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        """From the file's ``{"features", "mean", "scale", "coef", "intercept"}``;
        ValueError naming the mismatch when the arrays and the features differ in
        length."""
        features = tuple(str(f) for f in data["features"])
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays):
            raise ValueError(
                f"{len(features)} features but arrays of shapes {[a.shape for a in arrays]}"
            )
        return cls(features, arrays[0], arrays[1], arrays[2], float(data["intercept"]))

    def probability(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(positive) of each row: ``columns`` holds every feature as an array of
        one length (n,); returns float64 (n,). KeyError names a missing feature."""
        x = np.stack([np.asarray(columns[f], dtype=np.float64) for f in self.features], axis=1)
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return out


@dataclass(frozen=True)
class AnswerParams:
    """The fitted sentence scorer and abstention rule (rag/query/answer_params.json;
    the features are defined in rag/query/sentences.py ``sentence_features`` and
    rag/query/abstain.py ``abstention_features``)."""

    embedding_model: str
    """The model id (rag/index/embedding.py ``model_id``) whose vectors it was fitted on."""
    sentence: Logistic
    """P(the sentence holds the answer) of a candidate sentence."""
    abstention: Logistic
    """P(the corpus answers the question) from its candidates."""
    threshold: float
    """Abstain when the abstention's P is below this: the level at which 5% of the
    training folds' answerable XQuAD questions abstained (docs/fit.md)."""
    support_lexical_weight: float
    """Weight of a sentence's lexical share in ``max_support`` (cos + w * lex - shift)."""
    reference_means: dict[str, np.ndarray]
    """Mean sentence vector of each language over XQuAD's 240 paragraphs: what a
    question's similarity to a language is measured against, whatever the corpus."""
    pooled_mean: np.ndarray
    """The mean of ``reference_means``: for a language XQuAD lacks."""

    def reference(self, lang: str) -> np.ndarray:
        """The reference mean of ``lang`` (the pooled one when there is none)."""
        return self.reference_means.get(lang, self.pooled_mean)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerParams:
        """From the parsed file; KeyError or ValueError names what is missing or wrong."""
        means = {
            str(k): np.asarray(v, dtype=np.float32) for k, v in data["reference_means"].items()
        }
        if not means:
            raise ValueError("answer parameters without reference means")
        abstention = data["abstention"]
        return cls(
            str(data["embedding_model"]),
            Logistic.from_dict(data["sentence"]),
            Logistic.from_dict(abstention),
            float(abstention["threshold"][abstention["target"]]),
            float(abstention["support_lexical_weight"]),
            means,
            np.mean(np.stack(list(means.values())), axis=0).astype(np.float32),
        )


def fitted_file(name: str, model: str | None = None) -> dict[str, Any] | None:
    """The JSON object of the fitted file ``name`` shipped in rag/query/ (written by a
    ``make fit...`` target); None when it is missing, or when ``model`` is given and the
    file was fitted with another embedding model (its ``embedding_model``): another
    model's vectors mean nothing to its figures."""
    try:
        text = resources.files("rag.query").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data: dict[str, Any] = json.loads(text)
    if model is not None and data.get("embedding_model") != model:
        return None
    return data


@lru_cache(maxsize=1)
def _packaged() -> AnswerParams | None:
    data = fitted_file(PARAMS_FILE)
    return None if data is None else AnswerParams.from_dict(data)


def answer_params(model: str) -> AnswerParams | None:
    """The fitted rules (``PARAMS_FILE``, read once) when they were fitted on the
    vectors of embedding ``model``; else None, with a warning logged, and the service
    keeps the hand rule: ``DEFAULT`` and ``Settings.abstain_threshold``."""
    params = _packaged()
    if params is None:
        log.warning("no %s: sentences and abstention use the hand rule", PARAMS_FILE)
        return None
    if params.embedding_model != model:
        log.warning(
            "%s was fitted with %s, the index was built with %s: sentences and abstention "
            "use the hand rule",
            PARAMS_FILE,
            params.embedding_model,
            model,
        )
        return None
    return params
