from __future__ import annotations

import json

import pytest

from rag.cli import main
from rag.config import Settings


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("corpus_dir", "index_dir", "cache_dir", "data_dir", "embedding"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "-1")
    return settings


def test_ask_before_index_exits_3_and_says_what_to_run(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "anything?"]) == 3
    assert "run `rag index`" in capsys.readouterr().err


def test_index_then_ask_human_and_json(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index"]) == 0
    assert "published version" in capsys.readouterr().out
    assert main(["index"]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["ask", "Which chip, the H800?"]) == 0
    out = capsys.readouterr().out
    assert '[1] notes.md, line 3: "The H800 chip was used by DeepSeek."' in out
    assert main(["ask", "Which chip, the H800?", "--json", "--top-k", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {
        "answer",
        "citations",
        "abstained",
        "mode",
        "warnings",
        "conversation_id",
        "timings_ms",
    }
    assert data["mode"] == "extractive" and data["citations"][0]["source"] == "notes.md"


def test_bad_questions_exit_2(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index"])
    assert main(["ask", "   "]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["ask", "x" * 2001]) == 2
    assert "over the limit of 2000" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ask"])
    assert exc.value.code == 2


def test_bad_setting_exits_2_naming_it(
    env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_TOP_K", "0")
    assert main(["ask", "x"]) == 2
    assert "top_k must be > 0, got 0" in capsys.readouterr().err


def test_sources_lists_documents(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index"])
    capsys.readouterr()
    assert main(["sources", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["source"] for r in rows} == {
        "001_2da8963e52795fca.txt",
        "003_a5e772a95f951957.txt",
        "notes.md",
        "page.html",
    }
    assert {r["lang"] for r in rows if r["source"].startswith("00")} == {"id", "ms"}


def test_chat_keeps_the_conversation(
    env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    main(["index"])
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("Which chip, the H800?\n\n/new\n   \nDeepSeek?\n"))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    assert out.count("[1] ") == 2
