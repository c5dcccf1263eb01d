"""The analytics errors, each with a stable `type` (same JSON shape as every error)."""

from cobrador.core.errors import ValidationFailed


class InvalidRange(ValidationFailed):
    """`from` after `to`, a range longer than the interval allows, or a date out of 2000-2100."""
    type = "invalid_range"
