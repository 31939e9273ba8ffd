"""The Slack bot through a running app: signed events posted to /slack/events, the
real slack-bolt and slack_sdk talking to a fake Slack Web API on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from api.slack import SECTION_CHARS, escape, render
from rag.config import Settings
from rag.types import Answer, Citation
from tests.api.conftest import LiveServer, serve
from tests.fake_slack import BOT_USER, FakeSlack

SECRET = "slack-signing-secret"
QUESTION = f"<@{BOT_USER}> Which chip did DeepSeek use, the H800?"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def slack_server(indexed: Settings, fake: FakeSlack, **overrides: Any) -> LiveServer:
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.api_url,
        **overrides,
    }
    return serve(indexed.model_copy(update={k: _secret(k, v) for k, v in values.items()}))


def _secret(key: str, value: Any) -> Any:
    if key in {"slack_bot_token", "slack_signing_secret"}:
        return Settings(**{key: value}).model_dump()[key] and getattr(Settings(**{key: value}), key)
    return value


@pytest.fixture
def slack_live(indexed: Settings, fake_slack: FakeSlack) -> Iterator[LiveServer]:
    server = slack_server(indexed, fake_slack)
    yield server
    server.stop()


def post_signed(
    server: LiveServer,
    body: str,
    content_type: str = "application/json",
    timestamp: int | None = None,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return httpx.post(
        server.url + "/slack/events",
        content=body,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or "",
            **(headers or {}),
        },
        timeout=30,
    )


def mention(text: str = QUESTION, event_id: str = "Ev1", ts: str = "1700000000.000100") -> str:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": "U123",
                "text": text,
                "ts": ts,
                "channel": "C1",
                "event_ts": ts,
            },
        }
    )


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("the expected Slack calls did not arrive")


def test_mention_gets_one_threaded_reply_with_citations(
    slack_live: LiveServer, fake_slack: FakeSlack
) -> None:
    started = time.monotonic()
    response = post_signed(slack_live, mention())
    assert response.status_code == 200
    assert time.monotonic() - started < 3  # acknowledged at once
    wait_for(lambda: bool(fake_slack.named("chat.update")))
    [placeholder] = fake_slack.named("chat.postMessage")
    assert placeholder["thread_ts"] == "1700000000.000100" and placeholder["channel"] == "C1"
    [update] = fake_slack.named("chat.update")
    blocks = (
        update["blocks"] if isinstance(update["blocks"], list) else json.loads(update["blocks"])
    )
    assert blocks[0]["type"] == "section" and "[1]" in blocks[0]["text"]["text"]
    context = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert context and context[0].startswith("[1] ") and ", line " in context[0]
    assert ' — "' in context[0]


def test_redelivered_event_gets_one_reply(slack_live: LiveServer, fake_slack: FakeSlack) -> None:
    body = mention(event_id="EvRetry")
    assert post_signed(slack_live, body).status_code == 200
    for n in (1, 2, 3):
        retry = post_signed(
            slack_live,
            body,
            headers={"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert retry.status_code == 200
    wait_for(lambda: bool(fake_slack.named("chat.update")))
    # another event after the retries: once it is answered, the retries are handled too
    post_signed(slack_live, mention(event_id="EvAfter", ts="1700000000.000500"))
    wait_for(lambda: len(fake_slack.named("chat.update")) >= 2)
    threads = [m["thread_ts"] for m in fake_slack.named("chat.postMessage")]
    assert threads == ["1700000000.000100", "1700000000.000500"]
    assert len(fake_slack.named("chat.update")) == 2


def dm_mention(event_type: str, event_id: str, ts: str = "1700000001.000100") -> str:
    """A direct message that mentions the bot, as Slack delivers it for one of the two
    subscriptions (app_mention, message.im): same channel and ts, its own event id."""
    event: dict[str, Any] = {"type": event_type, "user": "U123", "text": QUESTION}
    event.update(channel="D7", ts=ts, event_ts=ts)
    if event_type == "message":
        event["channel_type"] = "im"
    return json.dumps(
        {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}
    )


def test_a_dm_delivered_as_mention_and_as_message_is_answered_once(
    slack_live: LiveServer, fake_slack: FakeSlack
) -> None:
    assert post_signed(slack_live, dm_mention("app_mention", "EvDmA")).status_code == 200
    assert post_signed(slack_live, dm_mention("message", "EvDmB")).status_code == 200
    # the other order, for another message
    later = "1700000002.000100"
    assert post_signed(slack_live, dm_mention("message", "EvDmC", later)).status_code == 200
    assert post_signed(slack_live, dm_mention("app_mention", "EvDmD", later)).status_code == 200
    wait_for(lambda: len(fake_slack.named("chat.update")) >= 2)
    # a third message after them: once it is answered, any duplicate would have been too
    post_signed(slack_live, dm_mention("message", "EvDmE", "1700000003.000100"))
    wait_for(lambda: len(fake_slack.named("chat.update")) >= 3)
    assert len(fake_slack.named("chat.postMessage")) == 3
    assert len(fake_slack.named("chat.update")) == 3


def test_a_reply_that_could_not_be_posted_is_answered_on_redelivery(
    indexed: Settings, fake_slack: FakeSlack
) -> None:
    fake_slack.failures["chat.postMessage"] = [500, 500, 500]  # the client retries twice
    server = slack_server(indexed, fake_slack)
    try:
        body = mention(event_id="EvLost", ts="1700000004.000100")
        assert post_signed(server, body).status_code == 200
        wait_for(lambda: len(fake_slack.named("chat.postMessage!500")) == 3)
        for n in (1, 2, 3):  # Slack delivers again, as it does when a delivery failed
            post_signed(server, body, headers={"X-Slack-Retry-Num": str(n)})
            try:
                wait_for(lambda: bool(fake_slack.named("chat.update")), seconds=5)
                break
            except AssertionError:
                continue
    finally:
        server.stop()
    [placeholder] = fake_slack.named("chat.postMessage")
    assert placeholder["thread_ts"] == "1700000004.000100"
    assert len(fake_slack.named("chat.update")) == 1


def test_bad_or_stale_signature_is_401(slack_live: LiveServer, fake_slack: FakeSlack) -> None:
    body = mention(event_id="EvBad")
    assert post_signed(slack_live, body, secret="wrong").status_code == 401
    stale = int(time.time()) - 6 * 60
    assert post_signed(slack_live, body, timestamp=stale).status_code == 401
    # the same event properly signed: answered once, so the refused ones did nothing
    assert post_signed(slack_live, body).status_code == 200
    wait_for(lambda: bool(fake_slack.named("chat.update")))
    assert len(fake_slack.named("chat.postMessage")) == 1


def test_url_verification_challenge_is_echoed(slack_live: LiveServer) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
    response = post_signed(slack_live, body)
    assert response.status_code == 200 and response.json()["challenge"] == "abc123"


def test_corpus_text_cannot_ping_or_plant_links(indexed: Settings, fake_slack: FakeSlack) -> None:
    (indexed.corpus_dir / "ping.txt").write_text(
        "<!channel> The Zorbium chip was made by <http://evil.example|DeepSeek> & friends.\n",
        encoding="utf-8",
    )
    from rag.index.build import build

    build(indexed)
    server = slack_server(indexed, fake_slack)
    try:
        post_signed(server, mention(f"<@{BOT_USER}> Who made the Zorbium chip?", "EvPing"))
        wait_for(lambda: bool(fake_slack.named("chat.update")))
    finally:
        server.stop()
    [update] = fake_slack.named("chat.update")
    sent = json.dumps(update)
    assert "<!channel>" not in sent and "<http://evil.example" not in sent
    assert "&lt;!channel&gt;" in sent and "&amp; friends" in sent


def test_bots_and_the_bot_itself_are_ignored(slack_live: LiveServer, fake_slack: FakeSlack) -> None:
    other_bot = json.loads(mention(event_id="EvBot"))
    other_bot["event"]["bot_id"] = "BOTHER"
    own = json.loads(mention(event_id="EvSelf"))
    own["event"]["user"] = BOT_USER
    own["authorizations"] = [{"user_id": BOT_USER, "is_bot": True}]
    for body in (other_bot, own):
        assert post_signed(slack_live, json.dumps(body)).status_code == 200
    # a human's mention sent after them: once it is answered, theirs would have been too
    post_signed(slack_live, mention(event_id="EvHuman", ts="1700000000.000900"))
    wait_for(lambda: bool(fake_slack.named("chat.update")))
    assert [m["thread_ts"] for m in fake_slack.named("chat.postMessage")] == ["1700000000.000900"]


def test_rate_limited_update_is_retried(indexed: Settings, fake_slack: FakeSlack) -> None:
    fake_slack.failures["chat.update"] = [429]
    server = slack_server(indexed, fake_slack)
    try:
        post_signed(server, mention(event_id="Ev429"))
        wait_for(lambda: bool(fake_slack.named("chat.update")))
    finally:
        server.stop()
    names = [name for name, _ in fake_slack.calls]
    assert names.index("chat.update!429") < names.index("chat.update")


def test_direct_message_and_follow_up_in_thread(
    slack_live: LiveServer, fake_slack: FakeSlack
) -> None:
    def dm(text: str, event_id: str, ts: str, thread: str | None = None) -> str:
        event = {"type": "message", "channel_type": "im", "user": "U123", "text": text}
        event.update(channel="D1", ts=ts, event_ts=ts)
        if thread:
            event["thread_ts"] = thread
        return json.dumps({"type": "event_callback", "event_id": event_id, "event": event})

    post_signed(slack_live, dm("Which chip did DeepSeek use, the H800?", "EvDm1", "1.1", "1.0"))
    wait_for(lambda: len(fake_slack.named("chat.update")) == 1)
    post_signed(slack_live, dm("And the export controls?", "EvDm2", "1.2", "1.0"))
    wait_for(lambda: len(fake_slack.named("chat.update")) == 2)
    service = slack_live.app.state.rag.service()
    assert service.conversations.standalone_questions("slack:D1:1.0", "slack:D1:1.0") == [
        "Which chip did DeepSeek use, the H800?",
        "DeepSeek H800. And the export controls?",
    ]


def test_ask_command_acks_and_answers_in_channel(
    slack_live: LiveServer, fake_slack: FakeSlack
) -> None:
    body = urlencode(
        {
            "command": "/ask",
            "text": "Which chip did DeepSeek use, the H800?",
            "channel_id": "C9",
            "user_id": "U123",
            "team_id": "T1",
            "response_url": fake_slack.url + "/response/hook1",
            "trigger_id": "t",
        }
    )
    response = post_signed(slack_live, body, "application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: bool(fake_slack.named("response:hook1")))
    [reply] = fake_slack.named("response:hook1")
    assert reply["response_type"] == "in_channel" and "[1]" in reply["text"]


def test_silent_setting_leaves_no_reply_when_the_corpus_does_not_answer(
    indexed: Settings, fake_slack: FakeSlack
) -> None:
    server = slack_server(indexed, fake_slack, slack_on_abstain="silent")
    try:
        post_signed(server, mention(f"<@{BOT_USER}> Which chip is the H900?", "EvSilent"))
        wait_for(lambda: bool(fake_slack.named("chat.delete")))
    finally:
        server.stop()
    assert fake_slack.named("chat.update") == []


def test_long_answers_respect_slack_limits() -> None:
    citation = Citation(
        n=1,
        source="a.txt",
        title="t",
        start_char=0,
        end_char=5,
        start_line=1,
        end_line=1,
        quote="x < y",
        lang="en",
        score=1.0,
        url="https://rag.example.org/v1/sources/a.txt",
    )
    answer = Answer(answer="word " * 40000, citations=[citation] * 3, abstained=False)
    text, blocks = render(answer)
    assert len(blocks) <= 50 and len(text) <= SECTION_CHARS
    assert all(len(b["text"]["text"]) <= SECTION_CHARS for b in blocks if b["type"] == "section")
    assert blocks[-1]["elements"][0]["text"] == "(answer shortened)"
    short = render(answer.model_copy(update={"answer": "ok [1]"}))[1]
    assert short[1]["elements"][0]["text"].startswith(
        "[1] <https://rag.example.org/v1/sources/a.txt|a.txt>, line 1"
    )
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"


def test_socket_mode_without_tokens_says_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    assert main(["slack", "--no-index"]) == 2
    assert "SLACK_APP_TOKEN" in capsys.readouterr().err
