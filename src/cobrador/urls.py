from django.contrib import admin
from django.urls import include, path

from cobrador.api import api
from cobrador.api_intro import GETTING_STARTED
from cobrador.callbacks.api import router as callbacks_router
from cobrador.catalog.api import router as catalog_router
from cobrador.core import operations
from cobrador.customers.api import router as customers_router
from cobrador.domains.api import router as domains_router
from cobrador.dunning.api import router as dunning_router
from cobrador.events.api import router as events_router
from cobrador.gateways.api import router as gateways_router
from cobrador.invoicing.api import router as invoicing_router
from cobrador.nfe.api import router as nfe_router
from cobrador.notifications.api import router as notifications_router
from cobrador.organizations.api import router as organizations_router
from cobrador.pages.api import router as pages_router
from cobrador.payments.api import router as payments_router
from cobrador.proposals.api import router as proposals_router
from cobrador.subscriptions.api import router as subscriptions_router
from cobrador.usage.api import router as usage_router
from cobrador.usage.mrr import DEFINITIONS_DOC as MRR_DEFINITIONS_DOC
from cobrador.webhooks.api import router as webhooks_router

# /v1/docs opens with the getting-started text and the analytics definitions (the API reference after).
api.description += GETTING_STARTED + MRR_DEFINITIONS_DOC

api.add_router("", organizations_router)
api.add_router("", webhooks_router)
api.add_router("", events_router)
api.add_router("", customers_router)
api.add_router("", catalog_router)
api.add_router("", subscriptions_router)
api.add_router("", invoicing_router)
api.add_router("", payments_router)
api.add_router("", callbacks_router)
api.add_router("", gateways_router)
api.add_router("", notifications_router)
api.add_router("", dunning_router)
api.add_router("", nfe_router)
api.add_router("", proposals_router)
api.add_router("", pages_router)
api.add_router("", domains_router)
api.add_router("", usage_router)
operations.apply(api)

urlpatterns = [
    path("v1/", api.urls),
    path("admin/", admin.site.urls),
    path("pages/", include("cobrador.pages.urls")),  # hosted customer pages (tokenized links)
    path("sandbox/", include("cobrador.gateways.urls")),  # the sandbox provider's card tokens endpoint
    path("", include("cobrador.domains.urls")),  # /.well-known/acme-challenge/<token> (HTTP-01)
    path("dashboard/", include("cobrador.dashboard.urls")),  # the organization's analytics, for its members
    path("", include("cobrador.ops.urls")),  # /healthz, /readyz, /metrics
]
