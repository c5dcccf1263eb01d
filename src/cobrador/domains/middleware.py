"""Requests for an organization's custom domain reach only that organization's hosted pages.

The Host is looked up among the custom domains (not for cobrador's own host). On an active domain the
hosted pages (/pages/...) and their static files are served, marked with the organization
(`request.custom_domain_organization_id`, which pages/links.resolve_for checks so that another
organization's page link is a 404 there); the HTTP-01 answers are served on any custom domain being
verified or renewed. Everything else (the API, the admin, the dashboard, metrics) is a 404 on a custom host.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponseNotFound

from cobrador.domains.models import CustomDomain

ACME_PREFIX = "/.well-known/acme-challenge/"
# The pages, their static files, and the sandbox's card tokens endpoint the card page posts to in test mode.
PAGE_PREFIXES = ("/pages/", "/" + settings.STATIC_URL.lstrip("/"), "/sandbox/core/v5/tokens")
NOT_CUSTOM = {"localhost", "testserver"}


def _host(request) -> str:
    host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME") or ""
    if host.startswith("["):
        return ""  # an IPv6 literal
    return host.rsplit(":", 1)[0].rstrip(".").lower()


class CustomDomainMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.own_host = (urlsplit(settings.PUBLIC_URL).hostname or "").lower()

    def __call__(self, request):
        host = _host(request)
        if not host or host == self.own_host or host in NOT_CUSTOM or host.replace(".", "").isdigit():
            return self.get_response(request)
        found = (CustomDomain.objects.exclude(status="removed").filter(hostname=host)
                 .values_list("organization_id", "status").first())
        if found is None:
            return self.get_response(request)
        organization_id, status = found
        if request.path.startswith(ACME_PREFIX):
            return self.get_response(request)
        if status == "active" and request.path.startswith(PAGE_PREFIXES):
            request.custom_domain_organization_id = organization_id
            if request.META.get("HTTP_X_FORWARDED_PROTO") == "https":
                # A custom domain is only served through the TLS server (deploy/nginx-cobrador.conf), which
                # says the client's scheme: the pages' form posts then pass the CSRF origin check.
                request.META["wsgi.url_scheme"] = "https"
            return self.get_response(request)
        return HttpResponseNotFound("<h1>Not found</h1>")
