"""Liveness, readiness, metrics, and the re-index admin route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import Admin, State, authorize
from api.problems import ApiProblem, responses
from api.schemas import Health, IndexStatus

probes = APIRouter(tags=["operations"])
index = APIRouter(prefix="/v1", tags=["operations"], dependencies=[Depends(authorize)])


@probes.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (no I/O)."""
    return Health(status="ok")


@probes.get("/readyz", response_model=Health, responses=responses(503))
async def readyz(state: State) -> Health:
    """Readiness: 503 until an index is loaded."""
    if not state.ready:
        state.try_load()
    if not state.ready:
        raise ApiProblem(503, f"not ready: {state.load_error or 'no index loaded'}")
    status = state.index_status()
    return Health(status="ready", index_version=status["version"], problem=status["problem"])


@probes.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(state: State) -> Response:
    """Prometheus metrics."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@index.get("/index", response_model=IndexStatus, responses=responses(401, 429, 503))
async def index_status(state: State) -> IndexStatus:
    """The served version and the state of the latest build started over HTTP."""
    if not state.ready:
        state.try_load()
    return IndexStatus.model_validate(state.index_status())


@index.post(
    "/index",
    status_code=202,
    response_model=IndexStatus,
    responses=responses(401, 403, 409, 429, 503),
)
async def start_index(
    state: State,
    _: Admin,
    rebuild: Annotated[bool, Query(description="Ignore the current index")] = False,
) -> IndexStatus:
    """Start an incremental re-index in the background (admin key). The service keeps
    answering from the current version and switches when the new one is published."""
    state.index_job.start(rebuild)
    return IndexStatus.model_validate(state.index_status())
