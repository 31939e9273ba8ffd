"""What a running service holds as versions are published: open files, threads, RSS.

Starts `rag serve` (its own process, on a free loopback port) on the seeds index,
then publishes PUBLISHES versions over HTTP (``POST /v1/index?rebuild=true``: a full
new version from the embedding cache), asking a question after each so that the
service switches to it, and reads the server process's open file descriptors
(/proc/PID/fd), threads (/proc/PID/task) and resident memory after each. Also counts
descriptors still open on files of deleted versions.

    .venv/bin/python bench/bench_publish.py [--publishes 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_http import free_port, start_serve, wait_for_answer  # noqa: E402


def held(pid: int) -> tuple[int, int, int, int]:
    """Open descriptors, threads, RSS (MB), descriptors on deleted files."""
    fds = os.listdir(f"/proc/{pid}/fd")
    deleted = 0
    for fd in fds:
        try:
            deleted += os.readlink(f"/proc/{pid}/fd/{fd}").endswith("(deleted)")
        except OSError:
            continue
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
    return len(fds), threads, rss, deleted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=12)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(port)
    rows = []
    try:
        wait_for_answer(url, process, timeout=600)
        with httpx.Client(base_url=url, timeout=120) as client:
            rows.append(("start", *held(process.pid)))
            for n in range(1, args.publishes + 1):
                assert client.post("/v1/index", params={"rebuild": "true"}).status_code == 202
                while client.get("/v1/index").json()["build"]["state"] == "running":
                    time.sleep(0.2)
                answer = client.post("/v1/chat", json={"message": "Who founded DeepSeek?"})
                assert answer.status_code == 200, answer.text
                rows.append((f"after publish {n}", *held(process.pid)))
    finally:
        process.terminate()
        process.wait(timeout=30)
    print("| moment | open files | threads | RSS MB | files of deleted versions |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for moment, fds, threads, rss, deleted in rows:
        print(f"| {moment} | {fds} | {threads} | {rss} | {deleted} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
