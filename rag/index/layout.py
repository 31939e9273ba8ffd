"""The on-disk format of an index folder (``Settings.index_dir``)::

    CURRENT                 the published version id (replaced atomically)
    .lock                   held by the one indexer that may write here
    versions/<id>/          a complete version:
        manifest.json       what was indexed, with which model and settings (Manifest)
        passages.jsonl      one passage record a line, with its sentences' spans,
                            kinds and contents (passage_record)
        sentences.json      [doc_id, start, end] of each sentence: row i of...
        sentences.npy       ...the sentence vectors (float32, rows x dim)
        centroids.npz       the mean sentence vector of each language
        bm25/               the BM25 index (bm25s' files and ids.txt)
        latent/             latent terms of passages and sentences (with a sparse head)
        chroma/             the passage vectors (embedded Chroma; none with a server)
    versions/<id>.building/ a build in progress (removed if a crash left it)

A version's id is its UTC build time and a random suffix (``20250101T120000-a1b2c3``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np

from rag.config import Settings
from rag.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    RagError,
    describe,
)
from rag.index.store import Location
from rag.types import Passage, Sentence

MANIFEST_FORMAT = 1
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
SENTENCE_KEYS = "sentences.json"
SENTENCE_VECTORS = "sentences.npy"
CENTROIDS = "centroids.npz"
BM25 = "bm25"
LATENT = "latent"
CHROMA = "chroma"


class ChunkingParams(TypedDict):
    """How the passages of a version were cut."""

    chunker: int
    """``rag.index.chunking.VERSION``."""
    chunk_tokens: int
    chunk_overlap_tokens: int


class DocumentEntry(TypedDict):
    """What the manifest records of one indexed document."""

    sha256: str
    lang: str
    title: str
    kind: str
    passages: list[str]
    """Passage ids, in order."""


class Counts(TypedDict):
    """How many documents, passages and distinct sentences a version holds."""

    documents: int
    passages: int
    sentences: int


class Manifest(TypedDict):
    """``manifest.json`` of a version, as ``build`` writes it."""

    format: int
    version: str
    created: str
    """ISO 8601 UTC time of the build, to the second."""
    corpus_dir: str
    embedding_model: str
    """``rag.index.embedding.model_id`` of the model that made the vectors."""
    chunking: ChunkingParams
    latent_terms: NotRequired[int]
    """Latent terms kept per passage (0: none); missing in versions built before them."""
    sentence_latent_terms: NotRequired[int]
    language_centroids: NotRequired[bool]
    counts: Counts
    documents: dict[str, DocumentEntry]
    """By doc_id (the path relative to the corpus folder)."""
    problems: list[dict[str, str]]
    """Files skipped, each ``{"source", "reason"}``."""


REQUIRED = ("version", "embedding_model", "chunking", "counts", "documents")
"""Keys without which a manifest cannot be used."""


def versions_dir(index_dir: Path) -> Path:
    """The folder of an index folder's versions."""
    return index_dir / "versions"


def version_dir(index_dir: Path, version: str) -> Path:
    """The folder of one version."""
    return versions_dir(index_dir) / version


VERSION_NAME = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
"""A version id (``new_version``): CURRENT must hold exactly one, so what it holds is
never a path (``../../etc``) nor anything else joined onto the index folder."""

REBUILD = "run `rag index --rebuild`"
"""What every IndexCorruptError tells the user to do."""


def new_version() -> str:
    """A new version id: the UTC time to the second, then 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def current_version(index_dir: Path) -> str | None:
    """The published version's id, or None when nothing is published (no CURRENT).
    IndexCorruptError, naming CURRENT, when it holds anything but a version id."""
    path = index_dir / "CURRENT"
    try:
        text = path.read_bytes().decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} cannot be read ({describe(exc)}); {REBUILD}") from exc
    if not VERSION_NAME.fullmatch(text):
        shown = repr(text[:40]) + ("..." if len(text) > 40 else "")
        raise IndexCorruptError(f"{path} holds {shown}, not an index version; {REBUILD}")
    return text


@contextlib.contextmanager
def damaged(version: str, path: object) -> Iterator[None]:
    """Whatever reading ``path`` (a file or folder of ``version``, or the vector store's
    Location) raises becomes IndexCorruptError naming it, on one line: a missing,
    truncated or garbled file makes json, numpy, bm25s or Chroma raise almost anything
    (25 kinds of damage tried in tests/rag/index/test_damaged_index.py). The engine's
    own errors (IndexCorruptError from ``expect``, StoreUnavailableError) pass through."""
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        raise IndexCorruptError(
            f"index version {version} is damaged: {path} cannot be read ({describe(exc)}); "
            + REBUILD
        ) from exc


def expect(version: str, path: object, found: int, wanted: int, what: str) -> None:
    """IndexCorruptError unless ``path`` of ``version`` holds the ``wanted`` number of
    ``what`` that the manifest counts (``found``)."""
    if found != wanted:
        raise IndexCorruptError(
            f"index version {version} is damaged: {path} holds {found} {what}, the manifest "
            f"counts {wanted}; {REBUILD}"
        )


def write_current(index_dir: Path, version: str) -> None:
    """Publish ``version``: CURRENT is written aside, synced, and moved over the old
    one in one ``os.replace``, so a reader sees the old version or the new one."""
    tmp = index_dir / f".CURRENT.{secrets.token_hex(4)}"
    tmp.write_text(version + "\n", encoding="utf-8")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / "CURRENT")


def read_manifest(index_dir: Path, version: str) -> Manifest:
    """The manifest of ``version``. IndexCorruptError, naming what is wrong, when the
    version's folder is missing, or its manifest is missing, is not JSON, lacks a key
    of REQUIRED or has counts that are not numbers."""
    folder = version_dir(index_dir, version)
    if not folder.is_dir():
        raise IndexCorruptError(
            f"CURRENT names version {version} but its folder {folder} is missing; {REBUILD}"
        )
    path = folder / MANIFEST
    with damaged(version, path):
        data = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in REQUIRED if not isinstance(data, dict) or key not in data]
    if missing:
        raise IndexCorruptError(
            f"index version {version} is damaged: {path} lacks {', '.join(missing)}; {REBUILD}"
        )
    counts = data["counts"]
    if not isinstance(counts, dict) or not all(
        isinstance(counts.get(key), int) for key in Counts.__required_keys__
    ):
        raise IndexCorruptError(
            f"index version {version} is damaged: {path} counts no documents, passages "
            f"and sentences; {REBUILD}"
        )
    manifest: Manifest = data
    return manifest


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` into a version's ``folder``."""
    (folder / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )


def published(index_dir: Path) -> tuple[str, Manifest]:
    """The published version and its manifest; IndexMissingError when there is none."""
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in '{index_dir}'; run `rag index` to build one")
    return version, read_manifest(index_dir, version)


def documents(manifest: Manifest) -> list[dict[str, Any]]:
    """One row per indexed document: source, title, lang, passages, sha256."""
    return [
        {
            "source": name,
            "title": info["title"],
            "lang": info["lang"],
            "passages": len(info["passages"]),
            "sha256": info["sha256"],
        }
        for name, info in manifest["documents"].items()
    ]


def check_model(built_with: str, wanted: str) -> None:
    """IndexMismatchError, naming both models, unless they are the same."""
    if built_with != wanted:
        raise IndexMismatchError(
            f"the index was built with embedding model '{built_with}' but the setting asks "
            f"for '{wanted}'; run `rag index --rebuild` to rebuild it"
        )


def location(settings: Settings, version: str) -> Location:
    """Where ``version``'s passage vectors live: its folder, or a server collection."""
    return Location.of(
        version_dir(settings.index_dir, version),
        version,
        settings.chroma_url,
        settings.chroma_prefix,
    )


def passage_record(p: Passage) -> dict[str, Any]:
    """One line of ``passages.jsonl``: the passage, each of its sentences as
    ``[start, end, kind, content]`` (its content is theirs joined by spaces)."""
    return {
        "passage_id": p.passage_id,
        "doc_id": p.doc_id,
        "start_char": p.start_char,
        "end_char": p.end_char,
        "start_line": p.start_line,
        "end_line": p.end_line,
        "text": p.text,
        "lang": p.lang,
        "sentences": [[s.start, s.end, s.kind, s.content] for s in p.sentences],
    }


def _sentence(p: dict[str, Any], row: list[Any]) -> Sentence:
    if len(row) == 4:
        return Sentence(int(row[0]), int(row[1]), str(row[2]), str(row[3]))
    # a version built before sentences had kinds (chunker 3): read as statements
    start, end = int(row[0]), int(row[1])
    raw = str(p["text"])[start - p["start_char"] : end - p["start_char"]]
    return Sentence(start, end, "statement", " ".join(raw.split()))


def passage_from_record(r: dict[str, Any]) -> Passage:
    """The Passage of one ``passages.jsonl`` record (KeyError, TypeError or
    ValueError when the record is not one)."""
    sentences = tuple(_sentence(r, row) for row in r["sentences"])
    return Passage(
        passage_id=r["passage_id"],
        doc_id=r["doc_id"],
        start_char=r["start_char"],
        end_char=r["end_char"],
        start_line=r["start_line"],
        end_line=r["end_line"],
        text=r["text"],
        lang=r["lang"],
        sentences=sentences,
        content=r["content"] if "content" in r else " ".join(s.content for s in sentences),
    )


def centroids(langs: list[str], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """The mean of the rows of ``vectors`` of each language (``langs``: the language of
    each row), as float32."""
    names = sorted(set(langs))
    number = {lang: i for i, lang in enumerate(names)}
    of_row = np.array([number[lang] for lang in langs], dtype=np.int64)
    return {
        lang: vectors[of_row == i].mean(axis=0).astype(np.float32) for i, lang in enumerate(names)
    }


def save_centroids(folder: Path, langs: list[str], vectors: np.ndarray) -> None:
    """The mean sentence vector of each language (rows of ``vectors`` by ``langs``)."""
    means = centroids(langs, vectors)
    stacked = np.stack(list(means.values())) if means else np.zeros((0, 0), dtype=np.float32)
    np.savez(folder / CENTROIDS, langs=np.array(list(means)), vectors=stacked)


def load_centroids(folder: Path) -> dict[str, np.ndarray]:
    """Language -> mean sentence vector; empty for an index built without them."""
    if not (folder / CENTROIDS).is_file():
        return {}
    with np.load(folder / CENTROIDS) as arrays:
        return dict(zip(arrays["langs"].tolist(), arrays["vectors"], strict=True))
