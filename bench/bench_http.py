"""`make bench-http`: concurrent clients against /v1/chat of a real `rag serve`.

Starts `rag serve` (its own process, uvicorn, on a free loopback port; rate limit off)
on the seeds index, then runs CLIENTS concurrent clients for SECONDS, each asking
the questions of evals/seeds_dev.jsonl in turn, twice: first every question made
distinct (each one embedded), then the 50 questions repeated (the service's cache of
question vectors answers most). Prints requests per second, latency p50/p95/max and
errors as a Markdown table. The load generator shares the machine's cores.

`--fresh-clone` instead measures what a new user waits: clone the repository into a
temporary folder, run `make serve` there (venv, install, index from an empty
embedding cache) and time until the first answer arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_answer(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until POST /v1/chat answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            r = httpx.post(url + "/v1/chat", json={"message": "Who founded DeepSeek?"}, timeout=30)
            if r.status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit("no answer before the time limit")


def distinct(question: str, n: int) -> str:
    """The question made unique (a letters-only tag no article contains), so that
    the service's cache of question vectors never answers it."""
    tag = ""
    while True:
        n, r = divmod(n, 26)
        tag += chr(ord("a") + r)
        if n == 0:
            return f"{question} qx{tag}"


async def load(
    url: str,
    questions: list[str],
    clients: int,
    seconds: float,
    unique: bool,
    reindex_at: float | None = None,
    salt: int = 0,
) -> dict[str, float]:
    """``salt`` keeps the distinct questions of one run apart from another's."""
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            i = n
            while time.perf_counter() < stop:
                q = questions[i % len(questions)]
                if unique:
                    q = distinct(q, salt + i)
                i += clients
                t = time.perf_counter()
                try:
                    r = await http.post("/v1/chat", json={"message": q})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t) * 1000)

    async def reindex() -> None:
        """Rebuild the index over HTTP mid-run (embeddings cached: a full new version
        is written and published while clients keep asking)."""
        assert reindex_at is not None
        await asyncio.sleep(reindex_at)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post("/v1/index", params={"rebuild": "true"})
            while (await http.get("/v1/index")).json()["build"]["state"] == "running":
                await asyncio.sleep(0.2)

    started = time.perf_counter()
    extra = [reindex()] if reindex_at is not None else []
    await asyncio.gather(*(client(n) for n in range(clients)), *extra)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
        "errors": errors,
    }


def start_serve(port: int) -> subprocess.Popen[bytes]:
    """``rag serve`` of this checkout (its seeds index) on loopback ``port``, in a
    process of its own, rate limit off, output dropped."""
    env = {**os.environ, "RAG_RATE_LIMIT_PER_MINUTE": "0"}
    rag = str(Path(sys.executable).parent / "rag")
    return subprocess.Popen(
        [rag, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


HOG = "while True: pass"


def bench_load(clients: int, seconds: float, reindex: bool = False, hogs: int = 0) -> int:
    """``hogs`` busy loops (processes) run beside the server and the clients while
    they are measured: the machine's cores contended, as on a shared host."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(port)
    busy: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_answer(url, process, timeout=600)
        busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
        questions = [
            json.loads(line)["question"]
            for line in (ROOT / "evals" / "seeds_dev.jsonl").read_text().splitlines()
            if line.strip()
        ]
        results = {
            "distinct questions": asyncio.run(load(url, questions, clients, seconds, True)),
            "dev set repeated": asyncio.run(load(url, questions, clients, seconds, False)),
        }
        if reindex:
            results["distinct, re-index mid-run"] = asyncio.run(
                load(url, questions, clients, seconds, True, reindex_at=seconds / 2, salt=10**7)
            )
    finally:
        for hog in busy:
            hog.kill()
            hog.wait()
        process.terminate()
        process.wait(timeout=30)
    beside = f", beside {hogs} busy loops" if hogs else ""
    print(
        f"## HTTP load: {clients} clients, {seconds:.0f} s each, POST /v1/chat on "
        f"loopback{beside}\n"
    )
    print("| questions | requests | req/s | p50 ms | p95 ms | max ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['requests']:.0f} | {r['rps']:.1f} | {r['p50_ms']:.1f} "
            f"| {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']:.0f} |"
        )
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


def bench_fresh_clone() -> int:
    folder = Path(tempfile.mkdtemp(prefix="rag-fresh-"))
    port = free_port()
    started = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder / "repo")], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "VIRTUAL_ENV"))}
    env["RAG_PORT"] = str(port)
    process = subprocess.Popen(
        ["make", "serve"],
        cwd=folder / "repo",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_answer(f"http://127.0.0.1:{port}", process, timeout=1800)
        total = time.perf_counter() - started
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"fresh clone -> `make serve` -> first answer: {total:.0f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--fresh-clone", action="store_true")
    parser.add_argument(
        "--reindex", action="store_true", help="add a run with a re-index (POST /v1/index) mid-run"
    )
    parser.add_argument(
        "--cpu-hog", type=int, default=0, metavar="N", help="run N busy loops during the load"
    )
    args = parser.parse_args()
    if args.fresh_clone:
        return bench_fresh_clone()
    return bench_load(args.clients, args.seconds, args.reindex, args.cpu_hog)


if __name__ == "__main__":
    sys.exit(main())
