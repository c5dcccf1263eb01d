"""The HTTP-01 answer: any `cobrador web` process serves the key authorization of an order in flight."""

from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_GET

from cobrador.domains.models import AcmeChallenge


@require_GET
def acme_challenge(request, token: str):
    challenge = AcmeChallenge.objects.filter(token=token).only("key_authorization").first()
    if challenge is None:
        return HttpResponseNotFound("no such challenge", content_type="text/plain")
    return HttpResponse(challenge.key_authorization, content_type="application/octet-stream")
