"""REST API v1 plumbing: the blueprint, the endpoint decorator, JSON errors, keyset cursors
and the OpenAPI document generated from the registered endpoints and their pydantic models.

Domain modules (`partners/api.py`, `shared_records/api.py`) declare endpoints with
`@endpoint(...)`; request bodies and query strings are validated here before a handler runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from pydantic import BaseModel, ValidationError

from auth.scopes import current_scopes
from portal.errors import BadRequest, Forbidden, PortalError, Unauthorized, ValidationFailed

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")

API_MODULES = (
    "partners.api",
    "shared_records.api",
    "shared_records.search_api",
    "shared_records.intake_api",
    "shared_records.merge_api",
    "shared_records.cti_api",
    "auth.api",
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class EndpointSpec:
    rule: str
    method: str
    summary: str
    function: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    auth: bool = True
    scope: str | None = None


REGISTRY: list[EndpointSpec] = []


def load_api_modules() -> None:
    for name in API_MODULES:
        importlib.import_module(name)


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON answer with the given status (the API's success responses)."""
    response = jsonify(data)
    response.status_code = status
    return response


def error_body(error: PortalError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    body.update(error.extra)
    return {"error": body}


def error_response(error: PortalError) -> Response:
    response = jsonify(error_body(error))
    response.status_code = error.status
    return response


_VISIBILITY_FIELDS = {
    "owner_organization_id": "the owner organisation does not change",
    "handling_organization_id": "use POST /cases/{id}/claim or /handover",
    "handling_user_id": "use POST /cases/{id}/claim, /release or /handover",
    "shares": "use /cases/{id}/shares",
}


def validation_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            hint = _VISIBILITY_FIELDS.get(where)
            message = f"unknown field ({hint})" if hint else "unknown field"
        fields.setdefault(where, message)
    return fields


def _read_json_body(model: type[BaseModel]) -> BaseModel:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("The request needs a JSON body.", code="body_missing")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON.", code="malformed_json") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="not_an_object")
    try:
        # JSON mode: strict about types (no "5" for 5) yet accepts enum values as strings.
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "Some fields are not valid.", fields=validation_fields(exc)
        ) from None


def _read_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        if len(values) > 1:
            raise BadRequest(f"Query parameter {key!r} given more than once.", code="bad_query")
        data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(
            "Some query parameters are not valid.",
            code="bad_query",
            fields=validation_fields(exc),
        ) from None


def endpoint(
    rule: str,
    method: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    auth: bool = True,
    scope: str | None = None,
) -> Callable[[F], F]:
    """Register an API endpoint. The handler receives `body=` and/or `query=` when declared;
    `scope` is the scope a bearer token needs (people hold every scope)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if auth and not current_user.is_authenticated:
                raise Unauthorized("Sign in or send a valid bearer token.")
            if scope is not None and scope not in current_scopes():
                raise Forbidden(f"This token lacks the scope {scope!r}.", code="insufficient_scope")
            if query is not None:
                kwargs["query"] = _read_query(query)
            if body is not None:
                kwargs["body"] = _read_json_body(body)
            return view(*args, **kwargs)

        name = f"{view.__module__.split('.')[0]}_{view.__name__}"
        api_bp.add_url_rule(rule, endpoint=name, view_func=wrapper, methods=[method])
        REGISTRY.append(
            EndpointSpec(
                rule=rule,
                method=method.lower(),
                summary=summary,
                function=name,
                tag=tag,
                body=body,
                query=query,
                responses=dict(responses or {200: None}),
                auth=auth,
                scope=scope,
            )
        )
        return wrapper  # type: ignore[return-value]

    return decorate


# --- keyset cursors ----------------------------------------------------------------------


def encode_cursor(at: dt.datetime, row_id: int) -> str:
    raw = json.dumps([at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """Raises BadRequest for anything that is not a cursor this API handed out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError(cursor)
        if not 0 < row_id < 2**63:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("The cursor is not valid.", code="bad_cursor") from None
    return at, row_id


# --- OpenAPI -----------------------------------------------------------------------------

_RULE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in _RULE_PARAM.findall(rule):
        schema = {"type": "integer"} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _RULE_PARAM.sub(r"{\2}", rule), params


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, built from REGISTRY and the pydantic models."""
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["code", "message"],
                }
            },
            "required": ["error"],
        }
    }
    ref_template = "#/components/schemas/{model}"

    def ref(model: type[BaseModel], mode: str) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=ref_template, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = schema
        return {"$ref": ref_template.format(model=model.__name__)}

    paths: dict[str, dict[str, Any]] = {}
    for spec in REGISTRY:
        path, params = _path(api_bp.url_prefix + spec.rule)  # type: ignore[operator]
        operation: dict[str, Any] = {
            "operationId": spec.function,
            "summary": spec.summary,
            "tags": [spec.tag],
            "responses": {},
        }
        if spec.query is not None:
            for name, info in spec.query.model_fields.items():
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": info.is_required(),
                        "description": info.description or "",
                        "schema": {"type": "string"},
                    }
                )
        if params:
            operation["parameters"] = params
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body, "validation")}},
            }
        for status, model in spec.responses.items():
            response: dict[str, Any] = {"description": "OK" if status < 300 else "See body"}
            if model is not None:
                response["content"] = {"application/json": {"schema": ref(model, "serialization")}}
            operation["responses"][str(status)] = response
        errors = [400, 401, 403, 404, 409, 413, 422] if spec.auth else [400]
        for status in errors:
            operation["responses"].setdefault(
                str(status),
                {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            )
        if spec.auth:
            operation["security"] = [{"bearer": []}, {"session": []}]
        if spec.scope:
            operation["x-required-scope"] = spec.scope
        paths.setdefault(path, {})[spec.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Wertkette partner portal API",
            "version": "1",
            "description": (
                "Every answer is filtered by the visibility policy. Unsafe requests with the "
                "session cookie need the X-CSRFToken header; bearer tokens need none."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": current_app.config["SESSION_COOKIE_NAME"],
                },
            },
        },
    }


@api_bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi_document())


def encode_id_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": row_id}).encode()).decode().rstrip("=")


def decode_id_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))["id"]
        if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 < row_id < 2**63:
            raise ValueError(cursor)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("The cursor is not valid.", code="bad_cursor") from None
    return row_id
