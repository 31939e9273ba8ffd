"""Build and publish index versions: scan, diff, chunk, embed (cached), write, publish.

Layout of the index folder::

    CURRENT                 the published version id (replaced atomically)
    .lock                   held by the one indexer that may write here
    versions/<id>/          a complete version: manifest.json, passages.jsonl,
                            sentences.jsonl + sentences.npy, bm25/, chroma/
    versions/<id>.building/ a build in progress (removed if a crash left it)

A new version starts as a copy of the current one's Chroma folder and receives only
the delta; the new version becomes current by one ``os.replace`` of CURRENT, so a
reader always sees a complete index. Re-indexing an unchanged corpus writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag import chunking, corpus
from rag.chunking import Passage
from rag.config import Settings
from rag.embedding import EmbeddingCache, load_embedding, model_id
from rag.errors import (
    DiskFullError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    RagError,
)
from rag.latent import LATENT_TERMS, SENTENCE_TERMS, LatentIndex, SentenceTerms, supports_latent
from rag.lexical import LexicalIndex
from rag.store import Location, VectorStore, drop_server_collections

MANIFEST_FORMAT = 1
Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    version: str
    changed: bool
    documents: int
    passages: int
    added_documents: list[str] = field(default_factory=list)
    changed_documents: list[str] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    embedded: int = 0
    problems: list[corpus.FileProblem] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
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
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


def versions_dir(index_dir: Path) -> Path:
    return index_dir / "versions"


VERSION_NAME = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
"""What ``build`` names a version (UTC time, then 6 random hex digits); CURRENT must
hold exactly one, so what it holds is never a path (``../../etc``)."""


def current_version(index_dir: Path) -> str | None:
    """The published version id, or None when nothing was ever published.
    IndexCorruptError when CURRENT holds anything but a version id."""
    path = index_dir / "CURRENT"
    try:
        text = path.read_bytes().decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {path}: {_one_line(exc)}{REPAIR}") from exc
    if not VERSION_NAME.fullmatch(text):
        shown = repr(text[:40]) + ("..." if len(text) > 40 else "")
        raise IndexCorruptError(f"{path} holds {shown}, not an index version{REPAIR}")
    return text


REPAIR = "; run `rag index --rebuild` to build a new index"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def damaged(where: Path) -> Iterator[None]:
    """Any failure reading ``where`` (a truncated, missing or garbage file) becomes an
    IndexCorruptError that names it; the engine's own errors pass through."""
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        raise IndexCorruptError(
            f"the index file {where} is damaged ({type(exc).__name__}: {_one_line(exc)}){REPAIR}"
        ) from exc


def published(index_dir: Path) -> tuple[str, dict[str, Any]]:
    """The published version and its manifest; IndexMissingError when there is none."""
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in '{index_dir}'; run `rag index` to build one")
    return version, read_manifest(index_dir, version)


def documents(manifest: dict[str, Any]) -> list[dict[str, Any]]:
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
    if built_with != wanted:
        raise IndexMismatchError(
            f"the index was built with embedding model '{built_with}' but the setting asks "
            f"for '{wanted}'; run `rag index --rebuild` to rebuild it"
        )


def read_manifest(index_dir: Path, version: str) -> dict[str, Any]:
    """The manifest of ``version``; IndexCorruptError when its folder or manifest is
    missing or the manifest lacks what a reader needs."""
    folder = versions_dir(index_dir) / version
    if not folder.is_dir():
        raise IndexCorruptError(
            f"CURRENT names version {version} but its folder {folder} is missing{REPAIR}"
        )
    path = folder / "manifest.json"
    with damaged(path):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        counts = data["counts"]
        for key in ("documents", "passages", "sentences"):
            if not isinstance(counts[key], int):
                raise ValueError(f"counts.{key} is not a number")
        if not isinstance(data["documents"], dict) or not data["embedding_model"]:
            raise ValueError("documents or embedding_model missing")
    return data


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's writer lock; a second indexer is refused at once."""
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


def _publish(index_dir: Path, version: str) -> None:
    tmp = index_dir / f".CURRENT.{secrets.token_hex(4)}"
    tmp.write_text(version + "\n", encoding="utf-8")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / "CURRENT")


def _location(settings: Settings, version: str) -> Location:
    return Location.of(
        versions_dir(settings.index_dir) / version,
        version,
        settings.chroma_url,
        settings.chroma_prefix,
    )


def _collect_garbage(settings: Settings, keep: set[str]) -> None:
    """Remove partial builds and versions older than the ones in ``keep`` (their
    folders, and their collections on a Chroma server)."""
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
    on a Chroma server. A failure for lack of space becomes DiskFullError naming the
    folder whose disk is full."""
    try:
        yield
    except BaseException as exc:
        try:
            _remove_unpublished(settings)
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


def _remove_unpublished(settings: Settings) -> None:
    folder = versions_dir(settings.index_dir)
    try:
        current = current_version(settings.index_dir)
    except IndexCorruptError:
        current = None
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        newer = current is not None and child.name > current
        if child.name.endswith(".building") or newer:
            shutil.rmtree(child, ignore_errors=True)
    for stray in settings.index_dir.glob(".CURRENT.*"):
        stray.unlink(missing_ok=True)
    if settings.chroma_url:
        drop_server_collections(
            settings.chroma_url, settings.chroma_prefix, {c.name for c in folder.iterdir()}
        )


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


def _passage_meta(p: Passage) -> dict[str, str | int]:
    return {
        "doc_id": p.doc_id,
        "start_char": p.start_char,
        "end_char": p.end_char,
        "start_line": p.start_line,
        "end_line": p.end_line,
        "lang": p.lang,
    }


def _passage_record(p: Passage) -> dict[str, Any]:
    return {
        "passage_id": p.passage_id,
        "doc_id": p.doc_id,
        "start_char": p.start_char,
        "end_char": p.end_char,
        "start_line": p.start_line,
        "end_line": p.end_line,
        "text": p.text,
        "lang": p.lang,
        "sentences": [list(s) for s in p.sentences],
        "content": p.content,
    }


def passage_from_record(r: dict[str, Any]) -> Passage:
    return Passage(
        passage_id=r["passage_id"],
        doc_id=r["doc_id"],
        start_char=r["start_char"],
        end_char=r["end_char"],
        start_line=r["start_line"],
        end_line=r["end_line"],
        text=r["text"],
        lang=r["lang"],
        sentences=tuple((s, e) for s, e in r["sentences"]),
        content=r["content"],
    )


PAUSE_POINTS = (
    "locked",
    "loaded",
    "chunked",
    "embedding",
    "embedded",
    "staging",
    "copied",
    "stored",
    "bm25",
    "passages",
    "manifest",
    "renamed",
    "published",
)
"""Moments of a build where ``index_pause_at`` stops it (for crash tests: the test
kills the paused indexer there)."""


def _pauser(stage_to_pause: str | None) -> Callable[[str], None]:
    def pause(stage: str) -> None:
        if stage == stage_to_pause:
            sys.stderr.write(f"paused at {stage}\n")
            sys.stderr.flush()
            time.sleep(3600)

    return pause


def build(
    settings: Settings, rebuild: bool = False, progress: Progress | None = None
) -> IndexReport:
    """Index ``settings.corpus_dir`` into ``settings.index_dir``; see the module doc."""
    started = time.perf_counter()
    index_dir = settings.index_dir
    pause = _pauser(settings.index_pause_at)
    with writer_lock(index_dir), _cleaned_on_failure(settings):
        pause("locked")
        loaded = corpus.load(settings.corpus_dir)
        pause("loaded")
        embedding = load_embedding(settings.embedding)
        model = model_id(embedding)
        chunk_params = {
            "chunker": chunking.VERSION,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        }
        try:
            previous = current_version(index_dir)
            old: dict[str, Any] | None = read_manifest(index_dir, previous) if previous else None
        except IndexCorruptError:
            if not rebuild:
                raise
            previous, old = None, None  # a rebuild needs nothing of a damaged version
        if old is not None and not rebuild:
            check_model(old["embedding_model"], model)
        latent_terms = LATENT_TERMS if settings.latent and supports_latent(embedding) else 0
        sentence_terms = SENTENCE_TERMS if latent_terms else 0
        if rebuild or (
            old is not None
            and (
                old.get("chunking") != chunk_params
                or old.get("latent_terms", 0) != latent_terms
                or old.get("sentence_latent_terms", 0) != sentence_terms
                or not old.get("language_centroids")
            )
        ):
            old = None
        _collect_garbage(settings, keep={previous} if previous else set())

        docs = {d.doc_id: d for d in loaded.documents}
        old_docs: dict[str, Any] = old["documents"] if old else {}
        added = sorted(d for d in docs if d not in old_docs)
        changed = sorted(
            d for d in docs if d in old_docs and old_docs[d]["sha256"] != docs[d].sha256
        )
        removed = sorted(d for d in old_docs if d not in docs)
        if old is not None and previous and not (added or changed or removed):
            return IndexReport(
                version=previous,
                changed=False,
                documents=len(docs),
                passages=old["counts"]["passages"],
                problems=loaded.problems,
                seconds=time.perf_counter() - started,
            )

        passages = {
            d: chunking.split(doc, settings.chunk_tokens, settings.chunk_overlap_tokens)
            for d, doc in docs.items()
        }
        all_passages = [p for d in sorted(passages) for p in passages[d]]
        sentence_keys, sentence_texts = _sentences(all_passages, docs)
        pause("chunked")

        cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite", embedding)
        try:
            contents = [p.content for p in all_passages]
            todo = len(cache.missing(contents + sentence_texts))
            if latent_terms:
                todo += len(cache.missing(contents + sentence_texts, cache.LATENT))
            done = 0

            def tick(n: int) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(done, todo)
                pause("embedding")

            if progress is not None:
                progress(0, todo)
            passage_vectors = cache.embed(contents, progress=tick)
            sentence_vectors = cache.embed(sentence_texts, progress=tick)
            latent = cache.latent(contents, progress=tick) if latent_terms else None
            sentence_latent = cache.latent(sentence_texts, progress=tick) if latent_terms else None
            embedded = cache.embedded
            pause("embedded")
        finally:
            cache.close()

        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        staging = versions_dir(index_dir) / f"{version}.building"
        staging.mkdir(parents=True)
        pause("staging")
        keep_ids = {p.passage_id for p in all_passages}
        old_ids = {pid for d in old_docs.values() for pid in d["passages"]} if old else set()
        location = _location(settings, version)
        if settings.chroma_url:
            store = VectorStore(location)
            if old is not None and previous:
                source = VectorStore(_location(settings, previous))
                store.copy_from(source, sorted(old_ids & keep_ids))
                source.close()
            old_ids &= keep_ids
        else:
            if old is not None and previous:
                shutil.copytree(versions_dir(index_dir) / previous / "chroma", staging / "chroma")
            store = VectorStore(staging / "chroma")
        pause("copied")
        store.delete(sorted(old_ids - keep_ids))
        new_rows = [i for i, p in enumerate(all_passages) if p.passage_id not in old_ids]
        store.add(
            [all_passages[i].passage_id for i in new_rows],
            [all_passages[i].content for i in new_rows],
            passage_vectors[new_rows] if new_rows else np.zeros((0, 0), np.float32),
            [_passage_meta(all_passages[i]) for i in new_rows],
        )
        if store.count() != len(all_passages):
            raise RuntimeError(
                f"vector store holds {store.count()} passages, expected {len(all_passages)}"
            )
        store.close()
        pause("stored")

        passage_ids = [p.passage_id for p in all_passages]
        LexicalIndex.build(passage_ids, [p.content for p in all_passages]).save(staging / "bm25")
        if latent is not None:
            dim = embedding.latent_dim  # type: ignore[attr-defined]
            LatentIndex.build(passage_ids, latent, dim).save(staging / "latent")
            if sentence_latent is not None:
                SentenceTerms.build(sentence_latent, dim).save(staging / "latent")
        pause("bm25")
        with open(staging / "passages.jsonl", "w", encoding="utf-8") as out:
            for p in all_passages:
                out.write(json.dumps(_passage_record(p), ensure_ascii=False) + "\n")
        pause("passages")
        np.save(staging / "sentences.npy", sentence_vectors)
        save_centroids(staging, [docs[k[0]].lang for k in sentence_keys], sentence_vectors)
        (staging / "sentences.json").write_text(json.dumps(sentence_keys), encoding="utf-8")
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "corpus_dir": str(settings.corpus_dir),
            "embedding_model": model,
            "chunking": chunk_params,
            "latent_terms": latent_terms,
            "sentence_latent_terms": sentence_terms,
            "language_centroids": True,
            "counts": {
                "documents": len(docs),
                "passages": len(all_passages),
                "sentences": len(sentence_keys),
            },
            "documents": {
                d: {
                    "sha256": doc.sha256,
                    "lang": doc.lang,
                    "title": doc.title,
                    "kind": doc.kind,
                    "passages": [p.passage_id for p in passages[d]],
                }
                for d, doc in sorted(docs.items())
            },
            "problems": [asdict(p) for p in loaded.problems],
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        final = versions_dir(index_dir) / version
        pause("manifest")
        os.replace(staging, final)
        pause("renamed")
        _publish(index_dir, version)
        pause("published")
        _collect_garbage(settings, keep={version} | ({previous} if previous else set()))
        return IndexReport(
            version=version,
            changed=True,
            documents=len(docs),
            passages=len(all_passages),
            added_documents=added,
            changed_documents=changed,
            removed_documents=removed,
            embedded=embedded,
            problems=loaded.problems,
            seconds=time.perf_counter() - started,
        )


def _sentences(
    passages: list[Passage], docs: dict[str, corpus.SourceDocument]
) -> tuple[list[list[Any]], list[str]]:
    """The distinct sentences of all passages: keys [doc_id, start, end] and contents."""
    keys: list[list[Any]] = []
    texts: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    for p in passages:
        doc = docs[p.doc_id]
        for start, end in p.sentences:
            if (p.doc_id, start, end) in seen:
                continue
            seen.add((p.doc_id, start, end))
            keys.append([p.doc_id, start, end])
            texts.append(chunking.fold_content(doc.plain[start:end], doc.kind))
    return keys, texts


def save_centroids(folder: Path, langs: list[str], vectors: np.ndarray) -> None:
    """The mean sentence vector of each language (rows of ``vectors`` by ``langs``)."""
    names = sorted(set(langs))
    number = {lang: i for i, lang in enumerate(names)}
    of_row = np.array([number[lang] for lang in langs], dtype=np.int64)
    means = np.zeros((0, 0))
    if names:
        means = np.stack([vectors[of_row == i].mean(axis=0) for i in range(len(names))])
    np.savez(folder / "centroids.npz", langs=np.array(names), vectors=means.astype(np.float32))


def load_centroids(folder: Path) -> dict[str, np.ndarray]:
    """Language -> mean sentence vector; empty for an index built without them."""
    if not (folder / "centroids.npz").is_file():
        return {}
    with np.load(folder / "centroids.npz") as arrays:
        return dict(zip(arrays["langs"].tolist(), arrays["vectors"], strict=True))


@dataclass
class LoadedIndex:
    """A published version, opened for reading."""

    version: str
    path: Path
    manifest: dict[str, Any]
    passages: dict[str, Passage]
    order: list[str]
    lexical: LexicalIndex
    vectors: VectorStore
    sentence_rows: dict[tuple[str, int, int], int]
    sentence_vectors: np.ndarray
    latent: LatentIndex | None = None
    """Latent terms of the passages, when the embedding has a sparse head."""
    sentence_terms: SentenceTerms | None = None
    """Latent terms of the sentences (rows of ``sentence_vectors``), likewise."""
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    """Mean sentence vector of each language of the corpus (see rag/retriever.py)."""

    @property
    def embedding_model(self) -> str:
        return str(self.manifest["embedding_model"])

    def close(self) -> None:
        """Release what the version holds open: the vector store's client and the
        memory maps (the arrays are replaced by empty ones; no reader may remain)."""
        self.vectors.close()
        self.sentence_vectors = np.zeros((0, self.sentence_vectors.shape[-1]), np.float32)
        self.sentence_terms = None

    def language_similarity(self, vector: np.ndarray) -> dict[str, float]:
        """The question's similarity to the mean sentence vector of each language:
        the share of any score that comes from the language alone."""
        return {lang: float(mean @ vector) for lang, mean in self.centroids.items()}

    def meanings(self, rows: list[int], langs: list[str]) -> np.ndarray:
        """Unit vectors of sentences ``rows`` (of languages ``langs``) less their
        language's mean vector: what a sentence says, without the language it is said
        in. Raw cosines cannot tell a translation from any sentence on the same subject
        (the seeds: Malay sentences and their Vietnamese translations 0.891 median,
        Malay sentences and the nearest sentence of an unrelated file 0.885); centred,
        0.558 against 0.310."""
        vectors = np.asarray(self.sentence_vectors[rows], dtype=np.float32)
        if self.centroids:  # (an index built before centroids: raw vectors)
            none = np.zeros(vectors.shape[1], dtype=np.float32)
            vectors = vectors - np.stack([self.centroids.get(lang, none) for lang in langs])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def open_index(settings: Settings, expected_model: str | None = None) -> LoadedIndex:
    """Open the published version; errors name what is wrong and what to run.

    Every part is checked against the manifest as it is opened (passages, sentence
    keys and vectors, BM25 ids, latent terms, the vector store's count), so a damaged
    version raises IndexCorruptError naming the file here, never a traceback later."""
    version, manifest = published(settings.index_dir)
    path = versions_dir(settings.index_dir) / version
    if expected_model is not None:
        check_model(manifest["embedding_model"], expected_model)
    counts = manifest["counts"]
    passages: dict[str, Passage] = {}
    order: list[str] = []
    with damaged(path / "passages.jsonl"), open(path / "passages.jsonl", encoding="utf-8") as f:
        for line in f:
            p = passage_from_record(json.loads(line))
            passages[p.passage_id] = p
            order.append(p.passage_id)
        _expect(len(passages), counts["passages"], "passages")
    with damaged(path / "sentences.json"):
        keys = json.loads((path / "sentences.json").read_text(encoding="utf-8"))
        _expect(len(keys), counts["sentences"], "sentence keys")
    with damaged(path / "sentences.npy"):
        # mapped, not read: pages come in as sentences are scored (large corpora)
        sentence_vectors = np.load(path / "sentences.npy", mmap_mode="r")
        _expect(sentence_vectors.shape[0], len(keys), "sentence vectors")
    with damaged(path / "bm25"):
        lexical = LexicalIndex.load(path / "bm25")
        _expect(len(lexical.ids), counts["passages"], "BM25 passages")
    latent: LatentIndex | None = None
    sentence_terms: SentenceTerms | None = None
    with damaged(path / "latent"):
        if manifest.get("latent_terms", 0) or (path / "latent").is_dir():
            latent = LatentIndex.load(path / "latent")
            _expect(len(latent.ids), counts["passages"], "latent-term passages")
        sentence_terms = SentenceTerms.load(path / "latent")
        if manifest.get("sentence_latent_terms", 0) and sentence_terms is None:
            raise FileNotFoundError("the sentences' latent terms are missing")
    with damaged(path / "centroids.npz"):
        if manifest.get("language_centroids") and not (path / "centroids.npz").is_file():
            raise FileNotFoundError("the language centroids are missing")
        centroids = load_centroids(path)
    location = _location(settings, version)
    with damaged(location.path or Path(f"{location.url}/{location.collection}")):
        vectors = VectorStore(location)
        try:
            _expect(vectors.count(), counts["passages"], "vector store passages")
            dim = sentence_vectors.shape[1] if sentence_vectors.ndim == 2 else 0
            if dim and counts["passages"]:  # the vector files themselves are readable
                vectors.query(np.full(dim, dim**-0.5, dtype=np.float32), 1)
        except BaseException:
            vectors.close()
            raise
    return LoadedIndex(
        version=version,
        path=path,
        manifest=manifest,
        passages=passages,
        order=order,
        lexical=lexical,
        vectors=vectors,
        sentence_rows={(d, s, e): i for i, (d, s, e) in enumerate(keys)},
        sentence_vectors=sentence_vectors,
        latent=latent,
        sentence_terms=sentence_terms,
        centroids=centroids,
    )


def _expect(found: int, wanted: int, what: str) -> None:
    if found != wanted:
        raise ValueError(f"{found} {what}, the manifest says {wanted}")
