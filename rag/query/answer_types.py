"""Answer types: what a question asks for, and what a sentence states, in any language.

The question side is a classifier on the question's embedding (the vector retrieval
already made: nothing is embedded twice): a multinomial logistic regression fitted on
XQuAD's questions in four languages by bench/fit_answer_types.py (`make
fit-answer-types`), whose coefficients ship in rag/query/answer_types.json with the
embedding model they belong to, the data and the cross-validated accuracy by language.
Five types (``TYPES``): a person, a time, a place or other named entity, a quantity
(count or amount), anything else. No word list of any language is involved at query
time, and a question in a language XQuAD lacks is classified from its vector alike.

The sentence side (``statements``) is read from Unicode properties only:

- numbers in any script's decimal digits (ASCII, Arabic-Indic, full-width, ...) with
  their thousands and decimal separators dropped (``2,100`` and ``2100`` and
  ``２１００`` are one number), and runs of numeric ideographs (三百);
- a *time*: a year (four digits, 1000-2100, written without separators, not next to a
  currency sign or a percent sign) or a date (numbers joined by ``-``, ``/`` or ``.``
  in the shape of a date: one of them a year, or three short ones);
- a *quantity*: any other number (money and units included: ``$6 million``, ``45%``);
- *names*: words that begin with a capital letter, other than the sentence's first,
  in scripts that have case; a sentence in a script without case has ``names=None``
  (unknown), and the scorer alone decides for it.

Numbers and names the question itself contains are not counted (a sentence does not
answer "how many beds in 2004?" by repeating 2004).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rag.query.params import fitted_file
from rag.text.normalise import normalise_number

PARAMS = "answer_types.json"
"""The fitted classifier, beside this module."""

TYPES = ("person", "time", "entity", "quantity", "other")
"""Answer types: a person; a time (year, date, period); a place or another named
entity; a quantity (a count or an amount: money, share, measure); anything else."""

_SEPARATORS = frozenset(",.'\u066b\u066c\u00a0\u202f\u2009\u2019")
"""Characters allowed between two digits of one number (compared in NFKC, so their
full-width forms too): thousands and decimal marks of Latin and Arabic scripts (``,``
``.`` ``'`` U+066B U+066C), no-break and thin spaces."""

_SHARES = frozenset("%\u066a\u2030\uff05")
"""Percent and per-mille signs (ASCII, Arabic, full-width)."""

_DATE_JOINERS = frozenset("-/.\u2010\u2011\u2212")
"""Characters that join the parts of a numeric date (2024-05-01, 01/05/2024, 1.5.2024)."""


@dataclass(frozen=True)
class Number:
    """A number as written: its digits normalised, and where it is."""

    digits: str
    """ASCII digits, grouping separators dropped (``2,100`` -> ``2100``) and a decimal
    one kept (``1.5``), as ``rag.text.normalise.normalise_number`` reads them; a run of numeric
    ideographs as their values joined by ``+`` (三百 -> ``3+100``): enough to compare."""
    start: int
    end: int
    """``[start, end)`` in the text."""
    separated: bool
    """Written with a separator between its digits (``2,100``, ``1.5``)."""


_AS_ASCII = {"\u066b": ".", "\u066c": ","}
"""Arabic decimal and thousands separators, as ``normalise_number`` reads them."""


def _decimal(ch: str) -> int | None:
    value = unicodedata.decimal(ch, -1)
    return value if value >= 0 else None


def numbers(text: str) -> list[Number]:
    """The numbers of ``text`` in any script (see ``Number``). The value 1 written as
    an ideograph (一) is left out: every such script also uses it as the article."""
    out: list[Number] = []
    i, n = 0, len(text)
    while i < n:
        d = _decimal(text[i])
        if d is not None:
            written = [str(d)]
            separated = False
            j = i + 1
            while j < n:
                dj = _decimal(text[j])
                if dj is not None:
                    written.append(str(dj))
                    j += 1
                elif (
                    (mark := unicodedata.normalize("NFKC", text[j])) in _SEPARATORS
                    and j + 1 < n
                    and _decimal(text[j + 1]) is not None
                ):
                    separated = True
                    written.append(_AS_ASCII.get(mark, mark))
                    j += 1
                else:
                    break
            out.append(Number(normalise_number("".join(written)), i, j, separated))
            i = j
            continue
        value = unicodedata.numeric(text[i], -1.0)
        if value >= 0 and value != 1 and unicodedata.category(text[i]) == "Lo":
            values = []
            j = i
            while j < n and unicodedata.numeric(text[j], -1.0) >= 0 and _decimal(text[j]) is None:
                values.append(f"{unicodedata.numeric(text[j]):g}")
                j += 1
            out.append(Number("+".join(values), i, j, False))
            i = j
            continue
        i += 1
    return out


def _marked(text: str, number: Number) -> bool:
    """Whether a currency sign or a percent/per-mille sign touches the number (white
    space between allowed): money and shares are amounts, never years."""
    before = text[: number.start].rstrip()[-1:]
    after = text[number.end :].lstrip()[:1]
    return any(c and (unicodedata.category(c) == "Sc" or c in _SHARES) for c in (before, after))


def is_year(text: str, number: Number) -> bool:
    """A year: four ASCII-valued digits from 1000 to 2100, written without separators
    and not as money or a share (``is_year`` of "2,100 staff" is False, of "in 2100"
    True)."""
    d = number.digits
    return (
        len(d) == 4
        and d.isdigit()
        and 1000 <= int(d) <= 2100
        and not number.separated
        and not _marked(text, number)
    )


def _dates(text: str, found: list[Number]) -> set[int]:
    """Indexes (into ``found``) of the numbers that are parts of a numeric date: two or
    three numbers joined by one kind of ``_DATE_JOINERS`` with nothing else between,
    one of them a year (2024-05-01, 05/2024), or three of at most two digits (1/5/24).
    A score (3-1) or a fraction (3/4) is not a date."""
    parts: set[int] = set()
    i = 0
    while i < len(found):
        group = [i]
        joiner = ""
        j = i
        while j + 1 < len(found):
            between = text[found[j].end : found[j + 1].start]
            if len(between) != 1 or between not in _DATE_JOINERS or (joiner and between != joiner):
                break
            joiner = between
            group.append(j + 1)
            j += 1
        if 2 <= len(group) <= 3:
            nums = [found[k] for k in group]
            year = any(is_year(text, x) for x in nums)
            short = all(len(x.digits) <= 2 and x.digits.isdigit() for x in nums)
            if (year or (short and len(nums) == 3)) and not any(x.separated for x in nums):
                parts.update(group)
        i = group[-1] + 1
    return parts


_WORD = re.compile(r"[^\W\d_]\w*")


def _cased(word: str) -> bool:
    """Whether the word's script has case (its first letter changes under upper or
    lower casing)."""
    c = word[0]
    return c.lower() != c.upper()


def names(text: str) -> frozenset[str] | None:
    """The casefolded words of ``text`` that begin with a capital letter, other than its
    first word; None when the text has no word of a cased script (Arabic, Chinese, Thai:
    unknown, not "no names")."""
    words = _WORD.findall(text)
    if not any(_cased(w) for w in words):
        return None
    return frozenset(w.casefold() for w in words[1:] if w[0].isupper())


@dataclass(frozen=True)
class Statements:
    """What a sentence states that its question does not already say."""

    quantities: frozenset[str]
    """Numbers that are not times (normalised digits)."""
    times: frozenset[str]
    """Years and the numbers of dates."""
    names: frozenset[str] | None
    """Capitalised words (casefolded); None in a script without case."""
    words: frozenset[str] = frozenset()
    """Every word (casefolded): what a question's statements subtract from a
    sentence's names."""

    @property
    def numbers(self) -> frozenset[str]:
        """Every number, time or quantity."""
        return self.quantities | self.times

    def without(self, asked: Statements) -> Statements:
        """These statements less what ``asked`` (a question's ``statements``) already
        says: its numbers, and its words (``asked.words``)."""
        said = self.names
        if said is not None and asked.words:
            said = said - asked.words
        drop = asked.numbers
        return Statements(self.quantities - drop, self.times - drop, said)


def statements(text: str, question: str = "") -> Statements:
    """What ``text`` states (module doc), less the numbers and words of ``question``."""
    found = numbers(text)
    dated = _dates(text, found)
    times: set[str] = set()
    quantities: set[str] = set()
    for k, x in enumerate(found):
        (times if k in dated or is_year(text, x) else quantities).add(x.digits)
    words = frozenset(w.casefold() for w in _WORD.findall(text))
    said = Statements(frozenset(quantities), frozenset(times), names(text), words)
    return said.without(statements(question)) if question else said


def agree(a: Statements, b: Statements, compare_names: bool = True) -> bool:
    """Whether two sentences can state the same fact: their numbers agree (one's set
    within the other's, so a translation that spells a number as a word still agrees;
    "45 beds" and "640 beds" do not) and, with ``compare_names``, their names share
    one where both state names (in one language: across two, names are translated
    or re-cased)."""
    na, nb = a.numbers, b.numbers
    if not (na <= nb or nb <= na):
        return False
    return not (compare_names and a.names and b.names and not a.names & b.names)


def mismatch(expected: dict[str, float], stated: Statements) -> float:
    """The probability that a sentence lacks what its question asks for: P(quantity)
    when it states no quantity (a year is not a count), plus P(time) when it states no
    time, plus P(person) when it states no name (only where names can be read); in
    [0, 1]."""
    out = 0.0
    if not stated.quantities:
        out += expected.get("quantity", 0.0)
    if not stated.times:
        out += expected.get("time", 0.0)
    if stated.names is not None and not stated.names:
        out += expected.get("person", 0.0)
    return out


@dataclass(frozen=True)
class AnswerTypes:
    """The fitted classifier: P(type | question vector) = softmax(W v + b)."""

    classes: tuple[str, ...]
    weights: np.ndarray
    """(classes, dim) float32."""
    bias: np.ndarray
    """(classes,) float32."""
    embedding_model: str

    def expected(self, vector: np.ndarray) -> dict[str, float]:
        """The probability of each type for a question of unit ``vector`` (the
        question's embedding by ``embedding_model``)."""
        logits = self.weights @ np.asarray(vector, dtype=np.float32) + self.bias
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {c: float(x) for c, x in zip(self.classes, p, strict=True)}


@lru_cache(maxsize=4)
def load_answer_types(model: str) -> AnswerTypes | None:
    """The fitted classifier (rag/query/answer_types.json) when it was fitted on
    embeddings of ``model`` (``rag.index.embedding.model_id``), else None: another
    model's vectors mean nothing to it, and the answerer then prefers no type."""
    data = fitted_file(PARAMS, model)
    if data is None:
        return None
    return AnswerTypes(
        tuple(data["classes"]),
        np.asarray(data["coef"], dtype=np.float32),
        np.asarray(data["intercept"], dtype=np.float32),
        model,
    )
