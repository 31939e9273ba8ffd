"""Does the corpus answer this question? The pipeline's step between retrieval and
the answerer (rag/query/pipeline.py): when it abstains, no answerer runs, and the
answer says so in the question's language and cites nothing.

It abstains (``Abstention.decide``) when

- the best statement's support (its evidence above the question's baseline similarity
  to the corpus, rag/query/sentences.py ``Candidate.support``) is below
  ``Settings.abstain_threshold``;
- the question asks for a quantity ("how many", "berapa", "bao nhiêu", "كم", 多少)
  and no retrieved sentence states one (digits or number words): warning
  ``no_quantity``;
- the question names a model or product (letters with digits, like "R2") that no
  passage of the corpus contains: warning ``unknown_term: r2``.

A quantity question is answered only from sentences that state a quantity, so the
candidates it passes on are those (``quoting``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from rag.query.sentences import Candidate, SentenceScorer
from rag.text.segment import tokenize
from rag.types import Draft, SearchResult, WarningCode, warning


@lru_cache(maxsize=1)
def messages() -> dict[str, dict[str, str]]:
    """The service's messages by kind and language (rag/prompts/messages.json)."""
    text = resources.files("rag.prompts").joinpath("messages.json").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


def message(kind: str, lang: str) -> str:
    """The service's message ``kind`` (``abstain``) in language ``lang``, else in
    English (rag/prompts/messages.json)."""
    table = messages()[kind]
    return table.get(lang, table["en"])


_IDENTIFIER = re.compile(r"^(?=.*[a-z])(?=.*\d)[a-z0-9]+$")

_ASKS_QUANTITY = re.compile(
    r"\bhow (?:many|much)\b|\bwhat (?:percentage|proportion)\b"  # English
    r"|\bberapa(?:kah)?\b"  # Malay, Indonesian
    r"|\bbao nhiêu\b"  # Vietnamese
    r"|(?<!\S)كم(?!\S)"  # Arabic
    r"|多少",  # Chinese
    re.IGNORECASE,
)
"""Questions whose answer is a quantity ("how much", "berapa", "bao nhiêu", "كم", 多少)."""
_STATES_QUANTITY = re.compile(
    r"[0-9\u0660-\u0669]"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen"
    r"|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?"
    r"|millions?|billions?|trillions?|dozens?|twice|thrice|half|thirds?|quarters?"
    r"|several|many|few|most|none|majority"  # English
    r"|dua|tiga|empat|lima|enam|tujuh|lapan|delapan|sembilan|sepuluh|sebelas|belas"
    r"|puluh|ratus|ribu|juta|bilion|miliar|milyar|trilion|triliun|separuh|setengah"
    r"|beberapa|banyak"  # Malay, Indonesian
    r"|hai|ba|bốn|năm|sáu|bảy|tám|chín|mười|mươi|trăm|nghìn|ngàn|triệu|tỷ|nửa"
    r"|vài|nhiều)\b"  # Vietnamese
    r"|اثن|ثلاث|أربع|خمس|سبع|ثمان|تسع|عشر|مئ|مائ|ألف|آلاف|مليون|ملايين|مليار"
    r"|تريليون|نصف|ثلث|ربع|عدة|بضع|ستة|ستين|مرتين|كثير|معظم|أغلب"  # Arabic
    r"|[二两三四五六七八九十百千万亿兆半几多]",  # Chinese
    re.IGNORECASE,
)
"""Digits (Latin or Arabic-Indic), or a number or quantity word of a corpus language;
not "one" (one, satu, một, واحد, 一), which every language also uses as "a"."""


def asks_quantity(question: str) -> bool:
    """Whether the question asks for a quantity (see ``_ASKS_QUANTITY``)."""
    return bool(_ASKS_QUANTITY.search(question))


def states_quantity(text: str) -> bool:
    """Whether the text states a quantity (see ``_STATES_QUANTITY``)."""
    return bool(_STATES_QUANTITY.search(text))


def quoting(question: str, ranked: list[Candidate]) -> list[Candidate]:
    """The candidates an answer to ``question`` may quote: for a quantity question,
    only the sentences that state one (the answer to "how much" states a quantity:
    other sentences cannot be it); otherwise all of them, in their order."""
    if asks_quantity(question):
        return [c for c in ranked if states_quantity(c.sentence.text)]
    return ranked


@dataclass
class Decision:
    """Whether to abstain, and why."""

    abstain: bool
    support: float
    """Support of the best statement (of the best minor sentence when no statement is
    left; 0 when no sentence is): compared with ``Settings.abstain_threshold``."""
    warnings: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    """The sentences an answer may quote, statements first, best first (``quoting``)."""


class Abstention:
    """Decides whether the retrieved passages answer the question (module doc)."""

    def __init__(self, scorer: SentenceScorer, threshold: float) -> None:
        self.scorer = scorer
        self.threshold = threshold
        """Minimum support (``Settings.abstain_threshold``, calibrated on the dev set)."""

    def unknown_identifiers(self, q_tokens: Collection[str]) -> list[str]:
        """Model or product names among the question's tokens (letters with digits)
        that no passage of the corpus contains, sorted."""
        return sorted(t for t in q_tokens if _IDENTIFIER.match(t) and t not in self.scorer.idf)

    def decide(self, question: str, search: SearchResult) -> Decision:
        """The decision for ``question`` over what ``search`` retrieved for it."""
        q_tokens = set(tokenize(question))
        ranked = quoting(question, self.scorer.candidates(q_tokens, search))
        warnings = [
            warning(WarningCode.UNKNOWN_TERM, t) for t in self.unknown_identifiers(q_tokens)
        ]
        if not ranked and asks_quantity(question):
            warnings.append(warning(WarningCode.NO_QUANTITY))
        # the evidence of the best statement (of the best minor sentence when there is
        # no statement), however the sentences are ordered
        support = max((c.support for c in ranked if c.minor == ranked[0].minor), default=0.0)
        abstain = not ranked or support < self.threshold or bool(warnings)
        return Decision(abstain, support, warnings, ranked)


def refusal(decision: Decision, lang: str) -> Draft:
    """The answer of an abstention: the abstain message in ``lang``, no citation."""
    return Draft(
        message("abstain", lang), [], True, warnings=decision.warnings, support=decision.support
    )
