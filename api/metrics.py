"""Prometheus metrics of one app instance (its own registry, so several apps in one
process, as in tests, never share counters)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds",
            "HTTP request latency by route template (streams: until the last byte)",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage = Histogram(
            "rag_stage_duration_seconds",
            "Time per answering stage: embed (question), retrieve, answer",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "rag_answers_total",
            "Answers by mode and whether the service abstained",
            ["mode", "abstained"],
            registry=self.registry,
        )
        self.llm_failures = Counter(
            "rag_llm_failures_total",
            "Answers given extractively because the LLM was unreachable, slow or failing",
            registry=self.registry,
        )
        self.index_passages = Gauge(
            "rag_index_passages", "Passages in the served index", registry=self.registry
        )
        self.index_documents = Gauge(
            "rag_index_documents", "Documents in the served index", registry=self.registry
        )
        self.index_version = Gauge(
            "rag_index_version_info",
            "The served index version (value 1, version as a label)",
            ["version"],
            registry=self.registry,
        )
        self.index_builds = Counter(
            "rag_index_builds_total",
            "Index builds started over HTTP, by result",
            ["result"],
            registry=self.registry,
        )

    def observe_answer(
        self, timings_ms: dict[str, float], mode: str, abstained: bool, warnings: list[str]
    ) -> None:
        for stage in ("embed", "retrieve", "answer"):
            if stage in timings_ms:
                self.stage.labels(stage).observe(timings_ms[stage] / 1000)
        self.answers.labels(mode, str(abstained).lower()).inc()
        if "llm_unavailable" in warnings:
            self.llm_failures.inc()

    def set_index(self, version: str, documents: int, passages: int) -> None:
        self.index_version.clear()
        self.index_version.labels(version).set(1)
        self.index_documents.set(documents)
        self.index_passages.set(passages)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never the raw path,
    which would let clients create unbounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(name, method, str(status)).inc()
            self.metrics.latency.labels(name, method).observe(time.perf_counter() - started)
