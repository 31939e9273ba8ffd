"""Time from a clean clone to the first answer in the browser (``make first-answer``).

1. ``git clone`` this repository's HEAD (or ``--repo``) into a temporary folder;
2. ``make serve`` there on a free loopback port: it creates ``.venv`` (pip, with pip's
   usual cache unless ``--no-pip-cache``), builds the index of ``seeds/`` with the real
   model (no embedding cache: a fresh clone has none), then serves;
3. ``GET /`` until the page answers;
4. in Chromium: open the page, ask the question, wait until its answer is complete.

Prints when each step ended, in seconds since the start, and the total. Stops the
server it started and removes the clone (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import launch  # noqa: E402
from tests.servers import free_port  # noqa: E402

QUESTION = "How much did the final training run of DeepSeek V3 cost?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(ROOT), help="what to clone (default: this one)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--no-pip-cache", action="store_true", help="download every package")
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="first-answer-"))
    clone = folder / "rag-citations"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    marks: list[tuple[str, float]] = []

    def mark(step: str) -> None:
        marks.append((step, time.perf_counter() - started))
        print(f"{marks[-1][1]:8.1f} s  {step}", flush=True)

    subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
    mark("cloned")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "VIRTUAL_ENV"}
    env.update(RAG_PORT=str(port), OMP_NUM_THREADS="1", GOMP_SPINCOUNT="10000")
    if args.no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    server = subprocess.Popen(
        ["make", "serve"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stopped as one below
    )

    def echo() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            if "published version" in line:
                mark("index built")
            print(f"    | {line.rstrip()}", flush=True)

    threading.Thread(target=echo, daemon=True).start()
    try:
        installed = False
        while True:
            if not installed and (clone / ".venv" / ".installed").exists():
                installed = True
                mark(".venv installed")
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit(f"make serve exited with {server.returncode}")
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"no page after {args.timeout} s")
            time.sleep(0.5)
        mark(f"page answers at {url}/")
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page()
            page.goto(url + "/")
            page.fill("#question", args.question)
            page.press("#question", "Enter")
            answer = page.locator(".answer[data-state]")
            answer.wait_for(timeout=120_000)
            mark(f"first answer in the browser ({answer.get_attribute('data-state')})")
            print("    " + page.locator(".answer-text").inner_text()[:200])
            browser.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    total = marks[-1][1]
    print(f"clean clone to first answer in the browser: {total:.0f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
