"""Each published version's pipeline is closed once no request uses it: publishing
versions while serving leaves open files and threads bounded, and no file of a
deleted version stays open (its disk space is freed)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.index.build import build
from rag.index.layout import versions_dir
from rag.query.chat import ChatService
from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow

QUESTION = "Which chip did DeepSeek use, the H800?"


def open_files() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
    return out


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def publish_over_http(client: httpx.Client, n: int) -> str:
    assert client.post("/v1/index", params={"rebuild": n % 2 == 0}).status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get("/v1/index").json()
        if status["build"]["state"] != "running":
            assert status["build"]["state"] == "succeeded", status
            return str(status["build"]["report"]["version"])
        time.sleep(0.05)
    raise AssertionError("the index build did not finish")


def test_six_publishes_while_serving_leak_no_files_or_threads(
    live: LiveServer, indexed: Settings
) -> None:
    fds: list[int] = []
    threads: list[int] = []
    with live.client() as client:
        for n in range(7):
            (indexed.corpus_dir / f"tea{n}.md").write_text(
                f"Longjing tea garden {n} grows near West Lake.", encoding="utf-8"
            )
            version = publish_over_http(client, n)
            answer = client.post("/v1/chat", json={"message": QUESTION})
            assert answer.status_code == 200 and answer.json()["citations"]
            assert client.get("/readyz").json()["index_version"] == version
            fds.append(len(open_files()))
            threads.append(native_threads())
    # the first round pays for what is opened once (pools, the builder's imports)
    assert max(fds[1:]) <= fds[1] + 4, fds
    assert max(threads[1:]) <= threads[1] + 4, threads
    kept = {p.name for p in versions_dir(indexed.index_dir).iterdir()}
    assert len(kept) <= 2  # the builder collects all but the current and previous
    index = str(indexed.index_dir.resolve())
    held = [f for f in open_files() if f.startswith(index)]
    stale = [f for f in held if not any(f"/versions/{v}/" in f for v in kept)]
    assert not stale, stale
    assert not [f for f in held if f.endswith("(deleted)")]


def test_a_request_in_progress_keeps_its_pipeline_open_across_a_switch(
    indexed: Settings,
) -> None:
    service = ChatService(indexed)
    try:
        with service.pipeline_in_use() as pipeline:
            (indexed.corpus_dir / "tea.md").write_text("Longjing tea.", encoding="utf-8")
            build(indexed)
            other = threading.Thread(target=service.ask, args=(QUESTION,))
            other.start()
            other.join()  # answered by the new pipeline; the switch retired the old one
            assert service.pipeline is not pipeline and service.busy == 1
            # still usable: the old pipeline's store and memory maps are open
            index = pipeline.index
            assert index.vectors.count() == index.manifest["counts"]["passages"]
            assert index.sentence_vectors.shape[0] > 0
            assert pipeline.retriever.search(QUESTION).passages
        # the last user left: closed now
        assert pipeline.index.sentence_vectors.shape[0] == 0 and service.busy == 0
        assert not [f for f in open_files() if f.startswith(str(Path(pipeline.index.path)))]
    finally:
        service.close()
