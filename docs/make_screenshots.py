"""Screenshots of the chat page for the docs (``make screenshots``):

- ``docs/web-answer.png``: an English question answered from an Arabic article, with
  the cited passage open beside the answer, highlighted, right to left;
- ``docs/web-conversation.png``: a follow-up in the same conversation, and a question
  the documents do not answer.

Builds or updates the index of the corpus (RAG_* settings as for ``rag serve``; by
default ``seeds/`` into ``var/index``), serves it on a free loopback port, and drives
Debian's Chromium with Playwright. Conversations go to a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from api.app import create_app  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.index.build import build  # noqa: E402
from tests.browser import launch  # noqa: E402
from tests.servers import serve_asgi  # noqa: E402

VIEWPORT = {"width": 1280, "height": 720}
MAX_BYTES = 300_000


def ask(page: Page, question: str) -> None:
    before = page.locator(".turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(".turn").nth(before).locator(".answer[data-state]").wait_for(timeout=60_000)


def shoot(page: Page, path: Path) -> None:
    page.mouse.move(0, 0)  # no hover effects
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path))
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {size // 1000} KB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}")


def main() -> int:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data))
        started = time.perf_counter()
        report = build(settings)
        print(report.summary(), f"({time.perf_counter() - started:.1f} s)")
        server = serve_asgi(create_app(settings))
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
                page.goto(server.url + "/")
                page.wait_for_selector("#corpus:not(:empty)")

                ask(page, "How much did the final training run of DeepSeek V3 cost?")
                page.locator(".answer-text a.cite").first.click()
                page.locator("#viewer-text mark").wait_for()
                shoot(page, ROOT / "docs" / "web-answer.png")

                page.click("#viewer-close")
                page.click("#new-conversation")
                ask(page, "Who founded DeepSeek?")
                ask(page, "How much did its V3 model cost to train?")
                ask(page, "What is a good recipe for banana pancakes?")
                page.set_viewport_size({"width": 1280, "height": 1040})
                page.locator(".turn").last.scroll_into_view_if_needed()
                shoot(page, ROOT / "docs" / "web-conversation.png")
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
