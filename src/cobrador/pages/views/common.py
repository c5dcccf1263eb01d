"""What every hosted page shares: the organization's branding, the customer's language, the one 404."""

from django.shortcuts import render
from django.utils import translation

from cobrador.pages.models import PageBranding

LANGUAGES = {"pt-BR": "pt-br", "en": "en"}


def branding(organization) -> dict:
    found = PageBranding.objects.filter(organization=organization).values_list("logo_url", "color").first()
    logo_url, color = found or ("", PageBranding.DEFAULT_COLOR)
    return {"name": organization.name, "logo_url": logo_url, "color": color}


def private(response):
    # The token is in the URL: keep it out of caches, search engines and other sites' Referer headers.
    # (same-origin, not no-referrer: with no-referrer the page's own form posts carry `Origin: null`,
    # which the CSRF check refuses.)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def render_page(request, template: str, *, organization, locale: str, context: dict, status: int = 200):
    with translation.override(LANGUAGES.get(locale, "pt-br")):
        response = render(request, template, {"brand": branding(organization), "locale": locale, **context},
                          status=status)
    return private(response)


def not_found(request):
    """The same answer for a wrong, revoked or dangling token: nothing tells them apart."""
    return private(render(request, "pages/not_found.html", status=404))
