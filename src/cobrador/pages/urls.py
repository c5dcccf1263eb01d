"""The hosted customer pages, outside /v1/ (no API key: the token in the path is the credential)."""

from django.urls import path

from cobrador.pages.views.card import card_page
from cobrador.pages.views.invoice import invoice_page
from cobrador.pages.views.proposal import proposal_action, proposal_page

app_name = "pages"

urlpatterns = [
    path("p/<str:token>/", proposal_page, name="proposal"),
    path("p/<str:token>/<str:action>", proposal_action, name="proposal_action"),
    path("i/<str:token>/", invoice_page, name="invoice"),
    path("c/<str:token>/", card_page, name="card"),
]
