"""The XQuAD cross-lingual benchmark: ``rag eval --xquad QLANG:PLANG``.

XQuAD (SQuAD v1.1 JSON; 240 paragraphs and 1190 questions, the same in every
language) is read from ``settings.xquad_dir`` (never copied into the repository).
The paragraphs of PLANG become a corpus of their own, one file per paragraph under
``var/xquad/PLANG/`` with its own index (the embedding cache is shared, so a second
run embeds nothing); the questions are asked in QLANG. A retrieval is right when
the retrieved paragraph is the one holding the gold answer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError

LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
DEPTH = 10
"""Distinct paragraphs ranked per question (recall@10 needs ten)."""


@dataclass(frozen=True)
class Paragraph:
    """A context paragraph of XQuAD: ``pid`` is ``p<article>-<paragraph>``."""

    pid: str
    context: str


@dataclass(frozen=True)
class Question:
    """A question of XQuAD, on paragraph ``pid``, with its gold answers."""

    qid: str
    pid: str
    question: str
    answers: tuple[str, ...]


def load(xquad_dir: Path, lang: str) -> tuple[list[Paragraph], list[Question]]:
    """The paragraphs and questions of ``xquad.LANG.json``; ConfigError naming the
    file (and RAG_XQUAD_DIR) when it cannot be read."""
    path = xquad_dir / f"xquad.{lang}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror} (set RAG_XQUAD_DIR to the folder of "
            "xquad.LANG.json files)"
        ) from exc
    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(article["paragraphs"]):
            pid = f"p{a:02d}-{p:02d}"
            paragraphs.append(Paragraph(pid, para["context"]))
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(x["text"] for x in qa["answers"]))
                questions.append(Question(qa["id"], pid, qa["question"], answers))
    return paragraphs, questions


def parse_pair(pair: str) -> tuple[str, str]:
    """``QLANG:PLANG``; PLANG may join two languages (``ar+vi``): each paragraph and its
    translation in one corpus."""
    qlang, sep, plang = pair.partition(":")
    plangs = plang.split("+")
    if (
        not sep
        or qlang not in LANGS
        or len(plangs) > 2
        or len(set(plangs)) < len(plangs)
        or any(p not in LANGS for p in plangs)
    ):
        raise ConfigError(
            "--xquad wants QLANG:PLANG (or QLANG:PLANG+PLANG) with languages of XQuAD, "
            f"got '{pair}'"
        )
    return qlang, plang


RANKED = 40
"""Passages ranked per question: deep enough for ten distinct paragraphs."""


def corpus_settings(
    settings: Settings, plang: str, paragraphs: Sequence[Paragraph], limit: int | None
) -> Settings:
    """Settings for PLANG's paragraphs as a corpus of their own (paragraph files
    written once), with retrieval deep enough for recall@10."""
    name = plang if not limit else f"{plang}-{limit}"
    root = settings.data_dir / "xquad" / name
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for para in paragraphs:
        path = folder / f"{para.pid}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != para.context:
            path.write_text(para.context, encoding="utf-8")
    return settings.model_copy(
        update={
            "corpus_dir": folder,
            "index_dir": root / "index",
            "data_dir": root,
            "top_k": RANKED,
            "candidates": 60,
        }
    )


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose gold paragraph is among the first k distinct
    paragraphs retrieved (``ranks`` are 1-based, None when not retrieved)."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def share(flags: Sequence[bool | int], digits: int = 4) -> float:
    """Mean of ``flags`` (True counts 1, a number itself), rounded; 0 when empty."""
    return round(sum(flags) / len(flags), digits) if flags else 0.0


def cites_every_translation(sources: Sequence[str], pid: str, plangs: Sequence[str]) -> bool:
    """Whether the cited ``sources`` (``LANG-PID.txt`` files) hold paragraph ``pid`` in
    every one of ``plangs``."""
    cited = {s.removesuffix(".txt") for s in sources}
    return all(f"{lang}-{pid}" in cited for lang in plangs)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of 1 / rank of the gold paragraph (0 when it is not in the first DEPTH)."""
    return sum(1 / r for r in ranks if r is not None) / len(ranks) if ranks else 0.0


def run(
    settings: Settings,
    pair: str,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Index PLANG's paragraphs (only what is not cached is embedded), ask QLANG's
    questions, and return ``{"pair", "n", "overall": {recall@1, recall@5, recall@10,
    mrr, answer_contains_gold, first_quote_gold, quotes_per_answer, quote_precision,
    latency_ms_p50}}``: ``answer_contains_gold`` asks whether any quote holds a gold
    answer, ``first_quote_gold`` whether the first does, ``quote_precision`` what share
    of all quotes come from the question's paragraph. With two paragraph languages
    (``en:ar+vi``) the corpus holds each paragraph in both, a paragraph is right in
    either, and ``cites_every_translation`` is the share of answers that cite the
    question's paragraph in both (corroboration)."""
    from rag.index.build import build
    from rag.query.pipeline import Pipeline

    qlang, plang = parse_pair(pair)
    plangs = plang.split("+")
    loaded = {lang: load(settings.xquad_dir, lang) for lang in {qlang, *plangs}}
    paragraphs = loaded[plangs[0]][0][: limit or None]
    keep = {p.pid for p in paragraphs}
    if len(plangs) == 1:
        files = paragraphs
    else:  # every paragraph in each language, as LANG-PID
        files = [
            Paragraph(f"{lang}-{p.pid}", p.context)
            for lang in plangs
            for p in loaded[lang][0]
            if p.pid in keep
        ]
    s = corpus_settings(settings, plang, files, limit)
    build(s)
    gold: dict[str, list[str]] = {}  # a question's answers in every paragraph language
    for lang in plangs:
        for q in loaded[lang][1]:
            gold.setdefault(q.qid, []).extend(q.answers)
    questions = [q for q in loaded[qlang][1] if q.pid in keep]

    def pid(source: str) -> str:
        name = source.removesuffix(".txt")
        return name.split("-", 1)[1] if len(plangs) > 1 else name

    pipeline = Pipeline.open(s)
    ranks: list[int | None] = []
    contains: list[bool] = []
    first: list[bool] = []
    quotes: list[int] = []
    on_gold: list[bool] = []
    both: list[bool] = []
    latencies: list[float] = []
    for i, q in enumerate(questions, start=1):
        t0 = time.perf_counter()
        search = pipeline.search(q.question, s.top_k, lang=qlang)
        # the answer reads the top passages, as the service does by default
        shown = replace(search, passages=search.passages[: settings.top_k])
        citations = pipeline.answer_search(q.question, shown, qlang).citations
        latencies.append((time.perf_counter() - t0) * 1000)
        order = list(dict.fromkeys(pid(p.passage.doc_id) for p in search.passages))
        ranks.append(order.index(q.pid) + 1 if q.pid in order[:DEPTH] else None)
        quoted = _normalise(" ".join(c.quote for c in citations))
        contains.append(any(_normalise(a) in quoted for a in gold.get(q.qid, ())))
        lead = _normalise(citations[0].quote) if citations else ""
        first.append(bool(lead) and any(_normalise(a) in lead for a in gold.get(q.qid, ())))
        if citations:
            quotes.append(len(citations))
            on_gold.extend(pid(c.source) == q.pid for c in citations)
            if len(plangs) > 1:
                sources = [c.source for c in citations]
                both.append(cites_every_translation(sources, q.pid, plangs))
        if progress is not None:
            progress(i, len(questions))
    latencies.sort()
    return {
        "pair": pair,
        "n": len(questions),
        "paragraphs": len(keep),
        "overall": {
            "recall@1": round(recall_at(ranks, 1), 4),
            "recall@5": round(recall_at(ranks, 5), 4),
            "recall@10": round(recall_at(ranks, 10), 4),
            "mrr": round(mean_reciprocal_rank(ranks), 4),
            "answer_contains_gold": share(contains),
            "first_quote_gold": share(first),
            "quotes_per_answer": share(quotes, 3),
            "quote_precision": share(on_gold),
            **({"cites_every_translation": share(both)} if len(plangs) > 1 else {}),
            "latency_ms_p50": round(latencies[len(latencies) // 2], 2) if latencies else None,
        },
    }
