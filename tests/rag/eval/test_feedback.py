"""Ratings of answers and their export as eval-set lines (rag/eval/feedback.py, `rag feedback`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import Settings
from rag.eval.dataset import load_eval_set
from rag.eval.feedback import (
    FeedbackStore,
    eval_items,
    evidence_pattern,
    review_items,
    store_path,
)
from rag.types import Answer, Citation


def citation(n: int, source: str, quote: str, lang: str = "en") -> Citation:
    return Citation(
        n=n,
        source=source,
        title="t",
        start_char=10,
        end_char=10 + len(quote),
        start_line=2,
        end_line=2,
        quote=quote,
        lang=lang,
        score=0.5,
    )


def answer(*citations: Citation, abstained: bool = False) -> Answer:
    text = "No answer." if abstained else " ".join(f"x [{c.n}]" for c in citations)
    return Answer(answer=text, citations=list(citations), abstained=abstained)


AR = (
    "كشفت DeepSeek أن ‘جولة التدريب’ النهائية لـ V3، السلف المباشر لـ R1، كلفت مجرد 6 ملايين دولار."
)


@pytest.mark.parametrize(
    "quote",
    [
        "The H800 chip (a cut-down H100) was used by DeepSeek [sic].",
        AR,
        "深度求索公司成立于2023年，总部位于杭州。它的模型以低成本训练而闻名，引起了全球关注。" * 2,
        "ตลาดหุ้นสหรัฐฯ ร่วงลงอย่างหนักหลังจากการเปิดตัวโมเดลใหม่ของบริษัทจีน",
        "  leading   spaces\nand a line break +? * ^ $ | \\ { }  ",
    ],
)
def test_the_evidence_pattern_matches_its_quote_however_it_is_wrapped(quote: str) -> None:
    pattern = evidence_pattern(quote)
    assert len(pattern.replace("\\", "")) <= 60 + 20
    assert re.search(pattern, quote)
    assert re.search(pattern, "\n".join(quote.split()))  # re-wrapped, one word a line
    assert not re.search(pattern, "An unrelated sentence about harbours and tea.")


def test_the_evidence_pattern_is_a_short_part_of_a_long_quote() -> None:
    quote = " ".join(f"word{i}" for i in range(100))
    pattern = evidence_pattern(quote)
    assert pattern.startswith("word0") and "word20" not in pattern
    with pytest.raises(ValueError, match="only whitespace"):
        evidence_pattern(" \n ")


def test_the_store_keeps_what_it_is_given(tmp_path: Path) -> None:
    store = FeedbackStore(store_path(tmp_path / "data"))
    a = answer(citation(1, "004.txt", AR, "ar"))
    first = store.add("How much did V3 cost?", a, "up", "exact figure", "conv-1", "browser:ab")
    second = store.add("Off topic?", answer(abstained=True), "down")
    with pytest.raises(ValueError, match="rating must be 'up' or 'down'"):
        store.add("q", a, "sideways")  # type: ignore[arg-type]
    store.close()
    reopened = FeedbackStore(store_path(tmp_path / "data"))
    rows = reopened.all()
    reopened.close()
    assert [r.id for r in rows] == [first.id, second.id] and first.id < second.id
    assert rows[0].answer == a and rows[0].reason == "exact figure"
    assert (rows[0].conversation_id, rows[0].owner) == ("conv-1", "browser:ab")
    assert rows[1].rating == "down" and rows[1].reason is None


def test_export_rules(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    up = store.add(
        "How much did the final training run of DeepSeek V3 cost?",
        answer(
            citation(1, "004.txt", AR, "ar"),
            citation(2, "000.txt", "In Malay."),
            citation(3, "004.txt", AR),
        ),
        "up",
    )
    store.add("What is a good pancake recipe?", answer(abstained=True), "up")
    store.add("Who founded DeepSeek?", answer(abstained=True), "down", "it is in 004")
    # rated twice: the latest rating counts
    store.add("Where is DeepSeek based?", answer(citation(1, "001.txt", "Hangzhou.")), "up")
    store.add("  where is DeepSeek   based? ", answer(citation(1, "001.txt", "Hangzhou.")), "down")
    ratings = store.all()
    store.close()

    lines = eval_items(ratings)
    assert [line["question"] for line in lines] == [
        "How much did the final training run of DeepSeek V3 cost?",
        "What is a good pancake recipe?",
    ]
    answerable, unanswerable = lines
    assert answerable == {
        "id": f"feedback-{up.id}",
        "question": "How much did the final training run of DeepSeek V3 cost?",
        "lang": "en",
        "expected_sources": ["004.txt", "000.txt"],
        "expected_evidence": evidence_pattern(AR),
        "answerable": True,
    }
    assert unanswerable["answerable"] is False and unanswerable["expected_sources"] == []
    review = review_items(ratings)
    assert [r["question"] for r in review] == [
        "Who founded DeepSeek?",
        "  where is DeepSeek   based? ",
    ]
    assert review[0]["abstained"] is True and review[0]["reason"] == "it is in 004"
    assert review[1]["cited_sources"] == ["001.txt"]


def test_rag_feedback_export_writes_an_eval_set_rag_eval_reads(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    assert main(["feedback", "export"]) == 0  # nothing rated yet: an empty set, and why
    out = capsys.readouterr()
    assert out.out == "" and "0 ratings" in out.err
    assert not store_path(settings.data_dir).exists()  # reading created nothing

    store = FeedbackStore(store_path(settings.data_dir))
    store.add(
        "Which chip did DeepSeek use?", answer(citation(1, "notes.md", "The H800 chip.")), "up"
    )
    store.add("A recipe for pancakes?", answer(abstained=True), "up")
    store.add("Who founded DeepSeek?", answer(abstained=True), "down", "it is in the text")
    store.close()

    output, review = tmp_path / "feedback.jsonl", tmp_path / "review.jsonl"
    assert main(["feedback", "export", "-o", str(output), "--review", str(review)]) == 0
    err = capsys.readouterr().err
    assert "3 ratings" in err and "2 eval lines (1 answerable, 1 unanswerable)" in err
    items = load_eval_set(output)
    assert [i.answerable for i in items] == [True, False]
    assert items[0].expected_sources == ["notes.md"]
    assert [json.loads(line)["question"] for line in review.read_text().splitlines()] == [
        "Who founded DeepSeek?"
    ]

    assert main(["feedback", "export"]) == 0  # standard output
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["feedback", "export", "-o", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_feedback_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["feedback"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["feedback", "export", "--help"])
    assert "thumbs up" in capsys.readouterr().out
