"""Plain template data built from API objects (event `data`) or rows, formatted for a locale.

Event data is read tolerantly: other apps' objects may name a field `account` or `account_id`, carry
an id or a nested object, or leave a field out; a missing value becomes "" rather than an error.
"""

from cobrador.notifications import formatting


def ref(value) -> str | None:
    """A public id from a field holding an id or a nested object with one."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def first_ref(data: dict, *keys: str) -> str | None:
    for key in keys:
        found = ref(data.get(key))
        if found:
            return found
    return None


def _text(value) -> str:
    return "" if value is None else str(value)


def invoice_context(data: dict, locale: str, timezone: str) -> dict:
    currency = data.get("currency") or "BRL"
    return {
        "id": _text(data.get("id")),
        "number": _text(data.get("number")),
        "total": formatting.money(data.get("total"), currency, locale),
        "amount_due": formatting.money(data.get("amount_due", data.get("total")), currency, locale),
        "due_date": formatting.day(data.get("due_date"), locale, timezone),
        "url": _text(data.get("hosted_invoice_url") or data.get("url") or data.get("invoice_url")),
    }


def payment_context(data: dict, locale: str, timezone: str) -> dict:
    return {
        "id": _text(data.get("id")),
        "amount": formatting.money(data.get("amount"), data.get("currency") or "BRL", locale),
        "method": _text(data.get("method")),
        "failure_message": _text(data.get("failure_message")),
        "paid_at": formatting.day(data.get("paid_at"), locale, timezone),
    }


def boleto_context(data: dict, locale: str, timezone: str) -> dict | None:
    """The boleto of a payment object (flat boleto_* fields or a nested `boleto`), None without one."""
    nested = data.get("boleto") if isinstance(data.get("boleto"), dict) else {}
    url = nested.get("url") or data.get("boleto_url")
    line = nested.get("line") or data.get("boleto_line")
    if not (url or line):
        return None
    return {"url": _text(url), "line": _text(line),
            "barcode": _text(nested.get("barcode") or data.get("boleto_barcode")),
            "expires_at": formatting.day(nested.get("expires_at") or data.get("expires_at"), locale, timezone)}


def pix_context(data: dict, locale: str, timezone: str) -> dict | None:
    nested = data.get("pix") if isinstance(data.get("pix"), dict) else {}
    copy_paste = nested.get("copy_paste") or data.get("pix_copy_paste")
    qr_code_url = nested.get("qr_code_url") or data.get("pix_qr_code_url")
    if not (copy_paste or qr_code_url):
        return None
    return {"copy_paste": _text(copy_paste), "qr_code_url": _text(qr_code_url),
            "expires_at": formatting.day(nested.get("expires_at") or data.get("expires_at"), locale, timezone)}


def subscription_context(data: dict, locale: str, timezone: str, plan_name: str = "") -> dict:
    plan = data.get("plan")
    if not plan_name:
        plan_name = _text(data.get("plan_name") or (plan.get("name") if isinstance(plan, dict) else ""))
    return {
        "id": _text(data.get("id")),
        "plan_name": plan_name,
        "trial_end": formatting.day(data.get("trial_end"), locale, timezone),
        "current_period_start": formatting.day(data.get("current_period_start"), locale, timezone),
        "current_period_end": formatting.day(data.get("current_period_end"), locale, timezone),
        "term_end": formatting.day(data.get("commitment_end") or data.get("current_period_end"), locale, timezone),
    }


def card_context(payment_method) -> dict:
    return {"id": payment_method.public_id, "brand": payment_method.card_brand, "last4": payment_method.card_last4,
            "expires": formatting.card_expiry(payment_method.exp_month, payment_method.exp_year)}


def retry_date(data: dict, locale: str, timezone: str) -> str:
    for key in ("next_retry_at", "next_attempt_at", "next_payment_attempt", "retry_at"):
        if data.get(key):
            return formatting.day(data[key], locale, timezone)
    return ""


def service_invoice_context(data: dict, locale: str, timezone: str) -> dict:
    """An NFS-e (the nfe.* events' object)."""
    return {
        "id": _text(data.get("id")),
        "number": _text(data.get("number")),
        "verification_code": _text(data.get("verification_code")),
        "amount": formatting.money(data.get("amount"), data.get("currency") or "BRL", locale),
        "issued_at": formatting.day(data.get("issued_at"), locale, timezone),
        "invoice": _text(data.get("invoice")),
        "pdf_url": _text(data.get("pdf_url")),
        "error": _text(data.get("error") or data.get("flow_message")),
    }


def proposal_context(data: dict, locale: str, customer_name: str) -> dict:
    currency = data.get("currency") or "BRL"
    lines = [line for line in data.get("lines") or () if isinstance(line, dict)]
    return {
        "id": _text(data.get("id")),
        "number": _text(data.get("number")),
        "total": formatting.money(data.get("total"), currency, locale),
        "expires_on": formatting.day(data.get("expires_on"), locale),
        "customer_name": customer_name,
        "customer_email": _text(data.get("email")),
        "message": _text(data.get("message")),
        "lines": [{"plan_name": _text(line.get("plan_name")), "quantity": line.get("quantity") or 1,
                   "amount": formatting.money(line.get("amount"), currency, locale)} for line in lines],
    }
