"""A corpus full of bad files: each is reported by name with a reason (by `rag index`
and by GET /v1/index), the good ones are indexed, nothing crashes, and links out of
the corpus are not followed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from rag.cli import main
from rag.config import Settings
from tests.api.conftest import serve
from tests.conftest import use_env


@pytest.fixture
def hostile(settings: Settings, tmp_path: Path) -> Settings:
    folder = settings.corpus_dir
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    (folder / "latin1.txt").write_bytes("Caf\xe9 in Hangzhou".encode("latin-1"))
    with open(folder / "huge.txt", "wb") as big:
        big.truncate(50 * 1024 * 1024)  # 50 MB
    (folder / "nested.html").write_text(
        "<html><body>" + "<div>" * 20000 + "Deep tea text sits here." + "</div>" * 20000,
        encoding="utf-8",
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("A secret outside the corpus.", encoding="utf-8")
    os.symlink(outside, folder / "escape.txt")
    (folder / "name with spaces.txt").write_text("Spaces are fine in names.", encoding="utf-8")
    (folder / "مقالة عربية.txt").write_text("مقالة عن الشاي الصيني.", encoding="utf-8")
    (folder / "文章.md").write_text("关于龙井茶的文章。", encoding="utf-8")
    return settings


def test_every_bad_file_is_reported_and_the_good_ones_indexed(
    hostile: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, hostile)
    assert main(["index", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    problems = {p["source"]: p["reason"] for p in report["problems"]}
    assert set(problems) == {
        "empty.txt",
        "binary.txt",
        "latin1.txt",
        "huge.txt",
        "broken.pdf",
        "escape.txt",
    }, problems
    assert "empty" in problems["empty.txt"]
    assert "binary" in problems["binary.txt"]
    assert "UTF-8" in problems["latin1.txt"]
    assert "over the limit" in problems["huge.txt"]
    assert "outside the corpus" in problems["escape.txt"]
    assert report["documents"] == 4 + 4  # the small corpus, plus nested.html and 3 good names
    assert main(["index"]) == 0  # human output names each skipped file too
    err = capsys.readouterr().err
    assert "skipped huge.txt:" in err and "skipped escape.txt:" in err

    server = serve(hostile.model_copy(update={"abstain_threshold": -1.0}))
    try:
        status = httpx.get(server.url + "/v1/index", timeout=30).json()
        sources = httpx.get(server.url + "/v1/sources", timeout=30).json()
        answer = httpx.post(
            server.url + "/v1/chat", json={"message": "Where does the deep tea text sit?"}
        ).json()
    finally:
        server.stop()
    assert {p["source"] for p in status["problems"]} == set(problems)
    names = {s["source"] for s in sources}
    assert {"name with spaces.txt", "مقالة عربية.txt", "文章.md", "nested.html"} <= names
    assert "escape.txt" not in names
    assert "secret" not in json.dumps(answer)
