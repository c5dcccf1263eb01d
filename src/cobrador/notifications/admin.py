from django.contrib import admin

from cobrador.notifications import services
from cobrador.notifications.models import (
    AccountNotificationSettings,
    Notice,
    NotificationOptOut,
    NotificationSettings,
    NotificationTemplate,
)


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ("public_id", "type", "channel", "recipient", "status", "attempts", "created_at")
    list_filter = ("status", "channel", "type")
    search_fields = ("public_id", "dedupe_key", "recipient")
    readonly_fields = [f.name for f in Notice._meta.fields]
    actions = ["send_again"]

    @admin.action(description="Send again: failed or parked notices become due now")
    def send_again(self, request, queryset):
        count = services.send_again(notice_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} notice(s) will be sent again.")


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "type", "locale", "updated_at")
    list_filter = ("type", "locale")
    readonly_fields = ("public_id", "created_at", "updated_at")


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("organization", "invoice_due_soon_days", "invoice_overdue_days",
                    "trial_ending_days", "card_expiring_days", "updated_at")
    readonly_fields = ("public_id",)


@admin.register(AccountNotificationSettings)
class AccountNotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("account", "organization", "webhook_url", "updated_at")
    exclude = ("webhook_secret",)
    readonly_fields = ("organization", "account", "updated_at")


@admin.register(NotificationOptOut)
class NotificationOptOutAdmin(admin.ModelAdmin):
    list_display = ("account", "type", "channel", "source", "created_at")
    list_filter = ("type", "channel", "source")
    readonly_fields = ("organization", "account", "type", "channel", "source", "created_at")
