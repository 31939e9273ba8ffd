"""One normal form for every comparison of text (never for offsets).

``normalise(text)`` is what BM25 tokens, sentence scoring, the quantity and identifier
checks, follow-up entities and corroboration compare. Offsets keep indexing the raw
file: segmentation (rag/text/segment.py) runs on the raw text and each word or
sentence is normalised on its own.

The steps, in order:

1. Superscript and subscript digits become separate digits (``wall¹`` -> ``wall 1``:
   a footnote marker must not glue onto its word), then Unicode NFKC (full-width
   ``１５００`` -> ``1500``, ligatures, compatibility forms).
2. Full case folding (``str.casefold``: ``Straße`` -> ``strasse``, final sigma ->
   sigma, ``İ`` -> ``i̇``, whose dot step 3 removes).
3. Canonical decomposition (NFD), then removed: format characters (Unicode category
   Cf: ZWSP, ZWNJ, ZWJ, soft hyphen, BOM, LRM/RLM/ALM, bidi controls), variation
   selectors, the generic combining diacritics (U+0300-036F, U+1AB0-1AFF, U+1DC0-1DFF,
   U+20D0-20FF, U+FE20-FE2F: Latin, Greek and Cyrillic accents, so Vietnamese typed
   without tone marks matches the text with them), Arabic tashkeel and tatweel, Hebrew
   points. Marks that spell a letter of their script (Thai and Devanagari vowel signs,
   Japanese dakuten) are kept.
4. Letters without a decomposition folded to a base: ``đ ø ł ı ħ ŧ`` -> ``d o l i h
   t``, ``æ œ`` -> ``ae oe``; Arabic letter forms unified (alef forms -> ا, ى -> ي,
   ة -> ه, Persian ی ک -> ي ك); every decimal digit of any script -> ASCII (``١٥٠٠``
   and ``१५००`` -> ``1500``); Arabic decimal and thousands signs -> ``.`` and ``,``.
5. NFC (recomposes Hangul and the marks kept).

ZWNJ is removed for matching although it spells a difference in Persian
(``می‌خواهم``): both sides of a comparison lose it, so they still meet.

``nfc`` is the form a reader is shown and the embedding model reads (its tokenizer maps
code points one by one, so a decomposed é would reach it as e plus an accent).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["identifier_key", "nfc", "normalise", "normalise_number"]

_SUPER_SUB = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉]+")

_DIACRITICS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_HAMZA = "\u0653-\u0655"
"""Arabic madda and hamza above and below: part of the letter in writing (أ, ؤ, ئ),
left out in much typing."""
_MARKS = (
    "\ufe00-\ufe0f\U000e0100-\U000e01ef\u180b-\u180d"  # variation selectors
    "\u0610-\u061a\u064b-\u0652\u0656-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7"
    "\u06e8\u06ea-\u06ed\u0640"  # Arabic vowel marks (tashkeel), Quranic marks, tatweel
    "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"  # Hebrew points
)
_REMOVED = re.compile(f"[{_DIACRITICS}{_HAMZA}{_MARKS}]")
_REMOVED_EXACT = re.compile(f"[{_MARKS}]")

_FOLDED_LETTERS = {
    "đ": "d",
    "ø": "o",
    "ł": "l",
    "ı": "i",
    "ħ": "h",
    "ŧ": "t",
    "æ": "ae",
    "œ": "oe",
    "ٱ": "ا",
    "ى": "ي",
    "ة": "ه",
    "ی": "ي",
    "ک": "ك",
}
"""Step 4's letters (أ إ آ ؤ ئ need no entry: NFD splits off their hamza or madda,
which step 3 removes)."""
_SIGNS = {"٫": ".", "٬": ","}

_INVISIBLE = re.compile("[\ufeff\u00ad\u200b\u2060]")
"""Characters a reader never sees and that split words for a tokenizer: BOM, soft
hyphen, zero-width space, word joiner. (ZWJ and ZWNJ shape Indic and Persian text, so
``nfc`` keeps them.)"""


@lru_cache(maxsize=2)
def _table(fold: bool = True) -> dict[int, str]:
    """Step 4 as a translation table, with every format character (Cf) removed and
    every decimal digit mapped to ASCII (built once, about 0.1 s); ``fold``: with the
    Latin letters folded."""
    letters = {**_SIGNS, **_FOLDED_LETTERS} if fold else _SIGNS
    table: dict[int, str] = {ord(k): v for k, v in letters.items()}
    for code in range(0x80, 0x110000):
        ch = chr(code)
        category = unicodedata.category(ch)
        if category == "Cf":
            table[code] = ""
        elif category == "Nd":
            table[code] = str(unicodedata.decimal(ch))
    return table


def _spaced(match: re.Match[str]) -> str:
    return f" {match.group()} "


def normalise(text: str, fold: bool = True) -> str:
    """The matching form of ``text`` (see the module docstring). Idempotent:
    ``normalise(normalise(t)) == normalise(t)``. The result may be shorter or longer
    than ``text``; it never indexes the raw file.

    ``fold=False`` keeps what spells a letter: the diacritics of Latin, Greek and
    Cyrillic letters, ``đ ø ł ...``, Arabic hamza and madda (``أ ؤ ئ``) and letter
    forms (``ى ة``); it still removes Arabic vowel marks, tatweel and Hebrew points,
    folds case and width and makes digits ASCII. For words whose marks tell them apart
    (Vietnamese ``sáu`` six, ``sau`` after; Arabic ``مئة`` hundred, ``مية``), where the
    other side of the comparison is the document's own text, not what a user typed."""
    if text.isascii():
        return text.lower()  # what every step below makes of ASCII
    if _SUPER_SUB.search(text):
        text = _SUPER_SUB.sub(_spaced, text)
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    removed = _REMOVED if fold else _REMOVED_EXACT
    return unicodedata.normalize("NFC", removed.sub("", text).translate(_table(fold)))


def nfc(text: str) -> str:
    """``text`` as a reader sees it and the embedding model reads it: NFC, without
    BOM, soft hyphens, zero-width spaces and word joiners."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text))


_THOUSANDS = re.compile(r"\d{1,3}(?:([,.'\u00a0\u202f\u2009 ])\d{3})(?:\1\d{3})*")
_INDIAN = re.compile(r"\d{1,2}(?:,\d{2})+,\d{3}")


def normalise_number(token: str) -> str:
    """A number in one form: grouping separators dropped when every group after the
    first has three digits (``600,000`` ``600.000`` ``600 000`` -> ``600000``; Indian
    ``6,00,000`` -> ``600000``); otherwise unchanged (``1.5``, ``1,5``, ``3.14159``).
    Expects ASCII digits (a normalised token). ``1.500`` is read as fifteen hundred,
    as German, Vietnamese and Indonesian write it."""
    if _THOUSANDS.fullmatch(token) or _INDIAN.fullmatch(token):
        return re.sub(r"\D", "", token)
    return token


_ID_PARTS = re.compile(r"[^\W_]+")


def identifier_key(text: str) -> str:
    """The key of a product or model code, whatever joins its parts: ``X900``,
    ``X-900``, ``x 900``, ``X‑900`` and ``ｘ９００`` all give ``x900``; ``GPT-4o``
    gives ``gpt4o``. Normalised, with every run of other characters removed."""
    return "".join(_ID_PARTS.findall(normalise(text)))
