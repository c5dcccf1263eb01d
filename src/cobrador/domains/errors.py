"""The custom domains app's business errors, each with a stable `type` (the JSON error shape of core.errors)."""

from cobrador.core.errors import Conflict, NotFound, ValidationFailed


class CustomDomainNotFound(NotFound):
    type = "custom_domain_not_found"


class HostnameInvalid(ValidationFailed):
    type = "hostname_invalid"


class HostnameTaken(Conflict):
    """The hostname is another (or this) organization's domain already: one organization per hostname."""

    type = "hostname_taken"


class CustomDomainRemoved(Conflict):
    type = "custom_domain_removed"


# Per route, for OpenAPI: the 4xx answers each route can give.
ERROR_RESPONSES = {
    "create": (HostnameInvalid, HostnameTaken),
    "get": (CustomDomainNotFound,),
    "verify": (CustomDomainNotFound, CustomDomainRemoved),
    "delete": (CustomDomainNotFound,),
}
