"""The operator's console: Django's admin site with a home page (every job's health, the backlogs, the
parked items and the last failures) and a billing account's timeline with its actions.

`ConsoleSite` replaces the default admin site (ops/apps.py: ConsoleAdminConfig), so every app's
`@admin.register` lands here unchanged. Actions are confirmed: a GET shows what will happen, only a POST
(with Django's CSRF token) does it.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from cobrador.core import clock
from cobrador.customers.models import BillingAccount
from cobrador.ops import actions, overview
from cobrador.ops.timeline import account_timeline


class ConsoleSite(admin.AdminSite):
    site_header = site_title = "cobrador"
    index_title = "Operations"
    index_template = "ops/console/index.html"

    def index(self, request, extra_context=None):
        context = {**overview.home(clock.now()), **(extra_context or {})}
        return super().index(request, context)

    def get_urls(self):
        return [
            path("accounts/<str:public_id>/", self.admin_view(self.account_view), name="ops_account"),
            path("accounts/<str:public_id>/<str:action>/", self.admin_view(self.action_view),
                 name="ops_account_action"),
            *super().get_urls(),
        ]

    def _account(self, request, public_id: str) -> BillingAccount:
        if not request.user.has_perm("customers.view_billingaccount"):
            raise PermissionDenied
        account = (BillingAccount.objects.select_related("organization").filter(public_id=public_id).first())
        if account is None:
            raise Http404(f"no billing account {public_id}")
        return account

    def account_view(self, request, public_id: str):
        account = self._account(request, public_id)
        entries = account_timeline(account)
        allowed = {name for name, action in actions.ACTIONS.items() if request.user.has_perm(action.permission)}
        for entry in entries:
            entry.actions = [actions.ACTIONS[name] for name in entry.actions if name in allowed]
        account_actions = [actions.ACTIONS["reactivate" if account.status == "suspended" else "suspend"]]
        context = {
            **self.each_context(request), "title": f"{account.name} ({account.public_id})", "account": account,
            "entries": entries, "account_actions": [a for a in account_actions if a.name in allowed],
            "kinds": sorted({entry.kind for entry in entries}),
            "change_url": reverse("admin:customers_billingaccount_change", args=[account.pk]),
        }
        return TemplateResponse(request, "ops/console/account.html", context)

    def action_view(self, request, public_id: str, action: str):
        account = self._account(request, public_id)
        chosen = actions.ACTIONS.get(action)
        if chosen is None:
            raise Http404(f"no action {action}")
        if not request.user.has_perm(chosen.permission):
            raise PermissionDenied
        target = request.GET.get("target") or request.POST.get("target") or account.public_id
        back = reverse("admin:ops_account", args=[account.public_id])
        if request.method == "POST":
            try:
                message = actions.perform(chosen, user=request.user, account=account, target=target,
                                          form=request.POST)
            except actions.ActionRefused as exc:
                self.message(request, f"{chosen.label} refused: {exc}", messages.ERROR)
            else:
                self.message(request, message, messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {**self.each_context(request), "title": f"{chosen.label}: are you sure?", "account": account,
                   "action": chosen, "target": target, "question": chosen.question.format(target=target),
                   "back": back}
        return TemplateResponse(request, "ops/console/confirm.html", context)

    @staticmethod
    def message(request, text: str, level: int) -> None:
        messages.add_message(request, level, text)
