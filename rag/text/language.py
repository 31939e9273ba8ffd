"""Language detection (lingua; its models are inside the package: no download)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

LANGUAGES = ("ms", "id", "vi", "ar", "zh", "en")
"""ISO 639-1 codes of the languages we detect; anything else is ``und``."""


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language among LANGUAGES, else ``und`` (also for
    a text without letters). Only the first 4000 characters are read."""
    sample = " ".join(text[:4000].split())
    if not any(ch.isalpha() for ch in sample):
        return "und"
    language = _detector().detect_language_of(sample)
    return language.iso_code_639_1.name.lower() if language is not None else "und"
