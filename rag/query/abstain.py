"""Does the corpus answer this question? The pipeline's step between retrieval and
the answerer (rag/query/pipeline.py): when it abstains, no answerer runs, and the
answer says so in the question's language and cites nothing.

It abstains (``Abstention.decide``) when

- its score (``Decision.support``) is below ``Abstention.threshold``. With the fitted
  rule (rag/query/params.py ``AnswerParams``, fitted on XQuAD by bench/fit_answer.py,
  cross-validated figures in docs/fit.md) the score is a logistic regression's
  P(the corpus answers) over ``abstention_features``, and the threshold the level at
  which 5% of the training folds' answerable questions abstained. Without it (the
  index's embedding model is not the one the file was fitted on) the score is the
  hand rule's: the best statement's support (its evidence above the question's
  baseline similarity to the corpus, rag/query/sentences.py ``Candidate.support``)
  against ``HAND_THRESHOLD``;
- the question asks for a quantity ("how many", "berapa", "bao nhiêu", "كم", 多少)
  and no retrieved sentence states one (digits or number words): warning
  ``no_quantity``;
- the question names a model or product (letters with digits, like "R2") that no
  passage of the corpus contains in any spelling: warning ``unknown_term: r2``.

Every check compares normalised text (rag/text/normalise.py): a question in NFD, with
full-width digits or typed without its marks gets the same decision.

A quantity question is answered only from sentences that state a quantity, so the
candidates it passes on are those (``quoting``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from rag.query.sentences import Candidate, SentenceScorer
from rag.text.language import same_language
from rag.text.normalise import normalise
from rag.text.segment import identifiers
from rag.types import Draft, SearchResult, WarningCode, warning

HAND_THRESHOLD = 0.071
"""The hand rule's minimum support (calibrated on evals/seeds_dev.jsonl), used when
no fitted rule matches the index's model."""


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    """The service's messages by kind and language (rag/prompts/messages.json)."""
    text = resources.files("rag.prompts").joinpath("messages.json").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


def message(kind: str, lang: str) -> str:
    """The service's message ``kind`` (``abstain``) in language ``lang``; else in one
    that ``same_language`` calls the same (Malay and Indonesian read each other, and the
    detector confuses them on short questions); else in English
    (rag/prompts/messages.json)."""
    table = messages()[kind]
    if lang in table:
        return table[lang]
    for code in sorted(table):
        if same_language(code, lang):
            return table[code]
    if "en" in table:
        return table["en"]
    raise KeyError(f"rag/prompts/messages.json has no English '{kind}' message")


_RUNS = re.compile(r"\d+|[^\W\d_]+")
"""The letter and digit runs of a product code's key (``iphone15``: ``iphone``, ``15``)."""


def _words(*words: str) -> str:
    """An alternation of ``words`` as ``normalise`` writes them (longest first)."""
    forms = sorted({normalise(w) for w in words}, key=len, reverse=True)
    return "|".join(re.escape(f) for f in forms)


def _exact_words(*words: str) -> str:
    """An alternation of ``words`` as ``normalise(fold=False)`` writes them."""
    forms = sorted({normalise(w, fold=False) for w in words}, key=len, reverse=True)
    return "|".join(re.escape(f) for f in forms)


_ASKS_QUANTITY = re.compile(
    rf"\b(?:{_words('how many', 'how much', 'what percentage', 'what proportion')})\b"
    rf"|\b(?:{_words('berapa', 'berapakah')})\b"  # Malay, Indonesian
    rf"|\b(?:{_words('bao nhiêu')})\b"  # Vietnamese, with or without its marks
    rf"|(?<!\S)(?:{_words('كم')})(?!\S)"  # Arabic
    rf"|{_words('多少')}"  # Chinese
)
"""Questions whose answer is a quantity ("how much", "berapa", "bao nhiêu", "كم", 多少),
matched on the question's ``normalise``d form: typed with or without marks, in any
normal form."""
_STATES_QUANTITY = re.compile(
    r"[0-9]"
    r"|\b(?:"
    + _exact_words(
        *[
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "twenty",
            "thirty",
            "forty",
            "fifty",
            "sixty",
            "seventy",
            "eighty",
            "ninety",
            "hundred",
            "hundreds",
            "thousand",
            "thousands",
            "million",
            "millions",
            "billion",
            "billions",
            "trillion",
            "trillions",
            "dozen",
            "dozens",
            "twice",
            "thrice",
            "half",
            "third",
            "thirds",
            "quarter",
            "quarters",
            "several",
            "many",
            "few",
            "most",
            "none",
            "majority",
        ],  # English
        *[
            "dua",
            "tiga",
            "empat",
            "lima",
            "enam",
            "tujuh",
            "lapan",
            "delapan",
            "sembilan",
            "sepuluh",
            "sebelas",
            "belas",
            "puluh",
            "ratus",
            "ribu",
            "juta",
            "bilion",
            "miliar",
            "milyar",
            "trilion",
            "triliun",
            "separuh",
            "setengah",
            "beberapa",
            "banyak",
        ],  # Malay, Indonesian
        *[
            "hai",
            "ba",
            "bốn",
            "năm",
            "sáu",
            "bảy",
            "tám",
            "chín",
            "mười",
            "mươi",
            "trăm",
            "nghìn",
            "ngàn",
            "triệu",
            "tỷ",
            "nửa",
            "vài",
            "nhiều",
        ],  # Vietnamese
    )
    + r"|\w+teen)\b"
    + "|"
    + _exact_words(
        *[
            "اثن",
            "ثلاث",
            "أربع",
            "خمس",
            "سبع",
            "ثمان",
            "تسع",
            "عشر",
            "مئ",
            "مائ",
            "ألف",
            "آلاف",
            "مليون",
            "ملايين",
            "مليار",
            "تريليون",
            "نصف",
            "ثلث",
            "ربع",
            "عدة",
            "بضع",
            "ستة",
            "ستين",
            "مرتين",
            "كثير",
            "معظم",
            "أغلب",
        ]  # Arabic (stems)
    )
    + "|[二两三四五六七八九十百千万亿兆半几多]"  # Chinese
)
"""Digits (of any script: ``normalise`` makes them ASCII), or a number or quantity word
of a corpus language, matched on the sentence's ``normalise(fold=False)`` form (the
marks kept: Vietnamese ``sáu`` is six, ``sau`` after); not "one" (one, satu, một,
واحد, 一), which every language also uses as "a"."""


def asks_quantity(question: str) -> bool:
    """Whether the question asks for a quantity (see ``_ASKS_QUANTITY``)."""
    return bool(_ASKS_QUANTITY.search(normalise(question)))


def states_quantity(text: str) -> bool:
    """Whether the text states a quantity (see ``_STATES_QUANTITY``)."""
    return bool(_STATES_QUANTITY.search(normalise(text, fold=False)))


def quoting(question: str, ranked: list[Candidate]) -> list[Candidate]:
    """The candidates an answer to ``question`` may quote: for a quantity question,
    only the sentences that state one (the answer to "how much" states a quantity:
    other sentences cannot be it); otherwise all of them, in their order."""
    if asks_quantity(question):
        return [c for c in ranked if states_quantity(c.sentence.content)]
    return ranked


ABSTENTION_FEATURES = (
    "logit",
    "max_support",
    "max_lat",
    "same",
    "logit*same",
    "max_support*same",
    "max_lat*same",
)
"""The fitted abstention's features (``abstention_features``)."""


def abstention_features(
    columns: dict[str, np.ndarray], probability: np.ndarray, lexical_weight: float
) -> dict[str, np.ndarray]:
    """The fitted abstention's features of one question (arrays of length 1), from
    its candidates' ``SentenceScorer.columns`` and fitted ``probability``: ``logit``
    of the best candidate's probability (clipped to [1e-6, 1 - 1e-6]);
    ``max_support`` = max(cos + ``lexical_weight`` x lex - shift_ref), the evidence
    above the question's similarity to the *reference* mean of the sentence's
    language (not the corpus's: a five-sentence corpus's own mean sits close to any
    question about it); ``max_lat`` = the best latent-terms cosine; ``same`` = the best
    candidate is in the question's language; and the products of the three with
    ``same`` (one rule for same- and cross-language questions)."""
    best = int(np.argmax(probability))
    p = float(np.clip(probability[best], 1e-6, 1 - 1e-6))
    same = float(columns["same_lang"][best])
    support = columns["cos"] + lexical_weight * columns["lex"] - columns["shift_ref"]
    f = {
        "logit": math.log(p / (1 - p)),
        "max_support": float(support.max()),
        "max_lat": float(columns["lat"].max()),
        "same": same,
    }
    for name in ("logit", "max_support", "max_lat"):
        f[f"{name}*same"] = f[name] * same
    return {k: np.array([v]) for k, v in f.items()}


@dataclass
class Decision:
    """Whether to abstain, and why."""

    abstain: bool
    support: float
    """What the threshold is compared with (the eval's ``abstain_score``): with the
    fitted rule, its P(the corpus answers the question); with the hand rule, the
    support of the best statement (of the best minor sentence when no statement is
    left). 0 when no sentence is retrieved."""
    warnings: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    """The sentences an answer may quote, statements first, best first (``quoting``)."""


class Abstention:
    """Decides whether the retrieved passages answer the question (module doc)."""

    def __init__(self, scorer: SentenceScorer, threshold: float | None = None) -> None:
        self.scorer = scorer
        fitted = scorer.fitted
        self.threshold = (
            threshold
            if threshold is not None
            else (fitted.threshold if fitted is not None else HAND_THRESHOLD)
        )
        """Minimum score: ``Settings.abstain_threshold`` when set, else the fitted
        rule's (``AnswerParams.threshold``), else ``HAND_THRESHOLD``."""

    def unknown_identifiers(self, question: str) -> list[str]:
        """Model or product codes the question writes (``identifiers``: ``R2``,
        ``X-900``) that no passage of the corpus contains in any spelling, sorted. The
        index's tokens join ``X900``, ``X-900`` and ``X 900`` into ``x900``; a code the
        corpus writes with a space after a word that is not capitals (``iPhone 15``,
        ``Model 3``) is found by its parts, next to each other in one passage."""
        return sorted(
            k for k in identifiers(question) if k not in self.scorer.idf and not self._apart(k)
        )

    def _apart(self, key: str) -> bool:
        """Whether some passage writes the letters and digits of ``key`` apart
        (``iphone 15`` for ``iphone15``)."""
        parts = _RUNS.findall(key)
        if len(parts) < 2 or any(p not in self.scorer.idf for p in parts):
            return False
        pattern = re.compile(
            r"(?<![^\W_])" + r"[\s\-‐‑/]*".join(map(re.escape, parts)) + r"(?![^\W_])"
        )
        index = self.scorer.index
        return any(
            pattern.search(normalise(index.passages[pid].content))
            for pid in index.lexical.containing(parts)
        )

    def decide(self, question: str, search: SearchResult) -> Decision:
        """The decision for ``question`` over what ``search`` retrieved for it."""
        q_tokens = set(search.query_tokens)
        everything, columns = self.scorer.ranked(q_tokens, search)
        ranked = quoting(question, everything)
        warnings = [
            warning(WarningCode.UNKNOWN_TERM, t) for t in self.unknown_identifiers(question)
        ]
        if not ranked and asks_quantity(question):
            warnings.append(warning(WarningCode.NO_QUANTITY))
        support = self.score(everything, ranked, columns)
        abstain = not ranked or support < self.threshold or bool(warnings)
        return Decision(abstain, support, warnings, ranked)

    def score(
        self,
        everything: list[Candidate],
        ranked: list[Candidate],
        columns: dict[str, np.ndarray] | None,
    ) -> float:
        """What is compared with the threshold (``Decision.support``), from the
        candidates an answer may quote (``ranked``: ``quoting`` of ``everything``,
        whose ``SentenceScorer.columns`` are ``columns``, None with the hand rule)."""
        if not ranked:
            return 0.0
        fitted = self.scorer.fitted
        if fitted is None or columns is None:
            # the evidence of the best statement (of the best minor sentence when there
            # is no statement), however the sentences are ordered
            return max(c.support for c in ranked if c.minor == ranked[0].minor)
        kept = {id(c) for c in ranked}
        mask = np.array([id(c) in kept for c in everything])
        quoted = {k: v[mask] for k, v in columns.items()}
        probability = np.array([c.probability or 0.0 for c in ranked])
        features = abstention_features(quoted, probability, fitted.support_lexical_weight)
        return float(fitted.abstention.probability(features)[0])


def refusal(decision: Decision, lang: str) -> Draft:
    """The answer of an abstention: the abstain message in ``lang``, no citation."""
    return Draft(
        message("abstain", lang), [], True, warnings=decision.warnings, support=decision.support
    )
