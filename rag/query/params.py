"""Every tuned figure of the read side's scoring, in one place, each with where it
comes from. User-facing knobs (``top_k``, the fusion weights, ``abstain_threshold``)
are Settings (rag/config.py); these are the answerer's and the sentence scorer's own.

The scorer and the answerers take a ``ScoringParams`` (``DEFAULT`` unless told
otherwise), so other values can be tried or fitted without touching the code.
"""

from __future__ import annotations

from dataclasses import dataclass


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
