from django.db import models
from django.db.models import Q


class PageLink(models.Model):
    """An unguessable, revocable link to one hosted page: a proposal's, an invoice's, or a billing account's
    card update page (`object_id` is then the account's public id).

    Only the SHA-256 of the token is stored (the token itself travels in e-mails and is shown once by
    the API), so a copy of the database opens no page. A revoked link answers 404 like a wrong one.
    """

    KINDS = [("proposal", "proposal"), ("invoice", "invoice"), ("card", "card")]

    public_id = models.CharField(max_length=40, unique=True)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    kind = models.CharField(max_length=10, choices=KINDS)
    object_id = models.CharField(max_length=40)  # the proposal's, invoice's or billing account's public id
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "kind", "object_id"], condition=Q(revoked_at=None),
                                name="page_link_live_by_object")]

    def __str__(self):
        return self.public_id


class PageBranding(models.Model):
    """How an organization's hosted pages look (GET/PATCH /v1/organizations/settings/pages)."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="page_branding")
    logo_url = models.URLField(max_length=1000, blank=True, default="")
    color = models.CharField(max_length=7, default="#2563eb")  # #rrggbb
    updated_at = models.DateTimeField()

    DEFAULT_COLOR = "#2563eb"
