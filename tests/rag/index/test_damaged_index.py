"""A damaged index is reported, never a traceback: each corruption of a copy of a
small index makes `rag ask` print one line naming the damage (exit code of
IndexCorruptError) and `rag index --rebuild` repair it; the service starts and answers
/readyz and /v1/chat 503 with the reason (problem+json); garbage written into CURRENT
while serving keeps the loaded version serving."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from api.cli import main
from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.index.build import build
from rag.index.layout import current_version, version_dir
from rag.index.reader import open_index
from tests.api.conftest import serve
from tests.conftest import SEEDS, make_settings, use_env

QUESTION = "Which chip did DeepSeek use, the H800?"

Damage = Callable[[Path, Path], None]
"""Damages an index: (the published version's folder, the index folder)."""


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(max(64, path.stat().st_size)))


def replace(path: Path, old: bytes, new: bytes) -> None:
    path.write_bytes(path.read_bytes().replace(old, new, 1))


DAMAGES: dict[str, tuple[Damage, str]] = {
    # name: (what to do, what the message must name)
    "chroma.sqlite3 truncated": (lambda v, i: truncate(v / "chroma" / "chroma.sqlite3"), "chroma"),
    "chroma.sqlite3 random": (lambda v, i: garbage(v / "chroma" / "chroma.sqlite3"), "chroma"),
    "chroma.sqlite3 emptied": (
        lambda v, i: (v / "chroma" / "chroma.sqlite3").write_bytes(b""),
        "vector store",
    ),
    "BM25 file missing": (lambda v, i: (v / "bm25" / "params.index.json").unlink(), "bm25"),
    "BM25 ids missing": (lambda v, i: (v / "bm25" / "ids.txt").unlink(), "bm25"),
    "BM25 matrix garbage": (lambda v, i: garbage(v / "bm25" / "data.csc.index.npy"), "bm25"),
    "BM25 vocabulary garbage": (lambda v, i: garbage(v / "bm25" / "vocab.index.json"), "bm25"),
    "CURRENT garbage": (lambda v, i: (i / "CURRENT").write_bytes(os.urandom(40)), "CURRENT"),
    "CURRENT a path": (lambda v, i: (i / "CURRENT").write_text("../../etc\n"), "CURRENT"),
    "CURRENT empty": (lambda v, i: (i / "CURRENT").write_text(""), "CURRENT"),
    "manifest empty": (lambda v, i: (v / "manifest.json").write_text(""), "manifest.json"),
    "manifest without counts": (
        lambda v, i: (v / "manifest.json").write_text("{}"),
        "manifest.json",
    ),
    "passages.jsonl truncated": (lambda v, i: truncate(v / "passages.jsonl"), "passages.jsonl"),
    "passages.jsonl emptied": (
        lambda v, i: (v / "passages.jsonl").write_text(""),
        "passages.jsonl",
    ),
    "sentences.npy truncated": (lambda v, i: truncate(v / "sentences.npy"), "sentences.npy"),
    "sentences.json garbage": (lambda v, i: garbage(v / "sentences.json"), "sentences.json"),
    "latent.npz missing": (lambda v, i: (v / "latent" / "latent.npz").unlink(), "latent"),
    "latent folder missing": (lambda v, i: shutil.rmtree(v / "latent"), "latent"),
    "sentence latent terms missing": (
        lambda v, i: (v / "latent" / "sentences_ids.npy").unlink(),
        "latent",
    ),
    "centroids missing": (lambda v, i: (v / "centroids.npz").unlink(), "centroids"),
    "version folder missing": (lambda v, i: shutil.rmtree(v), "folder"),
    "manifest truncated": (lambda v, i: truncate(v / "manifest.json"), "manifest.json"),
    "passages.jsonl record without its keys": (
        lambda v, i: replace(v / "passages.jsonl", b'"doc_id"', b'"dock"'),
        "passages.jsonl",
    ),
    "sentences.json of another length": (
        lambda v, i: (v / "sentences.json").write_text("[[1, 2]]"),
        "sentences.json",
    ),
    "centroids garbage": (
        lambda v, i: (v / "centroids.npz").write_bytes(b"not a zip file"),
        "centroids",
    ),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index with every kind of file (the fake embedding has latent terms)."""
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_2da8963e52795fca.txt", corpus)
    (corpus / "notes.md").write_text("The H800 chip was used by DeepSeek.\n", encoding="utf-8")
    build(settings_of(root))
    return root


def settings_of(root: Path) -> Settings:
    return make_settings(
        root, root / "corpus", embedding="tests.fakes:HashLatentEmbedding", abstain_threshold=-1.0
    )


def copy_of(pristine: Path, tmp_path: Path) -> Settings:
    """The settings of a copy of the pristine index (and its corpus)."""
    root = tmp_path / "copy"
    shutil.copytree(pristine, root)
    return settings_of(root)


def published_folder(settings: Settings) -> Path:
    version = current_version(settings.index_dir)
    assert version is not None
    return version_dir(settings.index_dir, version)


def damaged_copy(pristine: Path, tmp_path: Path, name: str) -> Settings:
    settings = copy_of(pristine, tmp_path)
    DAMAGES[name][0](published_folder(settings), settings.index_dir)
    return settings


def test_the_pristine_copy_answers(
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_env(monkeypatch, copy_of(pristine, tmp_path))
    assert main(["ask", QUESTION]) == 0
    assert "[1]" in capsys.readouterr().out


@pytest.mark.parametrize("name", DAMAGES)
def test_rag_ask_names_the_damage_in_one_line_and_a_rebuild_repairs_it(
    name: str,
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = damaged_copy(pristine, tmp_path, name)
    use_env(monkeypatch, settings)
    code = main(["ask", QUESTION])
    err = capsys.readouterr().err
    assert code == IndexCorruptError.exit_code != 1  # its own code, not "anything else"
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert DAMAGES[name][1] in err and "rag index --rebuild" in err
    assert "Traceback" not in err
    build(settings, rebuild=True)
    assert len(open_index(settings).passages) == open_index(settings).manifest["counts"]["passages"]
    assert main(["ask", QUESTION]) == 0


def test_lost_passages_are_counted_against_the_manifest(pristine: Path, tmp_path: Path) -> None:
    settings = copy_of(pristine, tmp_path)
    path = published_folder(settings) / "passages.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")  # whole lines: valid JSON
    with pytest.raises(IndexCorruptError, match=f"holds {len(lines) - 1} passages"):
        open_index(settings)


@pytest.mark.slow
@pytest.mark.parametrize("name", DAMAGES)
def test_the_service_starts_and_readyz_says_why(name: str, pristine: Path, tmp_path: Path) -> None:
    settings = damaged_copy(pristine, tmp_path, name)
    server = serve(settings)
    try:
        with server.client() as client:
            ready = client.get("/readyz")
            chat = client.post("/v1/chat", json={"message": QUESTION})
            health = client.get("/healthz")
    finally:
        server.stop()
    assert ready.status_code == 503, ready.text
    assert DAMAGES[name][1] in ready.json()["detail"]
    assert chat.status_code == 503 and DAMAGES[name][1] in chat.json()["detail"]
    assert chat.headers["content-type"].startswith("application/problem+json")
    assert "rag index --rebuild" in chat.json()["detail"]
    assert health.status_code == 200


def test_rag_index_refuses_a_damaged_current_and_rebuild_repairs_it(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = damaged_copy(pristine, tmp_path, "CURRENT a path")
    with pytest.raises(IndexCorruptError, match="CURRENT"):
        build(settings)
    report = build(settings, rebuild=True)
    assert current_version(settings.index_dir) == report.version


@pytest.mark.slow
def test_garbage_in_current_while_serving_keeps_the_loaded_version(
    pristine: Path, tmp_path: Path
) -> None:
    settings = copy_of(pristine, tmp_path)
    loaded = current_version(settings.index_dir)
    server = serve(settings)
    try:
        with server.client() as client:
            assert client.get("/readyz").json()["problem"] is None
            for damage in (b"\x00garbage\xff", b"../../etc\n", b"20990101T000000-abcdef\n"):
                (settings.index_dir / "CURRENT").write_bytes(damage)
                chat = client.post("/v1/chat", json={"message": QUESTION})
                assert chat.status_code == 200 and chat.json()["citations"], damage
                ready = client.get("/readyz")
                assert ready.status_code == 200, damage
                assert ready.json()["index_version"] == loaded
                assert "CURRENT" in ready.json()["problem"] or "folder" in ready.json()["problem"]
            (settings.index_dir / "CURRENT").write_text(f"{loaded}\n")
            assert client.get("/readyz").json()["problem"] is None
    finally:
        server.stop()


def test_rag_serve_starts_on_a_damaged_index(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rag serve` (which builds first) reports the damage and serves /readyz 503
    instead of exiting."""
    import threading

    import httpx
    import uvicorn

    from tests.servers import free_port

    settings = damaged_copy(pristine, tmp_path, "manifest empty")
    use_env(monkeypatch, settings)
    port = free_port()
    started: list[uvicorn.Server] = []
    real_run = uvicorn.Server.run

    def run(self: uvicorn.Server, *args: object, **kwargs: object) -> None:
        started.append(self)
        real_run(self)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    thread = threading.Thread(target=main, args=(["serve", "--port", str(port)],), daemon=True)
    thread.start()
    try:
        ready = None
        for _ in range(300):
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except httpx.TransportError:
                thread.join(0.1)
                assert thread.is_alive(), "rag serve exited"
        assert ready is not None and ready.status_code == 503
        assert "manifest.json" in ready.json()["detail"]
    finally:
        for server in started:
            server.should_exit = True
        thread.join(10)
