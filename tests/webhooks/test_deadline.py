"""The webhook client's transport (webhooks/deadline.py) over httpcore's public API: requests go through,
httpcore's errors reach callers as httpx's, and the deadline bounds a whole request. How a delivery
records a receiver that trickles its answer is tested in test_delivery.py."""

import socket

import httpx
import pytest

from cobrador.webhooks import deadline
from tests.fakes.receiver import Answer


def test_requests_go_through(receiver):
    receiver.default = Answer(202, headers={"x-seen": "yes"})
    with deadline.client(timeout=5) as client:
        first = client.post(receiver.url, content=b'{"n": 1}', headers={"content-type": "application/json"})
        second = client.post(receiver.url, content=b'{"n": 2}')
    assert (first.status_code, first.headers["x-seen"], second.status_code) == (202, "yes", 202)
    assert [r.body for r in receiver.received] == [b'{"n": 1}', b'{"n": 2}']


def test_a_refused_connection_is_httpxs_connect_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with deadline.client(timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.post(f"http://127.0.0.1:{port}/", content=b"{}")


def test_a_trickling_answer_ends_at_the_deadline_as_httpxs_read_timeout(receiver):
    receiver.default = Answer(200, trickle=0.05)  # every byte well within the read timeout
    with deadline.client(timeout=5) as client, deadline.within(0.3), pytest.raises(httpx.ReadTimeout):
        client.post(receiver.url, content=b"{}")
