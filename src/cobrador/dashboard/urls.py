"""/dashboard/: the organization's analytics for its members (Django users with a Membership); staff
users may open any organization."""

from django.contrib.auth.views import LogoutView
from django.urls import path, reverse_lazy

from cobrador.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page=reverse_lazy("dashboard:login")), name="logout"),
    path("<str:org_id>/", views.organization_dashboard, name="organization"),
    path("<str:org_id>/export/<str:kind>.csv", views.export_csv, name="export"),
]
