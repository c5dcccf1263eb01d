from django.db import models

from cobrador.core.ids import public_id_default


class Event(models.Model):
    """A domain event, written in the transaction of the change it describes.

    `data` is the full object as the API returns it. The public id is the `webhook-id` of every
    delivery of this event, stable across retries.
    """

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("evt"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "type", "created_at"]),
                   models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.type} {self.public_id}"
