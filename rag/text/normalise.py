"""The normalisation text comparisons use.

- ``normalise``: Unicode NFKC and case folding, then Arabic folding
  (``normalize_arabic``): the form search tokens are cut from (rag/text/segment.py).
- ``normalize_arabic``: diacritics and tatweel removed; alef forms (أ إ آ ٱ) -> ا,
  ى -> ي, ة -> ه, ؤ -> و, ئ -> ي.
- ``fold_content``: what is embedded and searched of a passage or sentence: HTML
  entities decoded (for HTML files), runs of white space folded to one space.
"""

from __future__ import annotations

import html
import re
import unicodedata

_AR_DIACRITICS = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0640]")
_AR_MAP = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
)


def normalize_arabic(text: str) -> str:
    """Arabic letters folded (see the module docstring); other scripts unchanged."""
    return _AR_DIACRITICS.sub("", text).translate(_AR_MAP)


def normalise(text: str) -> str:
    """NFKC, case folding and Arabic folding: the form words are compared in."""
    return normalize_arabic(unicodedata.normalize("NFKC", text).casefold())


def fold_content(plain: str, kind: str) -> str:
    """The text to embed and search: markup gone, entities decoded, spaces folded.
    ``plain`` is a document's text with markup blanked out; ``kind`` its kind
    (``html`` decodes entities)."""
    text = html.unescape(plain) if kind == "html" else plain
    return " ".join(text.split())
