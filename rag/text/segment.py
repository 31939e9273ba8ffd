"""Sentences and words, for every corpus language.

**Sentences** (``split_sentences``) end at a line break, or at a terminator followed
by space: ``. ! ? …`` (Latin scripts, unless a lower-case letter follows, as after
"Inc."), ``؟ ۔`` (Arabic, Urdu), and ``。！？`` (Chinese, no space needed). A list
number ("1." or "a)") opening a line does not end a sentence.

**Words** (``tokenize``, the search tokens of BM25 and of sentence scoring), after
``normalise`` (rag/text/normalise.py: NFKC, case folding, Arabic folding):

- Arabic: the article and its common clitics (ال، وال، بال، كال، فال، لل) stripped
  from words long enough to keep a stem.
- Chinese (and other CJK ideographs): overlapping character bigrams.
- Numbers kept whole ("600,000" -> "600000", "1.5" stays), Latin-script names and
  model names kept whole as letters-and-digits runs ("DeepSeek", "v3", "h800").
"""

from __future__ import annotations

import re

from rag.text.normalise import normalise
from rag.types import Span

_CLOSERS = re.escape("\"'”’)]»」』›")
_LATIN_END = re.compile(rf"[.!?…]+[{_CLOSERS}]*(?=\s|$)")
_ARABIC_END = re.compile(rf"[؟۔]+[{_CLOSERS}]*")
_CJK_END = re.compile(rf"[。！？]+[{_CLOSERS}]*")
_NUMBERED = re.compile(r"^\W*(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})\W*$")

_AR_PREFIX = re.compile(r"^(?:وال|بال|كال|فال|لل|ال)(?=\S{3,})")
_CJK = r"\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"
_TOKEN = re.compile(
    rf"(?P<num>\d+(?:[.,]\d+)*)|(?P<cjk>[{_CJK}]+)|(?P<word>[^\W\d_{_CJK}](?:[^\W_{_CJK}])*)"
)
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")


def trim(text: str, start: int, end: int) -> Span | None:
    """``(start, end)`` narrowed to exclude surrounding white space; None if nothing
    but space is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _line_breaks(plain: str, start: int, end: int) -> list[int]:
    """Candidate sentence ends inside one line of ``plain``."""
    cuts: list[int] = []
    for match in _LATIN_END.finditer(plain, start, end):
        following = plain[match.end() : match.end() + 2].lstrip()[:1]
        if following and following.isalpha() and following.islower():
            continue  # "OpenAI Inc. hingga", "e.g. the"
        cuts.append(match.end())
    cuts += [m.end() for m in _ARABIC_END.finditer(plain, start, end)]
    cuts += [m.end() for m in _CJK_END.finditer(plain, start, end)]
    return sorted(set(cuts))


def split_sentences(plain: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``plain[start:end]`` (absolute offsets into ``plain``),
    trimmed of surrounding space; see the module docstring for the rules."""
    end = len(plain) if end is None else end
    spans: list[Span] = []
    line_start = start
    while line_start < end:
        newline = plain.find("\n", line_start, end)
        line_end = end if newline < 0 else newline
        sent_start = line_start
        for cut in _line_breaks(plain, line_start, line_end):
            if _NUMBERED.match(plain[sent_start:cut].strip()):
                continue  # "1." or "a)" opening a list item is not a sentence
            span = trim(plain, sent_start, cut)
            if span:
                spans.append(span)
            sent_start = cut
        span = trim(plain, sent_start, line_end)
        if span:
            spans.append(span)
        line_start = line_end + 1
    return spans


def tokenize(text: str) -> list[str]:
    """Search tokens of ``text``, in order (see the module docstring for the rules)."""
    text = normalise(text)
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
