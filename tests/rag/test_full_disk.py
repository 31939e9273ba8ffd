"""A full disk: `rag index` removes its partial build at once and says which folder's
disk is full (exit code of DiskFullError, one line, no traceback); a chat turn whose
storage fails still returns its answer, with the warning `conversation_not_saved`.

The real thing runs on a tiny tmpfs (mounting needs root; skipped otherwise); the same
paths are also driven by a write of ours that fails with ENOSPC."""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import main
from rag import indexer
from rag.chat import ChatService, ConversationStore
from rag.config import Settings
from rag.errors import DiskFullError
from rag.indexer import build, current_version, open_index, versions_dir

QUESTION = "Which chip did DeepSeek use, the H800?"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted under tmp_path."""
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


def partial_builds(settings: Settings) -> list[str]:
    folder = versions_dir(settings.index_dir)
    published = current_version(settings.index_dir)
    return sorted(p.name for p in folder.iterdir() if p.name != published)


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name in ("corpus_dir", "index_dir", "cache_dir", "data_dir", "embedding"):
        monkeypatch.setenv(f"RAG_{name.upper()}", str(getattr(settings, name)))


def test_rag_index_on_a_full_disk_says_so_and_leaves_no_partial_build(
    settings: Settings,
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings.model_copy(update={"index_dir": small_disk / "index"})
    first = build(settings).version
    (settings.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.\n" * 50)
    filler = fill(small_disk, leave=60_000)
    used = shutil.disk_usage(small_disk).used
    use_env(monkeypatch, settings)
    code = main(["index"])
    err = capsys.readouterr().err
    assert code == DiskFullError.exit_code != 1  # its own code, not "anything else"
    assert err.count("\n") == 1 and err.startswith("error: no space left on the disk of ")
    assert str(small_disk) in err and "Traceback" not in err
    assert current_version(settings.index_dir) == first and partial_builds(settings) == []
    assert shutil.disk_usage(small_disk).used <= used  # what it wrote is gone at once
    assert len(open_index(settings).passages) > 0  # the published version still opens
    filler.unlink()
    assert main(["index"]) == 0  # with space again, the build completes
    assert current_version(settings.index_dir) != first


def test_a_build_whose_write_fails_for_lack_of_space_is_removed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(settings).version
    (settings.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.\n")

    def no_space(folder: Path, *args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "centroids.npz"))

    monkeypatch.setattr(indexer, "save_centroids", no_space)
    with pytest.raises(DiskFullError, match=r"no space left on the disk of .*versions"):
        build(settings)
    assert current_version(settings.index_dir) == first and partial_builds(settings) == []


def test_a_build_that_fails_otherwise_is_removed_and_reraised(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(settings).version
    (settings.corpus_dir / "tea.md").write_text("Longjing tea grows near West Lake.\n")

    def broken(folder: Path, *args: object) -> None:
        raise ValueError("something else went wrong")

    monkeypatch.setattr(indexer, "save_centroids", broken)
    with pytest.raises(ValueError, match="something else"):
        build(settings)
    assert current_version(settings.index_dir) == first and partial_builds(settings) == []


def test_a_turn_on_a_full_data_disk_is_answered_with_a_warning(
    settings: Settings, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build(settings)
    service = ChatService(
        settings.model_copy(update={"data_dir": small_disk, "abstain_threshold": -1.0})
    )
    try:
        saved = service.ask(QUESTION)
        assert "conversation_not_saved" not in saved.warnings
        fill(small_disk)
        answer = service.ask(QUESTION)
        follow = service.ask("And the export controls?", saved.conversation_id)
    finally:
        service.close()
    for lost in (answer, follow):
        assert lost.citations and not lost.abstained  # the computed answer comes back
        assert "conversation_not_saved" in lost.warnings
    assert "not saved" in caplog.text


def test_a_turn_whose_store_fails_is_answered_with_a_warning(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings)
    service = ChatService(settings.model_copy(update={"abstain_threshold": -1.0}))

    def full(self: ConversationStore, *args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ConversationStore, "add", full)
    answer = service.ask(QUESTION)
    assert answer.citations and answer.warnings == ["conversation_not_saved"]
    service.close()
