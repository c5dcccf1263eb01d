from django.contrib import admin

from cobrador.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("public_id",)
    readonly_fields = ("public_id", "organization", "type", "data", "created_at")
