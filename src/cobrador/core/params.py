"""Input types the API shares, each stating in OpenAPI exactly what the code accepts."""

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from cobrador.core.pagination import MAX_LIMIT


def _iso_string(value):
    # Pydantic would also take a number, or a numeric string such as "2.6e-287", as Unix time.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "an ISO 8601 date-time string with a timezone is required")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("datetime_type",
                                  "an ISO 8601 date-time string with a timezone is required") from None
    return value


# Strict mode refuses strings for datetimes; accept ISO 8601 strings (and nothing else) with a timezone.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string), Field(strict=False)]

# `?limit=` of every list.
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"1-{MAX_LIMIT} rows per page")]
