"""The source viewer: the indexed documents, and any span of one with its context.

Only files of the published index can be read: a name is looked up in the index
manifest, never joined blindly onto the corpus path, so ``../``, absolute paths,
percent-encoded traversal and links out of the corpus all answer 404.

A span is shown in one of two views: ``raw``, the file's text (what citation offsets
index), or ``display``, the document as a reader sees it (rag/text/segment.py
``render``: an HTML or Markdown file's text without its markup, entities decoded, a
table row with its header; a plain-text or PDF file as it is), with the span mapped
onto it. JSON defaults to ``raw``; the HTML page to ``display``.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Service, authorize
from api.permalinks import SHA_CHARS, locate, quote_hash
from api.problems import ApiProblem, responses
from api.schemas import Source, SourceSpan
from rag.index.layout import DocumentEntry, documents
from rag.query.chat import ChatService
from rag.text.segment import Rendering, format_of, render

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


View = Literal["raw", "display"]


@lru_cache(maxsize=16)
def rendering(text: str, kind: str, lang: str) -> Rendering | None:
    """The display form of a document (None for plain text and PDF text, which are
    shown as they are); the last few are kept, since a reader opens one document for
    several citations."""
    if kind not in ("html", "markdown"):
        return None
    return render(text, format_of(kind), lang)


RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "ks", "ps", "sd", "ug", "ur", "yi"}
)
"""Languages written right to left (ISO 639-1/-3 codes as the corpus reader reports them)."""


@router.get(
    "/sources/{source:path}",
    response_model=SourceSpan,
    responses={200: HTML_DOC, **responses(401, 404, 409, 422, 429, 503)},
)
async def show_source(
    source: str,
    request: Request,
    service: Service,
    start: Annotated[int | None, Query(ge=0, description="First character (default 0)")] = None,
    end: Annotated[int | None, Query(ge=0, description="End character (default: the end)")] = None,
    context: Annotated[int, Query(ge=0, le=5000, description="Characters around")] = 300,
    sha: Annotated[
        str | None,
        Query(
            pattern=f"^[0-9a-fA-F]{{{SHA_CHARS}}}$",
            description="The permalink's content hash: the first 16 hex digits of the "
            "SHA-256 of the passage's text (UTF-8). Needs start and end. When the text at "
            "start:end has another hash, the nearest place in the file that has it is shown "
            "(moved: true); when none has, 409: the passage changed since the link was made",
        ),
    ] = None,
    whole: Annotated[
        bool, Query(description="before and after hold the rest of the document (no context cap)")
    ] = False,
    view: Annotated[
        View | None,
        Query(
            description="raw: the file's text (default for JSON); display: the document as "
            "a reader sees it, HTML and Markdown without markup (default for the HTML page). "
            "Offsets, lines and sha always refer to the file"
        ),
    ] = None,
) -> Response:
    """A span of an indexed document (a citation's ``url`` points here)."""
    info, text = await run_in_threadpool(_document_text, service, source)
    first = 0 if start is None else start
    last = len(text) if end is None else end
    moved = False
    if sha is not None:
        if start is None or end is None:
            raise ApiProblem(422, "sha needs the span it was made for: give start and end too")
        if first > last:
            raise ApiProblem(422, f"start must be <= end, got start={first}, end={last}")
        found = await run_in_threadpool(locate, text, first, last, sha)
        if found is None:
            detail = (
                f"this passage changed since the link was made: '{source}' no longer holds "
                f"the text that was at characters {first}-{last}, there or anywhere near"
            )
            if _wants_html(request):
                return Response(_changed_page(detail), 409, media_type="text/html; charset=utf-8")
            raise ApiProblem(409, detail)
        moved = found != (first, last)
        first, last = found
    if first > last or last > len(text):
        raise ApiProblem(
            422,
            f"start and end must satisfy 0 <= start <= end <= {len(text)} "
            f"(the length of '{source}'), got start={first}, end={last}",
        )
    page = _wants_html(request)
    view = view or ("display" if page else "raw")
    shown, shown_first, shown_last = text, first, last
    if view == "display":
        readable = await run_in_threadpool(rendering, text, info["kind"], info["lang"])
        if readable is not None:
            shown = readable.text
            shown_first, shown_last = readable.locate(first, last)
    around = len(shown) if whole else context
    span = SourceSpan(
        source=source,
        title=info["title"],
        lang=info["lang"],
        start_char=first,
        end_char=last,
        start_line=text.count("\n", 0, first) + 1,
        end_line=text.count("\n", 0, last) + 1,
        text=shown[shown_first:shown_last],
        before=shown[max(0, shown_first - around) : shown_first],
        after=shown[shown_last : shown_last + around],
        sha=quote_hash(text[first:last]),
        moved=moved,
        view=view,
    )
    if page:
        return Response(_page(span), media_type="text/html; charset=utf-8")
    return Response(span.model_dump_json(), media_type="application/json")


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def _where(start_line: int, end_line: int) -> str:
    return f"line {start_line}" if start_line == end_line else f"lines {start_line}-{end_line}"


def _html(title: str, body: str) -> str:
    # no inline style or script: the same Content-Security-Policy as every page
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<link rel='stylesheet' href='/static/app.css'></head>"
        f"<body class='source-page'>{body}</body></html>"
    )


def _changed_page(detail: str) -> str:
    """The HTML page a browser gets for a permalink whose passage changed."""
    return _html("Passage changed", f"<h1>Passage changed</h1><p>{html.escape(detail)}</p>")


def _page(span: SourceSpan) -> str:
    direction = "rtl" if span.lang in RTL_LANGUAGES else "auto"
    notice = (
        "<p class='notice'>The file changed since this link was made; the passage was "
        "found at its new place.</p>"
        if span.moved
        else ""
    )
    return _html(
        span.source,
        f"<h1 dir='auto'>{html.escape(span.title)}</h1>"
        f"<p>{html.escape(span.source)}, {_where(span.start_line, span.end_line)}</p>{notice}"
        f"<pre class='source-text' dir='{direction}' lang='{html.escape(span.lang)}'>"
        f"{html.escape(span.before)}<mark>{html.escape(span.text)}</mark>"
        f"{html.escape(span.after)}</pre>",
    )
