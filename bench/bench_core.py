"""`make bench`: warm in-process ask latency on seeds/ split by stage, and index times.

Prints a Markdown table (docs/benchmarks.md quotes it). Latency is per stage of ChatService:
query embedding, retrieval (dense + BM25 + fusion), answer (sentence selection and
citation check), and everything beyond the query embedding. Index times: cold (empty
index and empty embedding cache), cold index with a warm cache, and warm (unchanged).
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.index.build import build
from rag.query.chat import ChatService

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
ROUNDS = 5


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    settings = Settings(
        corpus_dir=ROOT / "seeds",
        index_dir=WORK / "index",
        cache_dir=WORK / "cache",
        data_dir=WORK,
    )
    t0 = time.perf_counter()
    cold = build(settings)
    cold_s = time.perf_counter() - t0
    shutil.rmtree(settings.index_dir)
    t0 = time.perf_counter()
    build(settings)
    warm_cache_s = time.perf_counter() - t0
    warm_runs = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        report = build(settings)
        warm_runs.append(time.perf_counter() - t0)
        assert not report.changed and report.embedded == 0

    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "evals" / "seeds_dev.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    service = ChatService(settings)
    for q in questions[:5]:
        service.ask(q)  # warm-up
    stages: dict[str, list[float]] = {"embed": [], "retrieve": [], "answer": [], "total": []}
    for _ in range(ROUNDS):
        service.pipeline.retriever.forget_queries()  # every round embeds every question
        for q in questions:
            t = service.ask(q).timings_ms
            for k in stages:
                stages[k].append(t[k])
    beyond = [t - e for t, e in zip(stages["total"], stages["embed"], strict=True)]

    def pct(values: list[float], q: float) -> str:
        return f"{np.percentile(values, q):.1f}"

    print(f"## make bench ({len(questions)} dev questions x {ROUNDS} rounds, warm, in process)\n")
    print("| stage | p50 ms | p95 ms |\n| --- | ---: | ---: |")
    for name in ("embed", "retrieve", "answer", "total"):
        print(f"| {name} | {pct(stages[name], 50)} | {pct(stages[name], 95)} |")
    print(f"| total minus query embedding | {pct(beyond, 50)} | {pct(beyond, 95)} |")
    print("\n| index run | seconds |\n| --- | ---: |")
    print(
        f"| cold: empty cache, {cold.passages} passages, {cold.embedded} texts embedded "
        f"| {cold_s:.1f} |"
    )
    print(f"| new index folder, warm embedding cache | {warm_cache_s:.1f} |")
    print(f"| warm: unchanged corpus (median of {ROUNDS}) | {statistics.median(warm_runs):.2f} |")
    service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
