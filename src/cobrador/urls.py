from django.contrib import admin
from django.urls import path

from cobrador.core.api import api
from cobrador.events.api import router as events_router
from cobrador.organizations.api import router as organizations_router
from cobrador.webhooks.api import router as webhooks_router

api.add_router("", organizations_router)
api.add_router("", webhooks_router)
api.add_router("", events_router)

urlpatterns = [
    path("v1/", api.urls),
    path("admin/", admin.site.urls),
]
