"""What the app holds while it runs: settings, the chat service (once an index is
published), metrics, the rate limiter and the background index job."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from api.limits import RateLimiter
from api.metrics import Metrics
from api.problems import ApiProblem
from rag.config import Settings
from rag.errors import IndexMissingError, RagError
from rag.index.build import build
from rag.index.layout import current_version
from rag.query.chat import ChatService
from rag.text.language import detect_language

log = logging.getLogger("api")


class IndexJob:
    """One background re-index at a time; its state is what ``GET /v1/index`` shows."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.status: dict[str, Any] = {"state": "idle"}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, rebuild: bool = False) -> None:
        with self._lock:
            if self.running:
                raise ApiProblem(409, "an index build is already running; see GET /v1/index")
            self.status = {
                "state": "running",
                "rebuild": rebuild,
                "started": time.time(),
                "progress": {"embedded": 0, "to_embed": None},
            }
            self._thread = threading.Thread(
                target=self._run, args=(rebuild,), name="index-build", daemon=True
            )
            self._thread.start()

    def _run(self, rebuild: bool) -> None:
        def progress(done: int, total: int) -> None:
            self.status["progress"] = {"embedded": done, "to_embed": total}

        try:
            report = build(self.settings, rebuild=rebuild, progress=progress)
        except RagError as exc:
            self._finish("failed", error=str(exc))
        except Exception as exc:  # a build must never take the server down
            log.exception("index build failed")
            self._finish("failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish("succeeded", report=report.to_dict())

    def _finish(self, state: str, **extra: Any) -> None:
        self.metrics.index_builds.labels(state).inc()
        self.status = {**self.status, "state": state, "finished": time.time(), **extra}

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class AppState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.auth_failures = RateLimiter(settings.auth_failures_per_minute)
        self.index_job = IndexJob(settings, self.metrics)
        self._service: ChatService | None = None
        self._lock = threading.Lock()
        self.load_error: str | None = None
        self._reported_version: str | None = None

    def service(self) -> ChatService:
        """The chat service on the current index version, opened on first use and
        switched to a newly published version without a restart."""
        service = self._service
        if service is None:
            with self._lock:
                if self._service is None:
                    if current_version(self.settings.index_dir) is None:
                        raise IndexMissingError(
                            "no index is published yet; run `rag index` or POST /v1/index"
                        )
                    self._service = ChatService(self.settings)
                service = self._service
        service.reload_if_changed()
        index = service.pipeline.index
        if index.version != self._reported_version:
            counts = index.manifest["counts"]
            self.metrics.set_index(index.version, counts["documents"], counts["passages"])
            self._reported_version = index.version
        return service

    def try_load(self) -> None:
        """Open the index at start-up if there is one; readiness reports the outcome."""
        try:
            service = self.service()
            self.load_error = None
            # load the language detector and touch the index now, not on the first question
            detect_language("warm up")
            with service.pipeline_in_use() as pipeline:
                pipeline.retriever.search("warm up")
        except RagError as exc:
            self.load_error = str(exc)
            log.warning("not ready: %s", exc)

    @property
    def ready(self) -> bool:
        return self._service is not None

    def index_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "version": None,
            "build": dict(self.index_job.status),
            "problem": self.load_error,
        }
        if self._service is not None:
            service = self.service()  # on the newest published version
            status["problem"] = service.problem
            manifest = service.pipeline.index.manifest
            status.update(
                version=service.pipeline.index.version,
                embedding_model=manifest["embedding_model"],
                documents=manifest["counts"]["documents"],
                passages=manifest["counts"]["passages"],
                created=manifest["created"],
                problems=manifest.get("problems", []),
            )
        return status

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
