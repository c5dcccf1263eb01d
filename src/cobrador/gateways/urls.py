"""The built-in sandbox provider's own endpoints, outside /v1/ and /pages/ (included at /sandbox/)."""

from django.urls import path

from cobrador.gateways.views import sandbox_tokens

app_name = "sandbox"

urlpatterns = [
    path("core/v5/tokens", sandbox_tokens, name="tokens"),
]
