"""Follow-ups condensed into standalone questions, in any language and with no word
lists.

A follow-up ("How many beds does it have?", "Phòng khám đó có bao nhiêu giường
bệnh?", "它有多深？") depends on the conversation when it names no subject of its own.
It then carries the subject of the latest earlier question that named one (never one
older: after "Who founded Tessaro Robotics?", "What is the capital of Peru?" stands
alone, and "How many people live there?" is about Peru), put in front of it as a
sentence of its own (``carry``): "Lakeside Clinic. Phòng khám đó có bao nhiêu giường
bệnh?".

**Names** (``names``, ``subject``) are found by the shape of words, not by lists of
them: identifiers (letters with digits: "V3", "H800", "X7"), words with a capital
inside ("DeepSeek"), and, in scripts with case (Latin, Cyrillic, Greek, ...),
capitalised words that do not open a sentence ("Tell me about Kestrel Bridge", "Chợ
Bến Xưa"), or that open one whose cased words are all capitalised ("Peru.", "Kestrel
Bridgeについて..."); a letter alone ("I") is none. Scripts without case (Arabic,
Chinese, Japanese, Thai) mark no names: a question in them names nothing of its own
unless it writes a name in a cased script ("ما هو Orion X7؟"), and a subject written
in them is not carried (such a follow-up is asked as it is). German capitalises every
noun, so its questions name something ("Menschen") and its follow-ups seldom carry.
Tokens that the corpus knows and that are rare in it were tried as names too, and
rejected: in a small corpus every word is rare ("itu", "for", "il" were names), so
follow-ups stopped carrying and wrong words were carried.

**Relatedness** (``FollowUps.related``): a question that names nothing may still be
about something else ("How do I bake bread?" after "What was DeepSeek V3?"). It
carries only when its embedding is close enough to the earlier question's: the cosine
of the two vectors, each less the mean vector of questions, at least a threshold.
Both are fitted by ``bench/fit_condense.py`` (``make fit-condense``) on XQuAD and
stored in ``condense.json`` next to this module, for the embedding model they were
fitted with; with any other model the test is off and a question that names nothing
always carries. It costs the follow-up's own embedding (the earlier question's is
cached).

Measured on the follow-up conversations of ``evals/followups`` (``make
bench-followups``): docs/benchmarks.md, "Follow-ups".
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rag.query.llm import prompt
from rag.query.params import fitted_file

log = logging.getLogger("rag.chat")

PARAMS = "condense.json"
"""The fitted figures of ``Relatedness`` (``bench/fit_condense.py``), in rag/query/."""

_OPENERS = "¿¡«\"'“‘„(（[「『【〈《‹ \t\r\n-–—"
"""What may stand between a sentence's end and its first word."""
_SENTENCE_ENDS = ".!?。！？؟…:;"
CONNECTOR = 3
"""Letters of a lower-case word that may join two names into one ("de", "of", "van")."""
_JOINERS = " -'’·"
"""What may stand between two words of one name ("Kestrel Bridge", "Saint-Denis")."""


@lru_cache(maxsize=65536)
def script(ch: str) -> str:
    """The script of a character, from its Unicode name ("LATIN", "CYRILLIC",
    "ARABIC", "THAI", ...; Chinese ideographs and Japanese kana are all "CJK");
    "digit" for a digit, "mark" for a combining mark (it belongs to its base)."""
    if ch.isdigit():
        return "digit"
    if unicodedata.category(ch)[0] == "M":
        return "mark"
    first = unicodedata.name(ch, "OTHER").split()[0]
    return "CJK" if first in ("CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC") else first


def _in_word(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


@dataclass(frozen=True)
class Word:
    """A run of letters, marks and digits of one script in a text."""

    text: str
    start: int
    end: int
    """Offsets in the text (characters)."""
    opens_sentence: bool
    """Nothing but opening punctuation between it and the text's start or the end of
    a sentence."""

    @property
    def cased(self) -> bool:
        """Whether its script has upper and lower case (its first letter does)."""
        first = next((c for c in self.text if c.isalpha()), "")
        return bool(first) and first.lower() != first.upper()

    @property
    def capitalised(self) -> bool:
        """Whether it begins with a capital letter."""
        return self.cased and self.text[0].isupper()


def words(text: str) -> list[Word]:
    """The words of ``text``: runs of letters, marks and digits, cut where the script
    changes ("介绍一下Lake" is two words, "X7" one; digits and marks join the run they
    are in)."""
    out: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if not _in_word(text[i]):
            i += 1
            continue
        start, run = i, ""
        while i < n and _in_word(text[i]):
            s = script(text[i])
            if s not in ("mark", "digit"):
                if not run:
                    run = s
                elif s != run:
                    break
            i += 1
        before = text[:start].rstrip(_OPENERS)
        out.append(Word(text[start:i], start, i, not before or before[-1] in _SENTENCE_ENDS))
    return out


def is_name(word: Word) -> bool:
    """Whether a word is a name by its shape: letters with digits, a capital inside,
    or a capital first letter where a sentence does not open (module doc)."""
    letters = sum(1 for c in word.text if c.isalpha())
    if letters == 0 or (letters == 1 and len(word.text) == 1):
        return False  # a number is not a name, nor a letter alone ("I", "a")
    if any(c.isdigit() for c in word.text):
        return True
    if not word.cased:
        return False
    return any(c.isupper() for c in word.text[1:]) or (word.capitalised and not word.opens_sentence)


def names(text: str) -> list[Word]:
    """The words of ``text`` that are names (``is_name``), and every word of a
    sentence whose words in cased scripts are all capitalised: a name standing alone,
    or before words of a script without case ("Kestrel Bridge. How long is it?",
    "Kestrel Bridgeについて教えてください。"), whose first word opens the sentence."""
    found = words(text)
    out: list[Word] = []
    sentence: list[Word] = []
    for i, word in enumerate(found):
        sentence.append(word)
        following = found[i + 1] if i + 1 < len(found) else None
        if following is not None and not following.opens_sentence:
            continue
        cased = [w for w in sentence if w.cased]
        titled = bool(cased) and all(w.capitalised for w in cased)
        out += [w for w in sentence if is_name(w) or (titled and w.cased)]
        sentence = []
    return out


def subject(text: str) -> str:
    """The names of ``text`` as written, in order: the words of one name joined as
    they stand, with a short lower-case word between two of them ("Lakeside Clinic",
    "DeepSeek V3", "Faro de Punta Celeste"), separate names by a space; empty when it
    names nothing."""
    spans: list[list[int]] = []
    for word in names(text):
        between = text[spans[-1][1] : word.start] if spans else ""
        inner = between.strip(_JOINERS)
        if spans and (
            not inner
            or (len(inner) <= CONNECTOR and inner.isalpha() and inner.islower() and " " in between)
        ):
            spans[-1][1] = word.end
        else:
            spans.append([word.start, word.end])
    return " ".join(text[s:e] for s, e in spans)


def carry(subject_text: str, question: str) -> str:
    """The standalone question: the carried subject as a sentence of its own, then
    the question ("Lakeside Clinic. How many beds does it have?"). In front, not in
    parentheses after: on the seeds, "Where is it headquartered? (DeepSeek)" has
    support 0.048 and abstains, "DeepSeek. Where is it headquartered?" 0.087 and
    quotes the sentence that says Hangzhou (the appended name pulls the question
    towards every sentence about DeepSeek and lifts the baseline support is measured
    from)."""
    return f"{subject_text}. {question}"


@dataclass(frozen=True)
class Relatedness:
    """Whether a question is about the same thing as an earlier one, by their
    embeddings (module doc): cosine of the two vectors less ``centre`` at least
    ``threshold``."""

    centre: np.ndarray
    """Mean vector of questions (XQuAD's 4,760 questions in en, ar, vi, zh)."""
    threshold: float
    """Fitted on XQuAD (``bench/fit_condense.py``); unitless cosine."""
    model: str
    """The embedding model (``model_id``) both were fitted with."""

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine of ``a`` and ``b``, each less ``centre``."""
        x, y = a - self.centre, b - self.centre
        norm = float(np.linalg.norm(x) * np.linalg.norm(y))
        return float(x @ y) / norm if norm > 0 else 0.0


def load_relatedness(model: str) -> Relatedness | None:
    """The fitted ``Relatedness`` (rag/query/condense.json) when it was fitted with
    embedding ``model``, else None (the test is then off)."""
    data = fitted_file(PARAMS, model)
    if data is None:
        return None
    return Relatedness(
        np.asarray(data["question_centre"], dtype=np.float32),
        float(data["relatedness_threshold"]),
        model,
    )


class FollowUps:
    """Condenses follow-ups without an LLM (module doc). ``embed``: a question's
    vector (the retriever's cached ``embed_query``); ``relatedness``: the fitted test
    for the embedding's model, or None to carry whenever a question names nothing."""

    def __init__(
        self,
        embed: Callable[[str], np.ndarray] | None = None,
        relatedness: Relatedness | None = None,
    ) -> None:
        self.embed = embed
        self.relatedness = relatedness if embed is not None else None

    def related(self, question: str, earlier: str) -> bool:
        """Whether ``question`` is about what ``earlier`` is (always, without a fitted
        test). Costs the question's embedding; the earlier one is usually cached."""
        if self.relatedness is None or self.embed is None:
            return True
        similarity = self.relatedness.similarity(self.embed(question), self.embed(earlier))
        return similarity >= self.relatedness.threshold

    def standalone(self, question: str, history: Sequence[str]) -> str:
        """``question`` as a standalone question, given the conversation's earlier
        standalone questions ``history`` (oldest first): unchanged when it names a
        subject of its own, when no earlier question named one, or when it is not
        related to the latest that did; else that subject, then the question
        (``carry``)."""
        if not history or names(question):
            return question
        for earlier in reversed(history):
            carried = subject(earlier)
            if carried:
                if not self.related(question, earlier):
                    return question
                return carry(carried, question)
        return question

    def standalone_history(self, messages: Sequence[str]) -> list[str]:
        """Earlier user messages (oldest first) as standalone questions, each condensed
        against the ones before it (the OpenAI-compatible route, whose clients send
        the conversation instead of an id)."""
        out: list[str] = []
        for message in messages:
            out.append(self.standalone(message, out))
        return out


class Condenser:
    """Standalone questions: by ``llm`` (a llama-index LLM, or None) when one is
    configured, in the question's language; else, or when it fails or answers with
    nothing or more than ``max_chars`` characters, by ``followups`` (``FollowUps``;
    default: one without an embedding)."""

    def __init__(self, llm: Any, max_chars: int, followups: FollowUps | None = None) -> None:
        self.llm = llm
        self.max_chars = max_chars
        self.followups = followups or FollowUps()

    def standalone(self, question: str, history: Sequence[str]) -> str:
        """``question`` as a standalone question, given the conversation's earlier
        standalone questions ``history`` (oldest first; the last six go to an LLM)."""
        history = list(history)
        if self.llm is None or not history:
            return self.followups.standalone(question, history)
        from llama_index.core.llms import ChatMessage, MessageRole

        text = prompt("condense.txt").format(
            history="\n".join(f"- {h}" for h in history[-6:]), question=question
        )
        try:
            reply = self.llm.chat([ChatMessage(role=MessageRole.USER, content=text)])
        except Exception as exc:  # the heuristic is always there
            log.warning("LLM condense failed (%s); carrying the subject over", exc)
            return self.followups.standalone(question, history)
        standalone = " ".join(str(reply.message.content or "").split())
        if not standalone or len(standalone) > self.max_chars:
            return self.followups.standalone(question, history)
        return standalone
