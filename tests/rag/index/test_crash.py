"""Kill the indexer (SIGKILL) at every pause point of a build: each time the service
keeps answering from a complete version, and the next `rag index` completes and
removes the partial build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.index.build import PAUSE_POINTS, build
from rag.index.layout import current_version, versions_dir
from rag.query.chat import ChatService
from tests.api.conftest import serve
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

QUESTION = "Which chip did DeepSeek use, the H800?"


def rag_index_paused(settings: Settings, stage: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    for name in ("corpus_dir", "index_dir", "cache_dir", "data_dir", "embedding"):
        env[f"RAG_{name.upper()}"] = str(getattr(settings, name))
    if settings.chroma_url:
        env["RAG_CHROMA_URL"] = settings.chroma_url
        env["RAG_CHROMA_PREFIX"] = settings.chroma_prefix
    env["RAG_INDEX_PAUSE_AT"] = stage
    env["PYTHONPATH"] = str(ROOT)
    rag = str(Path(sys.executable).parent / "rag")
    return subprocess.Popen(
        [rag, "index"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def kill_when_paused(process: subprocess.Popen[str], stage: str) -> None:
    """Wait until the indexer says it paused at ``stage``, then SIGKILL it."""
    assert process.stderr is not None
    line = process.stderr.readline()
    while line and not line.startswith("paused at"):
        line = process.stderr.readline()
    assert line.strip() == f"paused at {stage}", line
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.parametrize("stage", PAUSE_POINTS)
def test_sigkill_at_each_moment_leaves_a_serving_index(settings: Settings, stage: str) -> None:
    settings = settings.model_copy(update={"abstain_threshold": -1.0})
    first = build(settings).version
    # enough new text for several embedding batches, and a changed file
    (settings.corpus_dir / "tea.md").write_text(
        "\n".join(
            f"Tea garden number {i} grows Longjing leaves near West Lake." for i in range(40)
        ),
        encoding="utf-8",
    )
    # (not the file the question cites: until it is indexed again, an edited file's
    # quotes do not verify against the published version, whose hash it no longer has)
    with open(settings.corpus_dir / "page.html", "a", encoding="utf-8") as page:
        page.write("<p>The H20 chip came later.</p>\n")
    server = serve(settings)
    process = rag_index_paused(settings, stage)
    try:
        kill_when_paused(process, stage)

        served = current_version(settings.index_dir)
        if PAUSE_POINTS.index(stage) < PAUSE_POINTS.index("publish:done"):
            assert served == first  # nothing half-built is ever current
        service = ChatService(settings)
        answer = service.ask(QUESTION)
        service.close()
        assert answer.citations and answer.citations[0].source == "notes.md"
        response = httpx.post(server.url + "/v1/chat", json={"message": QUESTION}, timeout=30)
        assert response.status_code == 200 and response.json()["citations"]
    finally:
        if process.poll() is None:
            process.kill()
        server.stop()

    report = build(settings)  # the next run completes...
    assert report.version != first
    leftovers = sorted(p.name for p in versions_dir(settings.index_dir).iterdir())
    # ...and keeps only the new version and the one before it: no partial build remains
    assert not any(name.endswith(".building") for name in leftovers), leftovers
    assert report.version in leftovers and len(leftovers) <= 2
    assert "tea.md" in ChatService(settings).pipeline.index.manifest["documents"]


def test_second_indexer_is_refused_while_one_runs(settings: Settings) -> None:
    build(settings)
    (settings.corpus_dir / "tea.md").write_text("Longjing tea.", encoding="utf-8")
    process = rag_index_paused(settings, "embed:done")
    try:
        assert process.stderr is not None
        while not process.stderr.readline().startswith("paused at"):
            pass
        from rag.errors import IndexLockedError

        with pytest.raises(IndexLockedError, match="another"):
            build(settings)
    finally:
        process.kill()
        process.wait(timeout=10)
