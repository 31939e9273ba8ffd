"""Build and publish index versions, in named stages (``STAGES``):

- **scan**: read the corpus, the published version's manifest, and what changed;
- **chunk**: cut the documents into passages, and list their distinct sentences;
- **embed**: vectors (and latent terms) of every passage and sentence, through the
  embedding cache, so only new texts reach the model;
- **write**: a new version folder (rag/index/layout.py), started as a copy of the
  current one's Chroma folder (or collection) that receives only the delta;
- **publish**: the new version becomes current by one ``os.replace`` of CURRENT, so
  a reader always sees a complete index;
- **collect**: versions older than the previous one, and partial builds, removed.

Re-indexing an unchanged corpus stops after scan and writes nothing. One writer at a
time (``writer_lock``); a crash at any moment leaves the previous version serving,
which the crash tests check by stopping a build at each of ``PAUSE_POINTS``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.embeddings import BaseEmbedding

from rag.config import Settings
from rag.errors import ConfigError, DiskFullError, IndexCorruptError, IndexLockedError
from rag.index import chunking, corpus
from rag.index.embedding import EmbeddingCache, load_embedding, model_id
from rag.index.latent import (
    LATENT_TERMS,
    SENTENCE_TERMS,
    LatentIndex,
    SentenceTerms,
    supports_latent,
)
from rag.index.layout import (
    BM25,
    CHROMA,
    LATENT,
    MANIFEST_FORMAT,
    PASSAGES,
    SENTENCE_KEYS,
    SENTENCE_VECTORS,
    ChunkingParams,
    Manifest,
    centroids,
    check_model,
    current_version,
    location,
    new_version,
    passage_record,
    read_manifest,
    save_centroids,
    version_dir,
    versions_dir,
    write_current,
    write_manifest,
)
from rag.index.lexical import LexicalIndex
from rag.index.reader import LoadedIndex
from rag.index.store import MemoryVectors, VectorStore, drop_server_collections
from rag.types import Passage, SourceDocument, Terms

Progress = Callable[[int, int], None]
"""``progress(done, total)``: texts embedded so far, of how many."""

STAGES: dict[str, tuple[str, ...]] = {
    "scan": (),
    "chunk": (),
    "embed": ("batch",),
    "write": ("stored",),
    "publish": (),
    "collect": (),
}
"""The stages of a build, in order, each with the moments inside it where a crash
test may stop it besides its start and its end: ``embed:batch`` after each batch sent
to the model, ``write:stored`` once the new version's vector store is written (on a
Chroma server: its collection exists, unpublished)."""

PAUSE_POINTS = tuple(
    f"{stage}:{moment}" for stage, inner in STAGES.items() for moment in ("start", *inner, "done")
)
"""Moments of a build where ``Settings.index_pause_at`` stops it (for crash tests:
the test kills the paused indexer there): ``scan:start`` ... ``collect:done``."""

SentenceKey = list[Any]
"""``[doc_id, start, end]`` of a sentence: a row of ``sentences.json``."""


@dataclass
class IndexReport:
    """What one build did (``rag index --json`` prints ``to_dict()``)."""

    version: str
    changed: bool
    """False when the corpus was unchanged and nothing was written."""
    documents: int
    passages: int
    added_documents: list[str] = field(default_factory=list)
    changed_documents: list[str] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    embedded: int = 0
    """Texts (passages and sentences) sent to the model; the rest came from the cache."""
    problems: list[corpus.FileProblem] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        state = "published version" if self.changed else "unchanged, still version"
        parts = [
            f"{state} {self.version}: {self.documents} documents, {self.passages} passages",
            f"{len(self.added_documents)} added, {len(self.changed_documents)} changed, "
            f"{len(self.removed_documents)} removed",
            f"{self.embedded} texts embedded",
            f"{len(self.problems)} files skipped",
            f"{self.seconds:.1f} s",
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``rag index --json``)."""
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


@dataclass
class Scan:
    """What the scan stage found."""

    documents: dict[str, SourceDocument]
    problems: list[corpus.FileProblem]
    embedding: BaseEmbedding
    model: str
    chunking: ChunkingParams
    latent_terms: int
    """Latent terms kept per passage (0: the embedding has no sparse head, or off)."""
    sentence_terms: int
    previous: str | None
    """The published version, if any."""
    old: Manifest | None
    """Its manifest, when its passages can be reused (same model, chunking, terms)."""
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def unchanged(self) -> bool:
        """Nothing to do: the published version holds this corpus already."""
        return (
            self.old is not None
            and self.previous is not None
            and not (self.added or self.changed or self.removed)
        )

    @property
    def old_ids(self) -> set[str]:
        """Passage ids of the reusable previous version."""
        if self.old is None:
            return set()
        return {pid for d in self.old["documents"].values() for pid in d["passages"]}


@dataclass
class Chunks:
    """What the chunk stage made."""

    by_document: dict[str, list[Passage]]
    passages: list[Passage]
    """All passages, documents in doc_id order."""
    sentence_keys: list[SentenceKey]
    sentence_texts: list[str]
    """The distinct sentences' contents (``Sentence.content``), as embedded."""


@dataclass
class Embedded:
    """What the embed stage gave: rows in the order of ``Chunks``."""

    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    latent: list[Terms] | None
    sentence_latent: list[Terms] | None
    embedded: int
    """Texts sent to the model."""


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's writer lock; a second indexer is refused at once
    (IndexLockedError)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(
                f"another indexer is writing to '{index_dir}'; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pauser(point: str | None) -> Callable[[str], None]:
    """``pause(moment)``: waits an hour (to be killed) when ``moment`` is ``point``."""
    if point is not None and point not in PAUSE_POINTS:
        raise ConfigError(f"index_pause_at must be one of {', '.join(PAUSE_POINTS)}, got '{point}'")

    def pause(moment: str) -> None:
        if moment == point:
            sys.stderr.write(f"paused at {moment}\n")
            sys.stderr.flush()
            time.sleep(3600)

    return pause


@contextlib.contextmanager
def _stage(name: str, pause: Callable[[str], None]) -> Iterator[None]:
    pause(f"{name}:start")
    yield
    pause(f"{name}:done")


def scan(settings: Settings, rebuild: bool = False) -> Scan:
    """Read the corpus and the published manifest; decide what can be reused.

    The previous version's passages are reused unless ``rebuild``, or it was chunked
    otherwise or with other latent terms, or has no language centroids; a previous
    version built with another model (IndexMismatchError) or damaged
    (IndexCorruptError) is refused unless ``rebuild``."""
    loaded = corpus.load(settings.corpus_dir)
    embedding = load_embedding(settings.embedding)
    model = model_id(embedding)
    params: ChunkingParams = {
        "chunker": chunking.VERSION,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
    }
    try:
        previous = current_version(settings.index_dir)
        old = read_manifest(settings.index_dir, previous) if previous and not rebuild else None
    except IndexCorruptError:
        if not rebuild:
            raise
        previous, old = None, None  # a rebuild needs nothing of a damaged version
    if old is not None:
        check_model(old["embedding_model"], model)
    latent_terms = LATENT_TERMS if settings.latent and supports_latent(embedding) else 0
    sentence_terms = SENTENCE_TERMS if latent_terms else 0
    if old is not None and (
        old.get("chunking") != params
        or old.get("latent_terms", 0) != latent_terms
        or old.get("sentence_latent_terms", 0) != sentence_terms
        or not old.get("language_centroids")
    ):
        old = None
    docs = {d.doc_id: d for d in loaded.documents}
    old_docs = old["documents"] if old else {}
    return Scan(
        documents=docs,
        problems=loaded.problems,
        embedding=embedding,
        model=model,
        chunking=params,
        latent_terms=latent_terms,
        sentence_terms=sentence_terms,
        previous=previous,
        old=old,
        added=sorted(d for d in docs if d not in old_docs),
        changed=sorted(
            d for d in docs if d in old_docs and old_docs[d]["sha256"] != docs[d].sha256
        ),
        removed=sorted(d for d in old_docs if d not in docs),
    )


def sentences(passages: Sequence[Passage]) -> tuple[list[SentenceKey], list[str]]:
    """The distinct sentences of all passages: keys [doc_id, start, end] and contents."""
    keys: list[SentenceKey] = []
    texts: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    for p in passages:
        for s in p.sentences:
            if (p.doc_id, s.start, s.end) in seen:
                continue
            seen.add((p.doc_id, s.start, s.end))
            keys.append([p.doc_id, s.start, s.end])
            texts.append(s.content)
    return keys, texts


def _chunks(docs: dict[str, SourceDocument], max_tokens: int, overlap_tokens: int) -> Chunks:
    by_document = {d: chunking.split(doc, max_tokens, overlap_tokens) for d, doc in docs.items()}
    passages = [p for d in sorted(by_document) for p in by_document[d]]
    keys, texts = sentences(passages)
    return Chunks(by_document, passages, keys, texts)


def chunk(settings: Settings, scanned: Scan) -> Chunks:
    """Passages of every document (``chunk_tokens``, ``chunk_overlap_tokens``)."""
    return _chunks(scanned.documents, settings.chunk_tokens, settings.chunk_overlap_tokens)


def embed(
    settings: Settings,
    scanned: Scan,
    chunks: Chunks,
    progress: Progress | None = None,
    on_batch: Callable[[], None] | None = None,
) -> Embedded:
    """Vectors (and latent terms, when the scan kept them) of every passage and
    sentence, through the cache in ``settings.cache_dir``; ``progress`` counts the
    texts sent to the model, ``on_batch`` is called after each batch."""
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite", scanned.embedding)
    try:
        contents = [p.content for p in chunks.passages]
        texts = contents + chunks.sentence_texts
        todo = len(cache.missing(texts))
        if scanned.latent_terms:
            todo += len(cache.missing(texts, cache.LATENT))
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, todo)
            if on_batch is not None:
                on_batch()

        if progress is not None:
            progress(0, todo)
        passage_vectors = cache.embed(contents, progress=tick)
        sentence_vectors = cache.embed(chunks.sentence_texts, progress=tick)
        latent = sentence_latent = None
        if scanned.latent_terms:
            latent = cache.latent(contents, progress=tick)
            sentence_latent = cache.latent(chunks.sentence_texts, progress=tick)
        return Embedded(passage_vectors, sentence_vectors, latent, sentence_latent, cache.embedded)
    finally:
        cache.close()


def _passage_meta(p: Passage) -> dict[str, str | int]:
    """What the vector store keeps with a passage's vector."""
    return {
        "doc_id": p.doc_id,
        "start_char": p.start_char,
        "end_char": p.end_char,
        "start_line": p.start_line,
        "end_line": p.end_line,
        "lang": p.lang,
    }


def _store(
    settings: Settings, scanned: Scan, staging: Path, version: str, keep_ids: set[str]
) -> VectorStore:
    """The new version's vector store, holding the previous one's passages (a copy of
    its folder; on a server, a copy of its passages in ``keep_ids``)."""
    previous = scanned.previous if scanned.old is not None else None
    if settings.chroma_url:
        store = VectorStore(location(settings, version))
        if previous:
            source = VectorStore(location(settings, previous))
            try:
                store.copy_from(source, sorted(scanned.old_ids & keep_ids))
            finally:
                source.close()
        return store
    if previous:
        shutil.copytree(version_dir(settings.index_dir, previous) / CHROMA, staging / CHROMA)
    return VectorStore(staging / CHROMA)


def manifest(version: str, corpus_dir: Path, scanned: Scan, chunks: Chunks) -> Manifest:
    """The manifest of a new version of ``corpus_dir``."""
    return {
        "format": MANIFEST_FORMAT,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "corpus_dir": str(corpus_dir),
        "embedding_model": scanned.model,
        "chunking": scanned.chunking,
        "latent_terms": scanned.latent_terms,
        "sentence_latent_terms": scanned.sentence_terms,
        "language_centroids": True,
        "counts": {
            "documents": len(scanned.documents),
            "passages": len(chunks.passages),
            "sentences": len(chunks.sentence_keys),
        },
        "documents": {
            d: {
                "sha256": doc.sha256,
                "lang": doc.lang,
                "title": doc.title,
                "kind": doc.kind,
                "passages": [p.passage_id for p in chunks.by_document[d]],
            }
            for d, doc in sorted(scanned.documents.items())
        },
        "problems": [asdict(p) for p in scanned.problems],
    }


def write(
    settings: Settings,
    scanned: Scan,
    chunks: Chunks,
    vectors: Embedded,
    on_stored: Callable[[], None] | None = None,
) -> str:
    """Write a new version into ``versions/<id>.building/``, then rename it to
    ``versions/<id>/`` (not yet current); returns its id. ``on_stored`` is called
    once the vector store holds the version's passages."""
    index_dir = settings.index_dir
    version = new_version()
    staging = versions_dir(index_dir) / f"{version}.building"
    staging.mkdir(parents=True)
    passages = chunks.passages
    keep_ids = {p.passage_id for p in passages}
    old_ids = scanned.old_ids
    store = _store(settings, scanned, staging, version, keep_ids)
    try:
        if settings.chroma_url:
            old_ids &= keep_ids  # only the kept passages were copied
        store.delete(sorted(old_ids - keep_ids))
        new_rows = [i for i, p in enumerate(passages) if p.passage_id not in old_ids]
        store.add(
            [passages[i].passage_id for i in new_rows],
            [passages[i].content for i in new_rows],
            vectors.passage_vectors[new_rows] if new_rows else np.zeros((0, 0), np.float32),
            [_passage_meta(passages[i]) for i in new_rows],
        )
        if store.count() != len(passages):
            raise RuntimeError(
                f"vector store holds {store.count()} passages, expected {len(passages)}"
            )
    finally:
        store.close()  # its files and threads, at once: a failed build removes its folder
    if on_stored is not None:
        on_stored()

    passage_ids = [p.passage_id for p in passages]
    LexicalIndex.build(passage_ids, [p.content for p in passages]).save(staging / BM25)
    if vectors.latent is not None:
        dim = scanned.embedding.latent_dim  # type: ignore[attr-defined]
        LatentIndex.build(passage_ids, vectors.latent, dim).save(staging / LATENT)
        if vectors.sentence_latent is not None:
            SentenceTerms.build(vectors.sentence_latent, dim).save(staging / LATENT)
    with open(staging / PASSAGES, "w", encoding="utf-8") as out:
        for p in passages:
            out.write(json.dumps(passage_record(p), ensure_ascii=False) + "\n")
    np.save(staging / SENTENCE_VECTORS, vectors.sentence_vectors)
    langs = [scanned.documents[k[0]].lang for k in chunks.sentence_keys]
    save_centroids(staging, langs, vectors.sentence_vectors)
    (staging / SENTENCE_KEYS).write_text(json.dumps(chunks.sentence_keys), encoding="utf-8")
    write_manifest(staging, manifest(version, settings.corpus_dir, scanned, chunks))
    os.replace(staging, version_dir(index_dir, version))
    return version


def publish(settings: Settings, version: str) -> None:
    """Make ``version`` current (rag/index/layout.py ``write_current``)."""
    write_current(settings.index_dir, version)


def collect(settings: Settings, keep: set[str]) -> None:
    """Remove partial builds and versions not in ``keep`` (their folders, and their
    collections on a Chroma server)."""
    index_dir = settings.index_dir
    if settings.chroma_url:
        drop_server_collections(settings.chroma_url, settings.chroma_prefix, keep)
    folder = versions_dir(index_dir)
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
    for stray in index_dir.glob(".CURRENT.*"):
        stray.unlink(missing_ok=True)


@contextlib.contextmanager
def _cleaned_on_failure(settings: Settings) -> Iterator[None]:
    """A build that fails (the writer lock still held) removes what it wrote at once:
    its staging folder, a version it renamed but did not publish, their collections
    on a Chroma server (``remove_unpublished``). A failure for lack of space becomes
    DiskFullError naming the folder whose disk is full."""
    try:
        yield
    except BaseException as exc:
        try:
            remove_unpublished(settings)
        except Exception as cleanup:  # never hide the build's own error
            sys.stderr.write(f"could not remove the partial build: {cleanup}\n")
        if isinstance(exc, Exception) and disk_full(exc):
            folder = _full_folder(exc, settings)
            usage = shutil.disk_usage(folder)
            raise DiskFullError(
                f"no space left on the disk of {folder} ({usage.free // 2**20} MB free of "
                f"{usage.total // 2**20} MB); the partial build was removed and the published "
                "index still serves; free some space and run `rag index` again"
            ) from exc
        raise


def remove_unpublished(settings: Settings) -> None:
    """Remove what a build wrote and did not publish: staging folders, and versions
    newer than the published one (renamed, never made current), with their server
    collections (``collect``, keeping every other version)."""
    folder = versions_dir(settings.index_dir)
    if not folder.is_dir():
        return
    try:
        current = current_version(settings.index_dir)
    except IndexCorruptError:
        current = None
    keep = {
        child.name
        for child in folder.iterdir()
        if not child.name.endswith(".building") and (current is None or child.name <= current)
    }
    collect(settings, keep)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a write refused for lack of space:
    ENOSPC or EDQUOT, shutil.copytree's list of errors, SQLite's and Chroma's
    "database or disk is full"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if "No space left on device" in text or "disk is full" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _full_folder(exc: BaseException, settings: Settings) -> Path:
    """The folder whose disk refused the write: the file the error names, else the
    index or cache folder with the least space left."""
    name = getattr(exc, "filename", None)
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        name = exc.args[0][0][1] if exc.args[0] and len(exc.args[0][0]) == 3 else None
    candidates = [Path(name)] if isinstance(name, str) else []
    candidates += [settings.index_dir, settings.cache_dir]
    existing = []
    for path in candidates:
        while not path.exists() and path != path.parent:
            path = path.parent
        existing.append(path)
    if isinstance(name, str):
        return existing[0] if existing[0].is_dir() else existing[0].parent
    return min(existing, key=lambda p: shutil.disk_usage(p).free)


def build(
    settings: Settings, rebuild: bool = False, progress: Progress | None = None
) -> IndexReport:
    """Index ``settings.corpus_dir`` into ``settings.index_dir`` (see the module doc).

    Raises IndexLockedError while another build holds the folder, IndexMismatchError
    or IndexCorruptError when the published version was built with another model or
    is damaged (unless ``rebuild``), CorpusError when the corpus folder is missing,
    DiskFullError when a write failed for lack of space; files that cannot be read
    are skipped and listed in ``IndexReport.problems``. A build that fails removes
    what it wrote before it returns (``remove_unpublished``)."""
    started = time.perf_counter()
    pause = _pauser(settings.index_pause_at)
    with writer_lock(settings.index_dir), _cleaned_on_failure(settings):
        with _stage("scan", pause):
            scanned = scan(settings, rebuild)
        previous = {scanned.previous} if scanned.previous else set()
        collect(settings, keep=previous)  # what a crashed build left
        if scanned.unchanged:
            assert scanned.previous is not None and scanned.old is not None
            return IndexReport(
                version=scanned.previous,
                changed=False,
                documents=len(scanned.documents),
                passages=scanned.old["counts"]["passages"],
                problems=scanned.problems,
                seconds=time.perf_counter() - started,
            )
        with _stage("chunk", pause):
            chunks = chunk(settings, scanned)
        with _stage("embed", pause):
            vectors = embed(settings, scanned, chunks, progress, lambda: pause("embed:batch"))
        with _stage("write", pause):
            version = write(settings, scanned, chunks, vectors, lambda: pause("write:stored"))
        with _stage("publish", pause):
            publish(settings, version)
        with _stage("collect", pause):
            collect(settings, keep={version} | previous)
        return IndexReport(
            version=version,
            changed=True,
            documents=len(scanned.documents),
            passages=len(chunks.passages),
            added_documents=scanned.added,
            changed_documents=scanned.changed,
            removed_documents=scanned.removed,
            embedded=vectors.embedded,
            problems=scanned.problems,
            seconds=time.perf_counter() - started,
        )


def in_memory(
    documents: Sequence[SourceDocument],
    embedding: BaseEmbedding,
    chunk_tokens: int = 160,
    chunk_overlap_tokens: int = 40,
) -> LoadedIndex:
    """An index of ``documents`` built in memory: the LoadedIndex that ``build`` then
    ``open_index`` would give (latent terms too when the embedding has a sparse head),
    with no cache, no folder and no Chroma (passage vectors in ``MemoryVectors``). For
    tests and benchmarks of the read side; nothing is published."""
    docs = {d.doc_id: d for d in documents}
    chunks = _chunks(docs, chunk_tokens, chunk_overlap_tokens)
    passages = chunks.passages
    ids = [p.passage_id for p in passages]
    contents = [p.content for p in passages]

    def vectors(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(embedding.get_text_embedding_batch(texts), dtype=np.float32)

    passage_vectors = vectors(contents)
    sentence_vectors = vectors(chunks.sentence_texts)
    latent = terms = None
    if supports_latent(embedding):
        dim = embedding.latent_dim  # type: ignore[attr-defined]
        latent = LatentIndex.build(ids, embedding.latent_terms(contents), dim)  # type: ignore[attr-defined]
        terms = SentenceTerms.build(embedding.latent_terms(chunks.sentence_texts), dim)  # type: ignore[attr-defined]
    scanned = Scan(
        documents=docs,
        problems=[],
        embedding=embedding,
        model=model_id(embedding),
        chunking={
            "chunker": chunking.VERSION,
            "chunk_tokens": chunk_tokens,
            "chunk_overlap_tokens": chunk_overlap_tokens,
        },
        latent_terms=LATENT_TERMS if latent is not None else 0,
        sentence_terms=SENTENCE_TERMS if latent is not None else 0,
        previous=None,
        old=None,
        added=sorted(docs),
        changed=[],
        removed=[],
    )
    langs = [docs[k[0]].lang for k in chunks.sentence_keys]
    return LoadedIndex(
        version="memory",
        path=None,
        manifest=manifest("memory", Path("memory"), scanned, chunks),
        passages={p.passage_id: p for p in passages},
        order=ids,
        lexical=LexicalIndex.build(ids, contents),
        vectors=MemoryVectors(ids, passage_vectors),
        sentence_rows={(d, s, e): i for i, (d, s, e) in enumerate(chunks.sentence_keys)},
        sentence_vectors=sentence_vectors,
        latent=latent,
        sentence_terms=terms,
        centroids=centroids(langs, sentence_vectors) if langs else {},
    )
