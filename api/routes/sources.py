"""The source viewer: the indexed documents, and any span of one with its context.

Only files of the published index can be read: a name is looked up in the index
manifest, never joined blindly onto the corpus path, so ``../``, absolute paths,
percent-encoded traversal and links out of the corpus all answer 404.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Service, authorize
from api.problems import ApiProblem, responses
from api.schemas import Source, SourceSpan
from rag.index.layout import DocumentEntry, documents
from rag.query.chat import ChatService

router = APIRouter(prefix="/v1", tags=["sources"], dependencies=[Depends(authorize)])

HTML_DOC = {
    "description": "The span with its context as JSON, or as an HTML page that "
    "highlights it when the client accepts text/html",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


@router.get("/sources", response_model=list[Source], responses=responses(401, 429, 503))
async def list_sources(service: Service) -> list[Source]:
    """The documents of the served index."""
    return [Source(**row) for row in documents(service.pipeline.index.manifest)]


def _document_text(service: ChatService, source: str) -> tuple[DocumentEntry, str]:
    info = service.pipeline.index.manifest["documents"].get(source)
    corpus = service.settings.corpus_dir.resolve()
    if info is None or not (corpus / source).resolve().is_relative_to(corpus):
        raise ApiProblem(404, f"no source '{source}' in the index")
    text = service.sources.get(source)
    if text is None:
        raise ApiProblem(404, f"source '{source}' can no longer be read")
    return info, text


@router.get(
    "/sources/{source:path}",
    response_model=SourceSpan,
    responses={200: HTML_DOC, **responses(401, 404, 422, 429, 503)},
)
async def show_source(
    source: str,
    request: Request,
    service: Service,
    start: Annotated[int | None, Query(ge=0, description="First character (default 0)")] = None,
    end: Annotated[int | None, Query(ge=0, description="End character (default: the end)")] = None,
    context: Annotated[int, Query(ge=0, le=5000, description="Characters around")] = 300,
) -> Response:
    """A span of an indexed document (a citation's ``url`` points here)."""
    info, text = await run_in_threadpool(_document_text, service, source)
    first = 0 if start is None else start
    last = len(text) if end is None else end
    if first > last or last > len(text):
        raise ApiProblem(
            422,
            f"start and end must satisfy 0 <= start <= end <= {len(text)} "
            f"(the length of '{source}'), got start={first}, end={last}",
        )
    span = SourceSpan(
        source=source,
        title=info["title"],
        lang=info["lang"],
        start_char=first,
        end_char=last,
        start_line=text.count("\n", 0, first) + 1,
        end_line=text.count("\n", 0, last) + 1,
        text=text[first:last],
        before=text[max(0, first - context) : first],
        after=text[last : last + context],
    )
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return Response(_page(span), media_type="text/html; charset=utf-8")
    return Response(span.model_dump_json(), media_type="application/json")


def _page(span: SourceSpan) -> str:
    direction = "rtl" if span.lang == "ar" else "ltr"
    where = (
        f"line {span.start_line}"
        if span.start_line == span.end_line
        else f"lines {span.start_line}-{span.end_line}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(span.source)}</title>"
        "<style>body{font:16px/1.5 sans-serif;max-width:48em;margin:2em auto}"
        "pre{white-space:pre-wrap}mark{background:#ffe58f}</style></head><body>"
        f"<h1>{html.escape(span.title)}</h1>"
        f"<p>{html.escape(span.source)}, {where}</p>"
        f"<pre dir='{direction}' lang='{html.escape(span.lang)}'>"
        f"{html.escape(span.before)}<mark>{html.escape(span.text)}</mark>"
        f"{html.escape(span.after)}</pre></body></html>"
    )
