"""The web chat page at ``/`` with its assets under ``/static``, and the API docs at
``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from installed files: nothing is
loaded from another origin, so every page works with no network.

The docs' scripts and styles come from the ``fastapi-offline`` package (mounted at
``/vendor``); the pages here are written without inline script or style, so they run
under the same Content-Security-Policy as the rest (``api.security``).
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.deps import State
from api.security import CSP, start_session

STATIC = Path(str(resources.files("api") / "static"))
"""The page's own HTML, CSS and JavaScript."""
VENDOR = Path(str(resources.files("fastapi_offline") / "static"))
"""Swagger UI and ReDoc, as the fastapi-offline package ships them."""

# ReDoc writes its styles into <style> elements at run time (styled-components), which
# style-src 'self' forbids, and runs its search index in a worker made from a blob: URL.
# Its page alone allows both; scripts stay 'self' and connections this origin.
REDOC_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + (
    "; worker-src 'self' blob:"
)
# ReDoc's sidebar shows a logo from its CDN whatever the options: the copy served here
# shows an empty image instead, so /redoc asks nothing of another origin (CSP would
# block the request anyway)
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg%20xmlns=%27http://www.w3.org/2000/svg%27/%3E"

router = APIRouter(include_in_schema=False)


class AssetFiles(StaticFiles):
    """Static files that a browser revalidates before each use (ETag), so a page never
    runs yesterday's script against today's API."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount(app: FastAPI) -> None:
    """Add the page, the docs and their assets to ``app``."""
    app.include_router(router)
    app.mount("/static", AssetFiles(directory=STATIC), name="static")
    app.mount("/vendor", AssetFiles(directory=VENDOR), name="vendor")


@cache
def _page(name: str) -> str:
    """A page of api/static/, read once (the package's files do not change while it
    runs)."""
    return (STATIC / name).read_text(encoding="utf-8")


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def index(request: Request, state: State) -> Response:
    """The chat page. Without API keys, the browser gets a session cookie here, which
    identifies its conversations (``api.deps.browser_session``)."""
    response = HTMLResponse(_page("index.html"), headers={"Cache-Control": "no-cache"})
    if not state.settings.api_keys:
        public = state.settings.public_url or ""
        start_session(
            request, response, request.url.scheme == "https" or public.startswith("https:")
        )
    return response


@lru_cache(maxsize=1)
def _redoc_script() -> bytes:
    script = (VENDOR / "redoc.standalone.js").read_text(encoding="utf-8")
    return script.replace(REDOC_LOGO, EMPTY_IMAGE).encode("utf-8")


@router.get("/vendor/redoc.standalone.js")
async def redoc_script() -> Response:
    return Response(
        _redoc_script(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui() -> Response:
    return HTMLResponse(_page("docs.html"))


@router.get("/redoc", response_class=HTMLResponse)
async def redoc() -> Response:
    return HTMLResponse(_page("redoc.html"), headers={"Content-Security-Policy": REDOC_CSP})
