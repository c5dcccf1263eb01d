"""Business errors carry their HTTP status; the API turns every one into the same JSON shape:

    {"error": {"type": "...", "message": "...", "field": "max_retries" | null,
               "errors": [{"field": "...", "message": "..."}]}}
"""

from typing import Literal

from ninja import Schema
from pydantic import Field, create_model


class ApiError(Exception):
    status = 400
    type = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None,
                 type: str | None = None, errors: list[dict] | None = None):  # noqa: A002
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.errors = errors if errors is not None else ([{"field": field, "message": message}] if field else [])

    def body(self) -> dict:
        return {"error": {"type": self.type, "message": self.message, "field": self.field, "errors": self.errors}}


class NotFound(ApiError):
    status = 404
    type = "not_found"


class ValidationFailed(ApiError):
    status = 422
    type = "validation_error"


class Conflict(ApiError):
    status = 409
    type = "conflict"


class Unauthorized(ApiError):
    status = 401
    type = "unauthorized"


def error_body(status: int, type: str, message: str, field: str | None = None, errors=None) -> dict:  # noqa: A002
    return ApiError(message, field=field, status=status, type=type, errors=errors).body()


# --- the error responses in OpenAPI -------------------------------------------------------------------


class ErrorItem(Schema):
    field: str | None
    message: str


_schemas: dict[tuple[int, tuple[str, ...]], type[Schema]] = {}


def error_schema(status: int, types) -> type[Schema]:
    """The error shape with `type` as an enum of `types` (one class per status and set of types)."""
    types = tuple(sorted(types))
    key = (status, types)
    if key not in _schemas:
        name = "Error" + str(status) + "".join(t.title().replace("_", "") for t in types)
        # A single type would be a bare `const`: the enum says the same in the form every type list has.
        kind = (Literal[types], Field(json_schema_extra={"enum": list(types)}))
        body = create_model(name + "Body", __base__=Schema, type=kind, message=(str, ...),
                            field=(str | None, ...), errors=(list[ErrorItem], ...))
        schema = create_model(name, __base__=Schema, error=(body, ...))
        schema.__error_types__ = frozenset(types)
        _schemas[key] = schema
    return _schemas[key]


def error_types_of(annotation) -> frozenset[str] | None:
    return getattr(annotation, "__error_types__", None)


def errors(*conditions: type[ApiError]) -> dict[int, type[Schema]]:
    """`response={200: Out, **errors(NotFound, InvoiceNotPayable)}`: the error responses of a route."""
    by_status: dict[int, set[str]] = {}
    for condition in conditions:
        by_status.setdefault(condition.status, set()).add(condition.type)
    return {status: error_schema(status, types) for status, types in by_status.items()}
