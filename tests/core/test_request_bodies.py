"""Bad input at the HTTP level (core/middleware.py): an oversized body is a 413, a body that is not
declared JSON a 415, a NUL character in any string a 422 naming the field; each in the one error shape,
and nothing is written."""

import http.client
import json
import logging
import socket
import threading

import pytest
from django.test import Client

from cobrador.core.models import IdempotencyRecord
from cobrador.customers.models import BillingAccount
from tests.factories import make_org
from tests.processes import free_port, start, stop, wait_until, worker_env

ACCOUNT = {"name": "Bob", "email": "bob@example.com"}


def post(api, body: bytes, content_type: str | None, **headers):
    extra = {"CONTENT_TYPE": content_type} if content_type is not None else {}
    return Client().generic("POST", "/v1/billing_accounts", data=body,
                            headers={"Authorization": f"Bearer {api.key}", **headers}, **extra)


def assert_error(response, status: int, type_: str, field: str | None = "body"):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["field"]) == (type_, field)
    assert error["message"]
    return error


def test_a_10_mb_body_is_a_413_in_the_error_shape_logged_as_a_warning(api, caplog):
    caplog.set_level(logging.INFO)
    big = json.dumps({**ACCOUNT, "metadata": {"x": "a" * (10 * 1024 * 1024)}}).encode()
    response = post(api, big, "application/json", **{"Idempotency-Key": "big-1"})
    assert_error(response, 413, "request_too_large")
    assert not BillingAccount.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    assert [(r.name, r.levelname) for r in caplog.records if r.levelno >= logging.WARNING] == [
        ("cobrador.core.middleware", "WARNING")]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_json_body_not_sent_as_json_is_a_415_and_nothing_is_written(api, content_type):
    response = post(api, json.dumps(ACCOUNT).encode(), content_type, **{"Idempotency-Key": "plain-1"})
    assert_error(response, 415, "unsupported_media_type")
    assert not BillingAccount.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/merge-patch+json"])
def test_json_media_types_are_accepted(api, content_type):
    assert post(api, json.dumps(ACCOUNT).encode(), content_type).status_code == 201


def test_a_write_without_a_body_needs_no_content_type(api):
    created = api.post("/v1/billing_accounts", ACCOUNT).json()
    response = Client().generic("DELETE", f"/v1/billing_accounts/{created['id']}",
                                headers={"Authorization": f"Bearer {api.key}"}, CONTENT_TYPE="")
    assert response.status_code != 415


@pytest.mark.parametrize("body, field", [
    ({**ACCOUNT, "name": "Bob\x00"}, "name"),
    ({**ACCOUNT, "metadata": {"crm": "4\x002"}}, "metadata.crm"),
    ({**ACCOUNT, "metadata": {"c\x00rm": "42"}}, "metadata.c\\u0000rm"),
    ({**ACCOUNT, "address": {"street": "\x00", "number": "1", "city": "X", "state": "SP", "zipcode": "01310100"}},
     "address.street"),
    ({**ACCOUNT, "tags": ["ok", "n\x00"]}, "tags.1"),
])
def test_a_nul_character_anywhere_in_the_body_is_a_422_naming_the_field(api, body, field):
    response = api.post("/v1/billing_accounts", body)  # json.dumps sends it as \u0000
    error = assert_error(response, 422, "validation_error", field)
    assert error["errors"] == [{"field": field, "message": "must not contain NUL (\\u0000) characters"}]
    assert not BillingAccount.objects.exists()


def test_provider_callbacks_keep_their_raw_body_whatever_the_media_type(api):
    # Callbacks are verified by signature and stored raw: a text/plain one reaches its handler (404: no
    # such configuration), not a 415.
    response = Client().generic("POST", "/v1/callbacks/kobana/no-such-token", data=b'{"a": 1}',
                                content_type="text/plain")
    assert response.status_code == 404


def _post_chunked(port: int, key: str, body: bytes, chunk_size: int = 7) -> tuple[int, dict]:
    """POST /v1/billing_accounts with `Transfer-Encoding: chunked` and no Content-Length.

    The chunks go out from a thread while this one reads the answer: a server that refuses an oversized
    body answers (and closes) before it has read it all, and a client that only reads after sending
    everything would meet a broken pipe instead of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (b"POST /v1/billing_accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            % key.encode())

    def send():
        try:
            sock.sendall(head)
            for i in range(0, len(body), chunk_size):
                piece = body[i:i + chunk_size]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered early and closed: the answer is what the test reads
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read() or b"null")
    finally:
        sender.join(timeout=30)
        sock.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_production_server_reads_a_chunked_body_and_refuses_an_oversized_one():
    api = make_org("Chunky", "test")
    port = free_port()
    web = start("web", "--port", str(port), "--workers", "1", env=worker_env())
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, timeout=60, message="cobrador web did not start")
        status, body = _post_chunked(port, api.key, json.dumps(ACCOUNT).encode())
        assert status == 201, body
        assert BillingAccount.objects.get(public_id=body["id"]).name == "Bob"

        huge = json.dumps({**ACCOUNT, "metadata": {"x": "a" * (3 * 1024 * 1024)}}).encode()
        status, body = _post_chunked(port, api.key, huge, chunk_size=64 * 1024)
        assert (status, body["error"]["type"]) == (413, "request_too_large")
        assert BillingAccount.objects.count() == 1
    finally:
        stop(web)


@pytest.mark.django_db(transaction=True)
def test_a_server_that_does_not_terminate_chunked_input_gets_a_clear_411(live_server):
    # Django's development server (wsgiref) hands over the raw socket: the body cannot be read safely.
    api = make_org("Chunky", "test")
    port = int(live_server.url.rsplit(":", 1)[1])
    body = json.dumps(ACCOUNT).encode()
    request = (b"POST /v1/billing_accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Authorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (api.key.encode(), len(body), body))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)  # all at once: the server answers without reading the body
        response = http.client.HTTPResponse(sock)
        response.begin()
        status, body = response.status, json.loads(response.read())
    assert (status, body["error"]["type"], body["error"]["field"]) == (411, "length_required", "body")
    assert not BillingAccount.objects.exists()
