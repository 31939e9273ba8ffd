"""`rag eval`: reports, the baseline guard, --against a live server, --compare naive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import Settings
from rag.index.build import build
from tests.conftest import use_env

SET = [
    {
        "id": "chip",
        "question": "Which chip did DeepSeek use, the H800?",
        "lang": "en",
        "expected_sources": ["notes.md"],
        "expected_evidence": "H800 chip was used",
        "answerable": True,
    },
    {
        "id": "harbour",
        "question": "What is the harbour of Hangzhou famous for?",
        "lang": "en",
        "expected_sources": ["page.html"],
        "expected_evidence": "boats",
        "answerable": True,
    },
    {
        "id": "follow",
        "turns": ["Which chip did DeepSeek use, the H800?"],
        "question": "And the export controls?",
        "lang": "en",
        "expected_sources": ["notes.md"],
        "expected_evidence": "Export controls limit chips",
        "answerable": True,
    },
    {
        "id": "h900",
        "question": "Which chip is the H900?",
        "lang": "en",
        "expected_sources": [],
        "answerable": False,
    },
]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    use_env(monkeypatch, settings)
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "-1")
    build(settings)
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in SET) + "\n", encoding="utf-8")
    return path


def test_report_files_and_per_question_results(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    code = main(["eval", str(env), "--report", "small", "--reports-dir", str(reports), "--json"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 4 and metrics["overall"]["abstention_recall"] == 1.0
    assert metrics["overall"]["retrieval_hit@5"] == 1.0
    for suffix in (
        ".json",
        ".md",
        ".hit.png",
        ".latency.png",
        ".abstention.png",
        ".questions.jsonl",
    ):
        assert (reports / f"small{suffix}").stat().st_size > 0
    assert (reports / "small.hit.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((reports / "small.json").read_text()) == metrics
    rows = [json.loads(x) for x in (reports / "small.questions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["chip", "harbour", "follow", "h900"]
    assert rows[0]["pass"]["retrieval_hit@1"] is True and rows[3]["pass"] == {"abstained": True}
    # each row has the score abstention compared (the threshold is -1 here: only the
    # unknown term H900 abstains), and the curve sweeps those scores
    assert all(isinstance(r["abstain_score"], float) for r in rows)
    assert rows[3]["warnings"] == ["unknown_term: h900"]
    curve = metrics["abstention_curve"]
    assert [p["threshold"] for p in curve[:-1]] == sorted({r["abstain_score"] for r in rows})
    assert curve[0]["abstention_recall"] == 1.0 and curve[0]["false_abstention_rate"] == 0.0
    assert "## Abstention trade-off" in (reports / "small.md").read_text()
    assert "| retrieval_hit@1 |" in (reports / "small.md").read_text()


def test_baseline_guard_exits_5_on_a_planted_regression(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(env), "--json"]) == 0
    honest = json.loads(capsys.readouterr().out)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(honest))
    assert main(["eval", str(env), "--baseline", str(baseline)]) == 0
    planted = json.loads(json.dumps(honest))
    planted["overall"]["mrr"] = honest["overall"]["mrr"] + 0.1  # a baseline 0.1 better
    baseline.write_text(json.dumps(planted))
    capsys.readouterr()
    assert main(["eval", str(env), "--baseline", str(baseline), "--max-drop", "0.02"]) == 5
    assert "regression: overall mrr:" in capsys.readouterr().err
    assert main(["eval", str(env), "--baseline", str(baseline), "--max-drop", "0.15"]) == 0


def test_against_a_live_server_gives_the_same_metrics(
    env: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.api.conftest import serve

    assert main(["eval", str(env), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    server = serve(settings.model_copy(update={"abstain_threshold": -1.0}))
    try:
        assert main(["eval", str(env), "--against", server.url, "--json"]) == 0
    finally:
        server.stop()
    remote = json.loads(capsys.readouterr().out)
    quality = [name for name in local["overall"] if not name.startswith("latency")]
    assert len(quality) == 9  # n and the eight quality metrics; latency differs
    for name in quality:
        assert remote["overall"][name] == local["overall"][name], name


def test_against_an_unreachable_service_says_so(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(env), "--against", "http://127.0.0.1:9"]) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_compare_naive_prints_both_and_the_ratio(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(env), "--compare", "naive", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    naive = data["compare"]["naive llama-index pipeline"]
    assert naive["n"] == 4 and naive["overall"]["abstention_recall"] == 0.0  # never abstains
    assert main(["eval", str(env), "--compare", "naive"]) == 0
    assert "| metric | this service | naive llama-index pipeline | ratio |" in (
        capsys.readouterr().out
    )
