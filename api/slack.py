"""The Slack bot: mentions, direct messages and ``/ask``, answered with citations by the
same chat service as ``/v1/chat``.

Two transports share one Bolt app: the Events API at ``POST /slack/events`` (mounted
by ``create_app`` when ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET`` are set; Bolt
checks the signature and the five-minute timestamp window, 401 otherwise) and Socket
Mode (``rag slack`` with ``SLACK_APP_TOKEN``). Bolt acknowledges at once and runs the
listener in a worker thread, so Slack always has its answer within 3 seconds.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from api.answers import with_urls
from api.state import AppState
from rag.errors import RagError
from rag.query.citations import citation_line
from rag.types import Answer, Citation

log = logging.getLogger("api.slack")

SECTION_CHARS = 3000
"""Slack's limit on the text of one section block."""
MAX_BLOCKS = 50
QUOTE_CHARS = 200
PLACEHOLDER = ":hourglass_flowing_sand: Looking through the sources…"
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def escape(text: str) -> str:
    """Slack's three control characters, so corpus text can neither ping
    (``<!channel>``) nor plant a link (``<http://...|...>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sections(text: str) -> list[str]:
    """``text`` in pieces of at most SECTION_CHARS, cut at whitespace when possible."""
    out: list[str] = []
    while len(text) > SECTION_CHARS:
        cut = text.rfind(" ", 0, SECTION_CHARS)
        cut = cut if cut > 0 else SECTION_CHARS
        out.append(text[:cut])
        text = text[cut:].lstrip()
    if text:
        out.append(text)
    return out


def citation_text(c: Citation) -> str:
    """``[1] 004_1dc07bb43c1f175e.txt, line 7 — "quote…"``, the name linked to the
    source viewer when the service has a public URL."""
    name = escape(c.source)
    if c.url and c.url.startswith(("http://", "https://")):
        name = f"<{escape(c.url)}|{name}>"
    return citation_line(c, QUOTE_CHARS, name=name, separator=" —", escape=escape)


def render(answer: Answer) -> tuple[str, list[dict[str, Any]]]:
    """The notification text and the blocks of a reply: the answer in sections, then
    one context block per citation; within Slack's limits."""
    text = escape(answer.answer)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in _sections(text)
    ]
    for c in answer.citations:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": citation_text(c)}]}
        )
    if len(blocks) > MAX_BLOCKS:
        shortened = {"type": "mrkdwn", "text": "(answer shortened)"}
        blocks = [*blocks[: MAX_BLOCKS - 1], {"type": "context", "elements": [shortened]}]
    return text[:SECTION_CHARS], blocks


class EventLog:
    """Messages answered, or being answered (SQLite under the data folder, so several
    workers and a restart agree), keyed by team, channel and the message's ts: the
    same message delivered again (a retry, a Socket Mode redelivery, or a direct
    message delivered both as ``app_mention`` and as ``message.im``, with two event
    ids) gets no second reply. A claim becomes done once the reply is posted, and is
    released when it could not be, so that Slack's next delivery is answered; a claim
    whose worker died expires after ``lease`` seconds."""

    def __init__(self, path: Path, ttl_seconds: int, lease_seconds: int = 300) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl_seconds
        self.lease = lease_seconds
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS messages "
                "(key TEXT PRIMARY KEY, claimed REAL, done INTEGER)"
            )

    def claim(self, key: str) -> bool:
        """True when this worker is the one to answer ``key`` (nobody has, nobody is)."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "DELETE FROM messages WHERE claimed < ? OR (done = 0 AND claimed < ?)",
                (now - self.ttl, now - self.lease),
            )
            cursor = self._db.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, 0)", (key, now))
        return cursor.rowcount == 1

    def done(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE messages SET done = 1, claimed = ? WHERE key = ?", (time.time(), key)
            )

    def release(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM messages WHERE key = ?", (key,))


def _client(state: AppState) -> WebClient:
    settings = state.settings
    assert settings.slack_bot_token is not None
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token.get_secret_value()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    client = WebClient(**kwargs)
    # 429 (honouring Retry-After), 5xx and dropped connections are retried with backoff
    client.retry_handlers.extend(
        [
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ]
    )
    return client


class SlackBot:
    def __init__(self, state: AppState) -> None:
        settings = state.settings
        self.state = state
        self.events = EventLog(
            settings.data_dir / "slack_events.sqlite", settings.slack_dedupe_seconds
        )
        self.app = App(
            token=settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None,
            signing_secret=(
                settings.slack_signing_secret.get_secret_value()
                if settings.slack_signing_secret
                else None
            ),
            client=_client(state),
            token_verification_enabled=False,
            logger=log,
        )
        self.app.event("app_mention")(self.on_mention)
        self.app.event("message")(self.on_message)
        self.app.command("/ask")(self.on_ask)

    # listeners (Bolt acknowledges events itself before they run)

    def on_mention(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        thread = event.get("thread_ts") or event["ts"]
        self._answer_once(body, event, client, thread, thread)

    def on_message(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        if event.get("channel_type") != "im" or event.get("subtype"):
            return  # channel messages are answered when they mention the bot
        thread = event.get("thread_ts")
        self._answer_once(body, event, client, thread, thread or "dm")

    def on_ask(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        question = command.get("text", "").strip()
        if not question:
            ack("Usage: `/ask QUESTION` (ask about the articles of the corpus)")
            return
        ack()
        answer = self.answer(question, f"slack:{command['channel_id']}:ask:{command['user_id']}")
        if answer is None:
            respond(text="Sorry, something went wrong while answering; please try again.")
            return
        if answer.abstained and self.state.settings.slack_on_abstain == "silent":
            return
        text, blocks = render(answer)
        respond(response_type="in_channel", text=text, blocks=blocks)

    # the work

    def _answer_once(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        client: WebClient,
        thread: str | None,
        key: str,
    ) -> None:
        """Reply to a human's message unless it is being or was answered (by the
        message, not the event: see EventLog); a reply that could not be posted
        leaves the message to Slack's next delivery."""
        if event.get("bot_id") or event.get("subtype") == "bot_message":
            return  # other bots (Bolt already drops the bot's own events)
        message = f"{body.get('team_id', '')}:{event.get('channel')}:{event.get('ts')}"
        if not self.events.claim(message):
            return
        if self.reply(client, event["channel"], thread, event.get("text", ""), key):
            self.events.done(message)
        else:
            self.events.release(message)

    def answer(self, text: str, conversation_id: str) -> Answer | None:
        question = _MENTION.sub("", text).strip()
        try:
            service = self.state.service()
            # a Slack conversation is owned by its thread's own id ("slack:..."), which
            # no HTTP caller can own: /v1 cannot read or continue it
            answer = service.respond(question, conversation_id, owner=conversation_id).answer
        except RagError as exc:
            return Answer(answer=str(exc), citations=[], abstained=True, warnings=["error"])
        except Exception:
            log.exception("answering a Slack question failed")
            return None
        self.state.metrics.observe_answer(
            answer.timings_ms, answer.mode, answer.abstained, answer.warnings
        )
        return answer.model_copy(update={"citations": with_urls(self.state, answer.citations)})

    def reply(
        self, client: WebClient, channel: str, thread: str | None, text: str, key: str
    ) -> bool:
        """Post a placeholder in the thread, then replace it with the answer; False
        when Slack refused a post (after the client's own retries)."""
        try:
            placeholder = client.chat_postMessage(
                channel=channel, thread_ts=thread, text=PLACEHOLDER
            )
            answer = self.answer(text, f"slack:{channel}:{key}")
            if answer is None:
                client.chat_update(
                    channel=channel,
                    ts=placeholder["ts"],
                    text="Sorry, something went wrong while answering; please try again.",
                )
                return True
            if answer.abstained and self.state.settings.slack_on_abstain == "silent":
                client.chat_delete(channel=channel, ts=placeholder["ts"])
                return True
            message, blocks = render(answer)
            client.chat_update(channel=channel, ts=placeholder["ts"], text=message, blocks=blocks)
            return True
        except Exception:  # a Slack API failure is logged; the process keeps serving
            log.exception("replying in Slack failed (channel %s)", channel)
            return False
