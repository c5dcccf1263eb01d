"""Plain Django routes of the custom domains app (outside /v1/, no API key)."""

from django.urls import path

from cobrador.domains.views import acme_challenge

urlpatterns = [
    path(".well-known/acme-challenge/<str:token>", acme_challenge, name="acme_challenge"),
]
