"""The HTTP/JSON face of the runtime (SPEC §9), a FastAPI application.

=============================== ==================================================================
``POST /events``                one event object or an array of at most 1,000 → ``200``
                                ``[{id, status, reason?, message?, cases}]``; ``400`` a body that
                                is not JSON; ``413`` a body over 16 MiB (or over 1,000 events)
``GET /cases/{playbook}/{case}`` ``{state, outbox}``; ``404`` unknown
``GET /cases``                  ``?playbook=&stage=&breached=&limit=&after=``: case summaries
``POST /outbox/claim``          ``{limit?, lease_s?, types?}`` → the items leased
``POST /outbox/{id}/ack``       ``{ok}``
``POST /outbox/{id}/nack``      ``{retry_in_s?, permanent?, reason?}`` → ``{ok}``
``GET /healthz``                ``200`` when the store answers (``503`` otherwise); no token needed
``GET /metrics``                Prometheus text (:mod:`carepath.serve.metrics`)
``GET /openapi.json``           this API, generated from :mod:`carepath.serve.models`
=============================== ==================================================================

Every error answer is ``{"detail": "<one line>"}``. With a token, every endpoint but
``/healthz`` needs ``Authorization: Bearer <token>`` (compared in constant time), else ``401``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, TypeAdapter
from pydantic_core import PydanticUseDefault
from starlette.exceptions import HTTPException as StarletteHTTPException

from carepath.errors import StoreError
from carepath.serve.body import BadBody, BodyTooLarge, decode_events, read_limited
from carepath.serve.metrics import CONTENT_TYPE, render
from carepath.serve.models import (
    MAX_EVENTS,
    CaseDetail,
    CaseSummary,
    ClaimRequest,
    EventIn,
    EventResult,
    Health,
    NackRequest,
    Ok,
    OutboxItemOut,
    Problem,
    results_json,
)
from carepath.serve.service import Service

__all__ = ["create_app"]

log = logging.getLogger("carepath.serve")

_SUMMARIES = TypeAdapter(list[CaseSummary])
_ITEMS = TypeAdapter(list[OutboxItemOut])

_WHICH = "the item's playbook, when its id is claimed in several"
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid bearer token"}
}
_EVENTS_BODY = {
    "required": True,
    "description": f"one event, or an array of at most {MAX_EVENTS:,} (a body of at most 16 MiB)",
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/EventIn"},
                    {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/EventIn"},
                        "maxItems": MAX_EVENTS,
                    },
                ]
            }
        }
    },
}


_BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


class _Bearer:
    """The dependency that lets a request through only with ``Authorization: Bearer <token>``,
    compared in constant time (:func:`hmac.compare_digest`)."""

    def __init__(self, token: str) -> None:
        self.token = token.encode("utf-8")

    async def __call__(
        self, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> None:
        given = b"" if creds is None else creds.credentials.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.token):
            raise HTTPException(
                401,
                "a valid `Authorization: Bearer <token>` header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _blank_is_absent(value: Any) -> Any:
    """A query parameter given empty (``?stage=``) is one not given: it takes its default."""
    if value == "":
        raise PydanticUseDefault()
    return value


#: ``GET /cases?playbook=&stage=&breached=&limit=&after=`` (SPEC §9): an empty value filters nothing
_Blank = BeforeValidator(_blank_is_absent)


def _json(data: bytes, status: int = 200) -> Response:
    return Response(content=data, status_code=status, media_type="application/json")


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _first_error(exc: RequestValidationError) -> tuple[int, str]:
    """A validation error in one line (400 for a body that is not JSON, else 422)."""
    errors = list(exc.errors())
    if not errors:
        return 422, "invalid request"
    e = errors[0]
    if e.get("type") == "json_invalid":
        return 400, f"the body is not JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
    where = ".".join(str(x) for x in e.get("loc", ()))
    return 422, f"{where}: {e.get('msg', 'invalid')}"


def create_app(service: Service, *, lifespan: Any = None) -> FastAPI:  # noqa: C901 - one closure per endpoint, read in the order of the table above
    """The application over ``service``; ``lifespan`` runs the background work (wake-ups,
    delivery) while it serves."""
    from carepath import __version__

    app = FastAPI(
        title="carepath",
        version=__version__,
        description="Customer-care playbooks behind HTTP/JSON (SPEC §9).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # a JSON body sent without a Content-Type is read as JSON, as POST /events reads it
        strict_content_type=False,
    )
    deps = [Depends(_Bearer(service.token))] if service.token is not None else []
    api = APIRouter(dependencies=deps, responses=_UNAUTHORIZED if deps else {})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        status, detail = _first_error(exc)
        return _problem(status, detail)

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> Response:
        log.error("the store failed: %s", exc)
        return _problem(503, f"the store is unavailable: {exc}")

    @api.post(
        "/events",
        response_model=list[EventResult],
        summary="Submit events",
        description="Each event is submitted as `Runtime.submit` does, all in one transaction; "
        "an invalid event is answered `rejected` with its reason (and kept in the store's "
        "rejected events), never dropped.",
        responses={
            400: {"model": Problem, "description": "the body is not JSON"},
            413: {"model": Problem, "description": "over 16 MiB, or over 1,000 events"},
        },
        openapi_extra={"requestBody": _EVENTS_BODY},
    )
    async def post_events(request: Request) -> Response:
        try:
            body = await read_limited(request.headers.get("content-length"), request.stream())
            events = decode_events(body)
        except BodyTooLarge as exc:
            return _problem(413, str(exc))
        except BadBody as exc:
            return _problem(400, str(exc))
        results = await service.submit(events)
        return _json(results_json(results))

    @api.get(
        "/cases/{playbook}/{case:path}",
        response_model=CaseDetail,
        summary="One case",
        responses={404: {"model": Problem, "description": "no such case"}},
    )
    async def get_case(
        playbook: Annotated[str, Path(description="the playbook id")],
        case: Annotated[str, Path(description="the case key")],
    ) -> Response:
        found = await service.case(playbook, case)
        if found is None:
            return _problem(404, f"no case {case!r} of playbook {playbook!r}")
        return _json(found.model_dump_json().encode("utf-8"))

    @api.get("/cases", response_model=list[CaseSummary], summary="List cases")
    async def list_cases(
        playbook: Annotated[
            str | None, Query(description="only this playbook's cases"), _Blank
        ] = None,
        stage: Annotated[str | None, Query(description="only cases in this stage"), _Blank] = None,
        breached: Annotated[
            bool | None,
            Query(description="only cases with (true) or without (false) a breached clock"),
            _Blank,
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many"), _Blank] = 100,
        after: Annotated[
            str | None,
            Query(description="only keys after this one: the last key of the page before"),
            _Blank,
        ] = None,
    ) -> Response:
        found = await service.cases(
            playbook=playbook, stage=stage, breached=breached, limit=limit, after=after
        )
        return _json(_SUMMARIES.dump_json(found))

    @api.post("/outbox/claim", response_model=list[OutboxItemOut], summary="Claim due actions")
    async def claim(body: ClaimRequest | None = None) -> Response:
        req = body or ClaimRequest()
        try:
            items = await service.claim(req.limit, req.lease_s, req.types)
        except ValueError as exc:  # what the model lets through but the runtime refuses
            raise HTTPException(422, str(exc)) from None
        return _json(_ITEMS.dump_json(items))

    ambiguous: dict[int | str, dict[str, Any]] = {
        409: {"model": Problem, "description": "the id is claimed in several playbooks"}
    }

    @api.post(
        "/outbox/{item_id:path}/ack",
        response_model=Ok,
        summary="Acknowledge a claimed action: delivered",
        responses=ambiguous,
    )
    async def ack(
        item_id: str, playbook: Annotated[str | None, Query(description=_WHICH)] = None
    ) -> Ok:
        try:
            return Ok(ok=await service.ack(item_id, playbook))
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @api.post(
        "/outbox/{item_id:path}/nack",
        response_model=Ok,
        summary="Give a claimed action back: not delivered",
        responses=ambiguous,
    )
    async def nack(
        item_id: str,
        body: NackRequest | None = None,
        playbook: Annotated[str | None, Query(description=_WHICH)] = None,
    ) -> Ok:
        req = body or NackRequest()
        try:
            ok = await service.nack(item_id, playbook, req.retry_in_s, req.permanent, req.reason)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return Ok(ok=ok)

    @app.get(
        "/healthz",
        response_model=Health,
        summary="Whether the store answers",
        responses={503: {"model": Problem, "description": "the store does not answer"}},
    )
    async def healthz() -> Response:
        try:
            await service.healthy()
        except Exception as exc:
            return _problem(503, f"the store does not answer: {type(exc).__name__}: {exc}")
        return _json(b'{"status":"ok"}')

    @api.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}}},
    )
    async def metrics() -> Response:
        return Response(render(await service.snapshot()), media_type=CONTENT_TYPE)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.include_router(api)

    def build_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["EventIn"] = EventIn.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build_openapi  # type: ignore[method-assign]
    return app
