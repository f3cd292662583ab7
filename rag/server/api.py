"""The JSON API: ask, chat (optionally streamed), search, documents and briefing jobs.

Each route checks its input, then makes the same library call as the matching CLI command in a
worker thread with a pooled index connection. No retrieval, generation or grounding logic lives here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError

from ..answer import Conversation, ask, chat_turn
from ..chunk import Chunker
from ..index import delete_documents, document_key, index_documents
from ..render import briefing_markdown
from ..retrieve import retrieve
from ..stores import sessions_for
from ..types import Answer, Briefing
from .errors import ApiError, validation_error
from .jobs import BriefingJobs, job_view
from .schemas import AskBody, BriefingBody, ChatBody, DocumentBody, SearchBody
from .security import Principal
from .sse import SSE_HEADERS, error_body, frames, open_stream, sse
from .state import Services
from .uploads import documents_from_upload, parse_multipart

router = APIRouter()
MAX_SAVED_TURNS = 100
SESSION_WAIT = 30.0


def services_of(request: Request) -> Services:
    return request.app.state.services


def principal_of(request: Request, role: str = "read") -> Principal:
    """The caller the guard accepted, if its role allows ``role`` (403 otherwise)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # the guard accepts every API route's caller; this only happens in a misconfigured app
        raise ApiError(401, "unauthorized", "not authenticated")
    if not principal.can(role):
        raise ApiError(403, "forbidden", f"this key's role ({principal.role}) may not do that; it needs {role}")
    return principal


def session_key(principal: Principal, session_id: str) -> str:
    """Sessions are the caller's own: another key using the same id gets a conversation of its own."""
    return f"{principal.owner}/{session_id}"


def check_question(services: Services, text: str, *, field: str = "question") -> str:
    limit = services.settings.server.max_question_chars
    if len(text) > limit:
        raise ApiError(422, "validation_error", f"{field}: longer than {limit} characters ({len(text)})", field=field)
    if not text.strip():
        raise ApiError(422, "validation_error", f"{field}: must not be blank", field=field)
    return text


# ------------------------------------------------------------------ ask / chat / search
def answer_response(answer: Answer) -> Response:
    # Serialized once, here: returning the model would make FastAPI validate it again against response_model.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/v1/ask", response_model=Answer, tags=["answers"], summary="Answer a question with verified citations")
async def post_ask(body: AskBody, request: Request) -> Response:
    """The same JSON as `rag ask --json`; a refusal (`refused: true`) when the sources don't hold the answer."""
    services = services_of(request)
    check_question(services, body.question)

    def work() -> Answer:
        with services.pool.use() as store:
            return ask(body.question, store=store, backend=services.backend, settings=services.settings,
                       k=body.k, source_glob=body.source)

    answer = await services.run(work)
    services.metrics.observe_answer(answer)
    return answer_response(answer)


def chat_items(services: Services, body: ChatBody, principal: Principal) -> Iterator[str | Answer]:
    """One chat turn as text deltas then the Answer; the caller's session (if any) is loaded, locked and saved."""
    key = session_key(principal, body.session_id) if body.session_id else None
    lock = services.sessions.get(key) if key else None
    if lock and not lock.acquire(timeout=SESSION_WAIT):
        raise ApiError(409, "session_busy", f"session {body.session_id!r} is answering another question; try again")
    try:
        with services.pool.use() as store:
            sessions = sessions_for(store)
            conversation = Conversation(turns=sessions.load(key) if key else [])
            for item in chat_turn(conversation, body.question, store=store, backend=services.backend,
                                  settings=services.settings, k=body.k, source_glob=body.source):
                if isinstance(item, Answer):
                    services.metrics.observe_answer(item)
                    if key:
                        sessions.save(key, conversation.turns[-MAX_SAVED_TURNS:])
                yield item
    finally:
        if lock:
            lock.release()


@router.post("/v1/chat", response_model=Answer, tags=["answers"], summary="One turn of a (saved) conversation",
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "An Answer, or with `stream: true` SSE events `delta` {text}, then `answer` "
                                             "(the verified Answer), or `error` {error}."}})
async def post_chat(body: ChatBody, request: Request) -> Any:
    """Follow-ups are condensed into standalone questions; `session_id` keeps the conversation across requests."""
    services = services_of(request)
    principal = principal_of(request)
    check_question(services, body.question)
    if not body.stream:
        return answer_response(await services.run(
            lambda: [i for i in chat_items(services, body, principal) if isinstance(i, Answer)][-1]))

    first, gen = await open_stream(services, lambda: chat_items(services, body, principal))

    def render(item: str | Answer) -> list[str]:
        if isinstance(item, Answer):
            return [sse(item.model_dump(mode="json"), event="answer")]
        return [sse({"text": item}, event="delta")] if item else []

    return StreamingResponse(frames(first, gen, render, lambda err: [sse(error_body(err), event="error")]),
                             media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/v1/search", tags=["search"], summary="Ranked chunks for a query (BM25)")
async def post_search(body: SearchBody, request: Request) -> dict[str, Any]:
    services = services_of(request)
    check_question(services, body.query, field="query")

    def work() -> list[Any]:
        with services.pool.use() as store:
            return retrieve(store, body.query, k=body.k or services.settings.k, source_glob=body.source)

    hits = await services.run(work)
    return {"query": body.query, "hits": [h.model_dump(mode="json") for h in hits]}


# ------------------------------------------------------------------ documents
@router.get("/v1/documents", tags=["documents"], summary="Indexed documents")
async def get_documents(request: Request) -> dict[str, Any]:
    services = services_of(request)

    def work() -> list[dict[str, object]]:
        with services.pool.use() as store:
            return store.list_documents()

    docs = await services.run(work)
    return {"documents": docs, "count": len(docs)}


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentBody.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                               "required": ["file"]}},
        },
    }
}


@router.post("/v1/documents", status_code=201, tags=["documents"], openapi_extra=_UPLOAD_DOC,
             summary="Upload .txt/.md/.html/.jsonl (multipart `file`, or JSON {filename, content})")
async def post_documents(request: Request) -> JSONResponse:
    """Indexed by the same rules as `rag index` (HTML stripped; binary, empty and other types rejected).

    The server picks the id, `uploads/<sanitized name>`; uploading the same name again replaces it.
    """
    services = services_of(request)
    principal = principal_of(request, "write")
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type.startswith("multipart/form-data"):
        files = parse_multipart(raw, content_type)
    elif content_type.split(";")[0].strip() in ("application/json", ""):
        try:
            doc = DocumentBody.model_validate_json(raw or b"")
        except ValidationError as err:
            raise validation_error([dict(e) | {"loc": ("body", *e["loc"])} for e in err.errors()]) from err
        files = [(doc.filename, doc.content.encode("utf-8"))]
    else:
        raise ApiError(415, "unsupported_media_type", f"send multipart/form-data or application/json, not {content_type!r}")
    results = [documents_from_upload(name, data) for name, data in files]
    documents = [d for r in results for d in r.documents]
    settings = services.settings
    chunker = Chunker(max_tokens=settings.chunk.max_tokens, overlap=settings.chunk.overlap, encoding=settings.encoding)

    def work() -> tuple[dict[str, str], int, dict[str, int]]:
        with services.pool.use() as store:
            owners = {str(d["id"]): d["owner"] for d in store.list_documents()}
            for doc in documents:
                if doc.id in owners:
                    check_owner(principal, doc.id, owners[doc.id], action="replace")
            before = store.document_keys()
            written = index_documents(documents, store, chunker, owner=principal.owner)
            chunks = {str(d["id"]): int(d["chunks"]) for d in store.list_documents() if d["id"] in {x.id for x in documents}}
            return before, written, chunks

    before, written, chunks = await services.run(work)
    def status(doc: Any) -> str:
        if doc.id not in before:
            return "indexed"
        return "unchanged" if before[doc.id] == document_key(doc, chunker) else "replaced"

    return JSONResponse(status_code=201, content={
        "documents": [{"id": d.id, "source": d.source, "title": d.title, "status": status(d), "chunks": chunks.get(d.id, 0)}
                      for d in documents],
        "chunks_written": written,
        "skipped": [{"source": s.source, "reason": s.reason} for r in results for s in r.skipped],
        "warnings": [{"source": w.source, "message": w.message} for r in results for w in r.warnings],
    })


def check_owner(principal: Principal, doc_id: str, owner: object, *, action: str) -> None:
    """Uploads belong to the key that made them; documents indexed by `rag index` are read-only over HTTP.
    An admin key may do anything."""
    if principal.can("admin"):
        return
    if owner is None:
        raise ApiError(403, "forbidden", f"{doc_id!r} was indexed from the command line and is read-only over HTTP "
                       f"(only an admin key may {action} it)")
    if owner != principal.owner:
        raise ApiError(403, "forbidden", f"{doc_id!r} was uploaded with another key; only that key or an admin key may {action} it")


@router.delete("/v1/documents/{doc_id:path}", tags=["documents"], summary="Remove a document from the index")
async def delete_document(doc_id: str, request: Request) -> dict[str, Any]:
    """Your own uploads; an admin key may remove any document."""
    services = services_of(request)
    principal = principal_of(request, "write")

    def work() -> int:
        with services.pool.use() as store:
            owners = {str(d["id"]): d["owner"] for d in store.list_documents()}
            if doc_id not in owners:
                return 0
            check_owner(principal, doc_id, owners[doc_id], action="delete")
            return delete_documents([doc_id], store)

    if not await services.run(work):
        raise ApiError(404, "not_found", f"no indexed document {doc_id!r}")
    return {"deleted": doc_id}


# ------------------------------------------------------------------ briefings
def jobs_of(services: Services) -> BriefingJobs:
    assert isinstance(services.jobs, BriefingJobs)
    return services.jobs


@router.post("/v1/briefings", status_code=202, tags=["briefings"], summary="Start a briefing job")
async def post_briefing(body: BriefingBody, request: Request) -> JSONResponse:
    """Summarizes each document (resumable), then writes the cross-document briefing. Poll GET /v1/briefings/{id}."""
    services = services_of(request)
    principal = principal_of(request, "write")

    def work() -> list[str]:
        with services.pool.use() as store:
            return [str(d["id"]) for d in store.list_documents()]

    indexed = await services.run(work)
    if body.doc_ids:
        unknown = [d for d in dict.fromkeys(body.doc_ids) if d not in set(indexed)]
        if unknown:
            raise ApiError(422, "validation_error", f"doc_ids: not indexed: {', '.join(map(repr, unknown[:5]))}", field="doc_ids")
        doc_ids = list(dict.fromkeys(body.doc_ids))
    elif indexed:
        doc_ids = indexed
    else:
        raise ApiError(422, "validation_error", "doc_ids: the index has no documents; upload some first", field="doc_ids")
    job = await services.run(jobs_of(services).submit, {"doc_ids": doc_ids, "title": body.title, "concurrency": body.concurrency},
                             owner=principal.owner)
    url = f"/v1/briefings/{job.id}"
    return JSONResponse(status_code=202, headers={"Location": url},
                        content={"id": job.id, "status": job.status, "documents": len(doc_ids), "url": url})


def _wants_markdown(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/markdown" in accept and "application/json" not in accept.split("text/markdown")[0]


@router.get("/v1/briefings/{job_id}", tags=["briefings"], summary="Status, progress and result of a briefing job",
            responses={200: {"content": {"text/markdown": {}}, "description": "JSON, or the briefing as Markdown "
                                                                             "with `Accept: text/markdown`."}})
async def get_briefing(job_id: str, request: Request) -> Response:
    services = services_of(request)
    principal = principal_of(request)
    job = await services.run(jobs_of(services).store.get, job_id)
    if job is None or not (principal.can("admin") or job.owner == principal.owner):
        raise ApiError(404, "not_found", f"no briefing job {job_id!r}")
    if _wants_markdown(request):
        if not job.result:
            raise ApiError(409, "not_ready", f"briefing job {job_id} is {job.status}; no briefing yet"
                           + (f": {job.error}" if job.error else ""))
        return PlainTextResponse(briefing_markdown(Briefing.model_validate_json(job.result)),
                                 media_type="text/markdown; charset=utf-8")
    return JSONResponse(job_view(job))
