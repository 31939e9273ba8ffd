"""A full disk: `rag index` removes its partial build at once and says which folder's
disk is full (exit code of DiskFullError, one line, no traceback). (A chat turn on a
full disk: tests/rag/query/test_chat.py.)

The real thing runs on a tiny tmpfs (mounting needs root; skipped otherwise); the same
paths are also driven by a write of ours that fails with ENOSPC."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from api.cli import main
from rag.config import Settings
from rag.errors import DiskFullError
from rag.index import build as builder
from rag.index.build import build
from rag.index.layout import current_version, versions_dir
from rag.index.reader import open_index
from tests.conftest import fill, use_env


def partial_builds(settings: Settings) -> list[str]:
    folder = versions_dir(settings.index_dir)
    published = current_version(settings.index_dir)
    return sorted(p.name for p in folder.iterdir() if p.name != published)


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

    monkeypatch.setattr(builder, "save_centroids", no_space)
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

    monkeypatch.setattr(builder, "save_centroids", broken)
    with pytest.raises(ValueError, match="something else"):
        build(settings)
    assert current_version(settings.index_dir) == first and partial_builds(settings) == []
