"""The chat page in a real browser: Chromium (Debian's) driven by Playwright, against
a real uvicorn server on loopback over the seeds corpus indexed with the real model.

Every test also checks, when it ends, that the page asked nothing of another origin,
broke no Content-Security-Policy rule and threw no error (the ``page`` fixture).
Skipped, with the reason, where Chromium is not installed; ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.security import SESSION_COOKIE
from rag.config import Settings
from rag.eval.feedback import store_path
from rag.index.build import build
from tests import browser as chromium
from tests.api.conftest import LiveServer, serve
from tests.conftest import make_settings, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARABIC_COST = "How much did the final training run of DeepSeek V3 cost?"
OFF_TOPIC = [
    "What is a good recipe for banana pancakes?",
    "How do I repair a flat bicycle tyre?",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(chromium.CHROMIUM):
        pytest.skip(
            f"Chromium is not installed at {chromium.CHROMIUM} (apt-get install chromium; "
            ".ci/run installs it)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(seeds_settings: Settings) -> Iterator[LiveServer]:
    server = serve(seeds_settings)
    yield server
    server.stop()


class Watch:
    """What a page did: every request URL, CSP violations, uncaught errors."""

    def __init__(self, page: Any, origin: str) -> None:
        self.origin = origin
        self.requests: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self) -> None:
        # blob: URLs the page made itself live in its origin (ReDoc's search worker)
        local = (self.origin + "/", f"blob:{self.origin}/", "data:")
        foreign = [u for u in self.requests if not u.startswith(local)]
        assert foreign == [], f"requests that left {self.origin}: {foreign}"
        assert [m for m in self.console if "Content Security Policy" in m] == []
        assert self.errors == []


def open_page(browser: Any, server: LiveServer, path: str = "/") -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch = Watch(page, server.url)
    page.goto(server.url + path)
    return context, page, watch


@pytest.fixture
def page(browser: Any, site: LiveServer) -> Iterator[Any]:
    context, page, watch = open_page(browser, site)
    page.wait_for_selector("#corpus:not(:empty)")
    yield page
    watch.check()
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type the question, press Enter, wait for the answer to finish; its <article>."""
    before = page.locator(".turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator(".turn").nth(before).locator(".answer")
    answer.and_(page.locator("[data-state]")).wait_for()
    return answer


def answer_json(server: LiveServer, question: str) -> dict[str, Any]:
    with server.client() as client:
        answer: dict[str, Any] = client.post("/v1/chat", json={"message": question}).json()
    return answer


def delta_count(server: LiveServer, question: str) -> int:
    with (
        server.client() as client,
        client.stream("POST", "/v1/chat", json={"message": question, "stream": True}) as r,
    ):
        return sum(1 for line in r.iter_lines() if line == "event: delta")


def test_the_page_has_its_security_headers(site: LiveServer) -> None:
    response = httpx.get(site.url + "/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_question_streams_its_answer(page: Any, site: LiveServer) -> None:
    # answered with support well over the threshold (0.07 and 0.08 over it), so
    # their answers are quotes long enough to stream in several pieces anywhere
    questions = [
        "How much money is behind Sam Altman's Stargate project?",
        "Which Chinese social media app drew American users fleeing a possible TikTok ban?",
    ]
    deltas = {q: delta_count(site, q) for q in questions}
    assert max(deltas.values()) >= 3, deltas
    for question in questions:
        # record the answer's length at each change the page makes to the DOM
        page.evaluate(
            """() => {
                window.lengths = [];
                const turns = document.getElementById("turns");
                new MutationObserver(() => {
                    const texts = turns.querySelectorAll(".answer-text");
                    const last = texts[texts.length - 1];
                    if (last) window.lengths.push(last.textContent.length);
                }).observe(turns, {childList: true, subtree: true, characterData: true});
            }"""
        )
        answer = ask(page, question)
        lengths = [n for n in page.evaluate("window.lengths") if n > 0]
        growth = sorted(set(lengths))
        assert len(growth) >= deltas[question], (question, lengths, deltas[question])
        assert lengths == sorted(lengths)  # it only ever grew
        final = answer.locator(".answer-text").inner_text()
        assert final == answer_json(site, question)["answer"]


def test_clicking_a_citation_shows_its_quote_highlighted_right_to_left(
    page: Any, site: LiveServer
) -> None:
    citations = answer_json(site, ARABIC_COST)["citations"]
    expected = next((c for c in citations if c["lang"] == "ar"), None)
    assert expected is not None and expected["source"].startswith("004_"), citations
    answer = ask(page, ARABIC_COST)
    assert answer.get_attribute("data-state") == "answered"
    link = answer.locator(f'.answer-text a.cite[href="{expected["url"]}"]').first
    link.click()
    mark = page.locator("#viewer-text mark")
    mark.wait_for()
    assert mark.text_content() == expected["quote"]
    viewer = page.locator("#viewer-text")
    assert viewer.get_attribute("dir") == "rtl" and viewer.get_attribute("lang") == "ar"
    assert viewer.evaluate("e => getComputedStyle(e).direction") == "rtl"
    meta = page.locator("#viewer-meta").inner_text()
    assert expected["source"] in meta and "Arabic" in meta
    line = expected["start_line"]
    assert f"line {line}" in meta or f"lines {line}-" in meta
    # scrolled into view inside the viewer
    inside = page.evaluate(
        """() => {
            const m = document.querySelector("#viewer-text mark").getBoundingClientRect();
            const v = document.getElementById("viewer-text").getBoundingClientRect();
            return m.top >= v.top - 1 && m.top < v.bottom;
        }"""
    )
    assert inside
    # the link is a permalink: it carries the quote's hash
    assert "&sha=" in expected["url"]


def test_the_page_sets_direction_by_language(page: Any) -> None:
    directions = page.evaluate(
        """async () => {
            const dom = await import("/static/dom.js");
            return ["ar", "he", "fa", "ur", "zh", "th", "en", "und"].map(dom.direction);
        }"""
    )
    assert directions == ["rtl", "rtl", "rtl", "rtl", "auto", "auto", "auto", "auto"]


def test_the_keyboard_alone_asks_and_opens_a_source(page: Any) -> None:
    page.focus("#question")
    page.keyboard.type(ARABIC_COST)
    page.keyboard.press("Enter")
    page.locator(".answer[data-state]").wait_for()
    link = page.locator(".answer-text a.cite").first
    link.focus()
    page.keyboard.press("Enter")
    page.locator("#viewer-text mark").wait_for()
    assert page.evaluate("document.activeElement.id") == "viewer-title"
    page.keyboard.press("Escape")
    assert page.locator("#viewer").is_hidden()
    assert page.evaluate("document.activeElement.classList.contains('cite')")


def test_a_follow_up_stays_in_the_conversation(page: Any, site: LiveServer) -> None:
    ask(page, "Who founded DeepSeek?")
    follow_up = ask(page, "How much did its V3 model cost to train?")
    assert follow_up.get_attribute("data-state") == "answered"
    stored = page.evaluate("JSON.parse(localStorage.getItem('rag.conversations'))")
    assert len(stored) == 1 and stored[0]["title"] == "Who founded DeepSeek?"
    conversation_id = stored[0]["id"]
    # the browser session owns it: with the page's cookie it is there, without it not
    session = {c["name"]: c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE}
    assert session
    with site.client(cookies=session) as client:
        turns = client.get(f"/v1/conversations/{conversation_id}").json()["turns"]
    with site.client() as stranger:
        assert stranger.get(f"/v1/conversations/{conversation_id}").status_code == 404
    assert [t["question"] for t in turns] == [
        "Who founded DeepSeek?",
        "How much did its V3 model cost to train?",
    ]

    page.reload()
    page.locator("#conversations button.open").first.click()
    page.locator(".turn").nth(1).wait_for()
    assert page.locator(".question").all_text_contents() == [
        "You asked: Who founded DeepSeek?",
        "You asked: How much did its V3 model cost to train?",
    ]
    assert page.locator("#conversations li.current").count() == 1

    page.click("#new-conversation")
    assert page.locator(".turn").count() == 0
    ask(page, "Who founded DeepSeek?")
    assert page.locator("#conversations li").count() == 2

    page.locator("#conversations li").first.get_by_role("button", name="Delete").click()
    # (a locator, not wait_for_function: that polls by eval, which the page's CSP
    # refuses whenever the first check is false)
    page.locator("#conversations li").nth(1).wait_for(state="detached")
    remaining = page.evaluate("JSON.parse(localStorage.getItem('rag.conversations'))")
    assert [c["id"] for c in remaining] == [conversation_id]


def test_a_conversation_the_server_does_not_know_leaves_the_list(page: Any) -> None:
    page.evaluate(
        """localStorage.setItem("rag.conversations", JSON.stringify(
            [{id: "not-this-browsers", title: "Someone else's", updated: 1}]))"""
    )
    page.reload()
    page.locator("#conversations button.open").click()
    page.locator("#conversations li").first.wait_for(state="detached")
    assert "no longer available" in page.locator("#status").inner_text()
    assert page.evaluate("localStorage.getItem('rag.conversations')") == "[]"


def test_an_abstention_looks_different_from_an_answer(page: Any) -> None:
    answered = ask(page, ARABIC_COST)
    border = "e => getComputedStyle(e).borderLeftStyle"
    assert answered.evaluate(border) == "solid"
    assert "Not in the documents" not in answered.locator(".answer-label").text_content()
    for question in OFF_TOPIC:
        # each in a conversation of its own: as a follow-up of the cost question the
        # condenser may carry "DeepSeek V3." onto it (a known limit, docs/how-it-works.md)
        page.click("#new-conversation")
        abstained = ask(page, question)
        assert abstained.get_attribute("data-state") == "abstained"
        assert "Not in the documents" in abstained.locator(".answer-label").text_content()
        assert abstained.locator("a.cite").count() == 0
        assert abstained.evaluate(border) == "dashed"  # a shape, not only a colour


def test_rating_an_answer_stores_it(page: Any, site: LiveServer, seeds_settings: Settings) -> None:
    answer = ask(page, ARABIC_COST)
    answer.get_by_role("button", name="Helpful", exact=True).click()
    answer.get_by_label("What was right or wrong? (optional)").fill("the exact figure")
    answer.get_by_role("button", name="Send").click()
    answer.get_by_text("your rating was saved").wait_for()
    with sqlite3.connect(store_path(seeds_settings.data_dir)) as db:
        row = db.execute(
            "SELECT question, rating, reason, owner FROM feedback ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row[:3] == (ARABIC_COST, "up", "the exact figure")
    assert row[3].startswith("browser:")  # the page's session, not the cookie itself


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_render_offline(browser: Any, site: LiveServer, path: str) -> None:
    context, page, watch = open_page(browser, site, path)
    try:
        selector = ".opblock" if path == "/docs" else "[role=menuitem], li[data-item-id]"
        page.locator(selector).first.wait_for()
        assert "/v1/chat" in page.content()
        watch.check()
    finally:
        context.close()


@pytest.fixture(scope="module")
def keyed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("keyed")
    corpus = write_corpus(
        root, {"notes.md": "# Notes\n\nThe H800 chip was used by DeepSeek to train V3.\n"}
    )
    settings = make_settings(
        root, corpus, api_keys=[SecretStr("right-key")], abstain_threshold=-1.0
    )
    build(settings)
    server = serve(settings)
    yield server
    server.stop()


def test_with_api_keys_the_page_asks_for_one_and_keeps_it_for_the_tab(
    browser: Any, keyed_site: LiveServer
) -> None:
    context, page, watch = open_page(browser, keyed_site)
    try:
        form = page.locator("#key-form")
        form.wait_for()
        page.fill("#api-key", "wrong-key")
        page.press("#api-key", "Enter")
        page.get_by_text("That key was not accepted").wait_for()
        page.fill("#api-key", "right-key")
        page.press("#api-key", "Enter")
        page.wait_for_selector("#corpus:not(:empty)")
        assert form.is_hidden() and "1 document" in page.locator("#corpus").inner_text()
        answer = ask(page, "Which chip was used?")
        assert answer.get_attribute("data-state") == "answered"
        assert page.evaluate("sessionStorage.getItem('rag.apiKey')") == "right-key"
        stored = page.evaluate("JSON.stringify(localStorage)")
        assert "right-key" not in stored
        assert context.cookies() == []  # no session cookie: the key identifies the caller
        # a new tab of a new session starts without the key
        other = context.new_page()
        other.goto(keyed_site.url + "/")
        other.locator("#key-form").wait_for()
        assert other.evaluate("sessionStorage.getItem('rag.apiKey')") is None
        watch.check()
    finally:
        context.close()


def test_the_chat_page_cookie_is_http_only(browser: Any, site: LiveServer) -> None:
    context, page, watch = open_page(browser, site)
    try:
        (cookie,) = context.cookies()
        assert cookie["name"] == "rag_session" and cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert page.evaluate("document.cookie") == ""  # scripts cannot read it
        watch.check()
    finally:
        context.close()


BAKERY = (
    "<!doctype html><html><head><title>Elm Street Caf&eacute; &amp; Bakery</title>"
    "<script>document.title = 'hijacked';</script></head><body>\n"
    "<p>The caf&eacute; &amp; bakery on <b>Elm Street</b> bakes 120 sourdough loaves "
    "every morning.</p>\n<p>It opens at seven.</p>\n</body></html>\n"
)


@pytest.fixture(scope="module")
def html_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("html-site")
    corpus = write_corpus(root, {"bakery.html": BAKERY})
    settings = make_settings(root, corpus, abstain_threshold=-1.0)
    build(settings)
    server = serve(settings)
    yield server
    server.stop()


def test_an_html_source_reads_as_text_with_its_span_highlighted(
    browser: Any, html_site: LiveServer
) -> None:
    context, page, watch = open_page(browser, html_site)
    try:
        page.wait_for_selector("#corpus:not(:empty)")
        answer = ask(page, "How many loaves does the bakery on Elm Street bake?")
        sentence = "The café & bakery on Elm Street bakes 120 sourdough loaves every morning."
        assert answer.locator(".answer-text").inner_text().startswith(sentence)
        assert answer.locator(".sources q").first.inner_text() == sentence
        answer.locator(".answer-text a.cite").first.click()
        mark = page.locator("#viewer-text mark")
        mark.wait_for()
        assert mark.text_content() == sentence
        shown = page.locator("#viewer-text").text_content()
        assert shown.startswith("Elm Street Café & Bakery") and "It opens at seven." in shown
        assert "<" not in shown and "&eacute;" not in shown and "hijacked" not in shown
        watch.check()
    finally:
        context.close()
