"""Client/server mode: a real `chroma run` server on a free loopback port; index, ask
and re-index against it, with two API workers sharing it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.index.build import build
from rag.index.store import server_client
from rag.query.chat import ChatService
from tests.api.conftest import serve
from tests.servers import free_port

pytestmark = pytest.mark.slow

QUESTION = "Which chip did DeepSeek use, the H800?"


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma")), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/api/v2/heartbeat", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "chroma did not start"
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)


def collections(url: str, prefix: str) -> set[str]:
    names = [c if isinstance(c, str) else c.name for c in server_client(url).list_collections()]
    return {n for n in names if n.startswith(prefix + "-")}


def test_index_ask_and_reindex_against_a_server(settings: Settings, chroma_url: str) -> None:
    s = settings.model_copy(
        update={"chroma_url": chroma_url, "chroma_prefix": "t1", "abstain_threshold": -1.0}
    )
    first = build(s)
    assert collections(chroma_url, "t1") == {f"t1-{first.version}"}
    assert not (s.index_dir / "versions" / first.version / "chroma").exists()  # nothing local
    service = ChatService(s)
    answer = service.ask(QUESTION)
    assert answer.citations[0].source == "notes.md"

    (s.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.", encoding="utf-8")
    (s.corpus_dir / "page.html").unlink()
    second = build(s)
    assert second.added_documents == ["tea.md"] and second.removed_documents == ["page.html"]
    assert second.embedded > 0
    assert collections(chroma_url, "t1") == {f"t1-{first.version}", f"t1-{second.version}"}
    assert service.ask("Where does Longjing tea grow?").citations[0].source == "tea.md"
    store = service.pipeline.index.vectors
    assert store.count() == second.passages  # copied from the old version, plus the delta
    assert build(s).embedded == 0  # unchanged: nothing embedded, no new collection
    third_corpus = s.corpus_dir / "notes.md"
    third_corpus.write_text(third_corpus.read_text() + "The H20 came later.\n", encoding="utf-8")
    third = build(s)
    # the oldest version's collection is collected with its folder
    assert collections(chroma_url, "t1") == {f"t1-{second.version}", f"t1-{third.version}"}
    service.close()


def test_two_api_workers_share_one_server(settings: Settings, chroma_url: str) -> None:
    s = settings.model_copy(
        update={"chroma_url": chroma_url, "chroma_prefix": "t2", "abstain_threshold": -1.0}
    )
    build(s)
    workers = [serve(s), serve(s)]
    try:
        for w in workers:
            r = httpx.post(w.url + "/v1/chat", json={"message": QUESTION}, timeout=30)
            assert r.status_code == 200 and r.json()["citations"][0]["source"] == "notes.md"
        (s.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.", encoding="utf-8")
        build(s)  # the one indexer
        for w in workers:
            r = httpx.post(
                w.url + "/v1/chat", json={"message": "Where does Longjing tea grow?"}, timeout=30
            )
            assert r.json()["citations"][0]["source"] == "tea.md"  # switched, no restart
    finally:
        for w in workers:
            w.stop()


@pytest.mark.parametrize("stage", ["write:stored", "write:done"])
def test_sigkill_in_server_mode_keeps_serving_and_the_next_build_drops_the_partial(
    settings: Settings, chroma_url: str, stage: str
) -> None:
    from tests.rag.index.test_crash import kill_when_paused, rag_index_paused

    prefix = "k" + stage.replace(":", "-")
    s = settings.model_copy(
        update={"chroma_url": chroma_url, "chroma_prefix": prefix, "abstain_threshold": -1.0}
    )
    first = build(s).version
    (s.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.", encoding="utf-8")
    worker = serve(s)
    process = rag_index_paused(s, stage)
    try:
        kill_when_paused(process, stage)
        # the killed build left its collection on the server, unpublished
        assert len(collections(chroma_url, prefix)) == 2
        r = httpx.post(worker.url + "/v1/chat", json={"message": QUESTION}, timeout=30)
        assert r.status_code == 200 and r.json()["citations"][0]["source"] == "notes.md"
        assert ChatService(s).pipeline.index.version == first
    finally:
        if process.poll() is None:
            process.kill()
        worker.stop()
    second = build(s).version  # completes, and the partial build's collection is gone
    assert collections(chroma_url, prefix) == {f"{prefix}-{first}", f"{prefix}-{second}"}
    assert ChatService(s).ask("Where does Longjing tea grow?").citations[0].source == "tea.md"


def test_bad_chroma_url_is_named(settings: Settings) -> None:
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="chroma_url must look like http://host:port"):
        build(settings.model_copy(update={"chroma_url": "localhost:8000"}))
