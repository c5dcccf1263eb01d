"""Business errors carry their HTTP status; the API turns every one into the same JSON shape:

    {"error": {"type": "...", "message": "...", "field": "max_retries" | null,
               "errors": [{"field": "...", "message": "..."}]}}
"""


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
