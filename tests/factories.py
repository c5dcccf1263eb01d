"""Objects tests build through the real services: an organization with an API key, and a JSON client for
/v1 authenticated as it. A plain module: test modules import from here, fixtures in conftest.py use it."""

import json

from django.db import transaction
from django.test import Client

from cobrador.organizations.services import create_api_key, create_organization


class ApiClient:
    """A JSON client for /v1 authenticated as one organization."""

    def __init__(self, organization, key: str):
        self.organization = organization
        self.key = key
        self.client = Client()

    def _headers(self, extra):
        headers = {"Authorization": f"Bearer {self.key}"}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None, headers=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, path, data=data, content_type="application/json",
                                   headers=self._headers(headers))

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(kw.get("headers")), data=kw.get("params"))

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def make_org(name="Acme", mode="live") -> ApiClient:
    with transaction.atomic():
        organization = create_organization(name=name, mode=mode, billing_email=f"billing@{name.lower()}.test")
        _, key = create_api_key(organization=organization)
    return ApiClient(organization, key)
