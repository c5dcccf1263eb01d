"""The business conditions of gateway callbacks, each with its stable `type`."""

from cobrador.core.errors import ApiError, Conflict, NotFound, Unauthorized


class CallbackSignatureInvalid(Unauthorized):
    type = "invalid_signature"


class CallbackBodyInvalid(ApiError):
    status = 400
    type = "invalid_json"


class CallbackUrlUnknown(NotFound):
    """No gateway configuration answers to this provider and token."""


class CallbackNotReprocessable(Conflict):
    """A callback whose signature or body was bad is never processed."""
    type = "callback_not_reprocessable"
