"""The built-in sandbox's tokens endpoint, the stand-in for Pagar.me's `POST /tokens?appId=<public key>`:
the card update page's script posts the card here from the customer's browser, apart from cobrador's
pages and API (no session, no CSRF, no API key: the public key names the sandbox configuration).

Nothing of the card is logged or stored: the answer is a signed one-time token with the last four
digits and brand (gateways/sandbox.py, `tokenize_card`), and errors name the field, never its value.
"""

import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from cobrador.gateways.sandbox import tokenize_card

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600", "Cache-Control": "no-store"}


def _answer(status: int, body: dict | None = None):
    response = JsonResponse(body, status=status) if body is not None else HttpResponse(status=status)
    for name, value in CORS.items():
        response[name] = value
    return response


@csrf_exempt
def sandbox_tokens(request):
    if request.method == "OPTIONS":
        return _answer(204)
    if request.method != "POST":
        return _answer(405, {"message": "Method not allowed."})
    if "Authorization" in request.headers:  # as Pagar.me: the secret key never travels with a card
        return _answer(401, {"message": "Authorization is not allowed on this endpoint; send appId."})
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return _answer(400, {"message": "The request is invalid."})
    if not isinstance(body, dict) or body.get("type") != "card" or not isinstance(body.get("card"), dict):
        return _answer(422, {"message": "The request is invalid.", "errors": {"card": ["type card and a card."]}})
    try:
        token = tokenize_card(public_key=request.GET.get("appId", ""), card=body["card"])
    except PermissionError:
        return _answer(401, {"message": "Invalid appId."})
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return _answer(422, {"message": "The request is invalid.", "errors": {field: [message]}})
    return _answer(200, token)
