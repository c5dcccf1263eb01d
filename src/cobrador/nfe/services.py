"""NFS-e use cases: fiscal settings, the notes' rows and their one forward-only state machine.

Nothing here calls NFe.io or commits: issuing.py makes the calls outside any transaction, and the
callers' transactions (a sink, an API route, a sweep batch) commit.

`apply_answer` is the one way a note's state moves on NFe.io's word, for an issue or cancel answer, a
poll and a callback alike. It never moves a note backwards (TRANSITIONS), merges only the fields the
answer carries (a later callback can be partial), and ignores answers about another attempt's note
(a failed note's id after a retry) and another environment's notes.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction

from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects, update_rows
from cobrador.core.ids import random_token
from cobrador.events.services import EventDraft, record_events
from cobrador.nfe import nfeio
from cobrador.nfe.errors import FiscalSettingsInvalid, ServiceInvoiceNotCancelable, ServiceInvoiceNotRetryable
from cobrador.nfe.models import FiscalSettings, ServiceInvoice
from cobrador.notifications import rendering

POLICIES = ("never", "on_invoice_created", "on_payment")
DEFAULT_DESCRIPTION = "{% for line in lines %}{{ line.description }}{% if not loop.last %}; {% endif %}{% endfor %}"
ISSUED_FLOW, FAILED_FLOW, CANCELED_FLOW, CANCEL_FAILED_FLOW = "Issued", "IssueFailed", "Cancelled", "CancelFailed"
WAITING_CANCEL_FLOW = "WaitingSendCancel"

# The moves a note can make on NFe.io's word; anything else is an old or out-of-order answer, ignored.
# failed -> issued: the city hall accepted it after all (a late Issued after an IssueFailed).
TRANSITIONS = {
    "pending": {"processing", "issued", "failed"},
    "processing": {"issued", "failed"},
    "failed": {"issued"},
    "blocked": set(),
    "issued": {"cancel_pending", "canceled", "cancel_failed"},
    "cancel_pending": {"canceled", "cancel_failed"},
    "cancel_failed": {"cancel_pending", "canceled"},
    "canceled": set(),
}
EVENT_OF_STATUS = {"issued": "nfe.issued", "failed": "nfe.failed", "canceled": "nfe.canceled"}
NOTE_FIELDS = ["status", "nfeio_id", "flow_status", "flow_message", "number", "check_code", "access_key",
               "pdf_url", "xml_url", "sent_at", "next_attempt_at", "cancel_requested", "error", "issued_at",
               "canceled_at", "updated_at", "external_id", "attempts", "blocked_reason", "environment"]


def environment_of(organization) -> str:
    """A test-mode organization issues in the company's Development environment, live in Production."""
    return "Production" if organization.mode == "live" else "Development"


# --- fiscal settings ----------------------------------------------------------------------------------


def fiscal_settings(organization) -> FiscalSettings:
    existing = FiscalSettings.objects.filter(organization=organization).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():  # a savepoint: a concurrent creator wins and we read its row
            return FiscalSettings.objects.create(organization=organization, updated_at=clock.now())
    except IntegrityError:
        return FiscalSettings.objects.get(organization=organization)


def settings_data(config: FiscalSettings) -> dict:
    return {
        "object": "fiscal_settings",
        "policy": config.policy,
        "nfeio_company_id": config.nfeio_company_id or None,
        "has_nfeio_api_key": bool(config.credentials.get("api_key")),
        "has_nfeio_webhook_secret": bool(config.credentials.get("webhook_secret")),
        "city_service_code": config.city_service_code or None,
        "federal_service_code": config.federal_service_code or None,
        "description_template": config.description_template or None,
        "iss_rate": str(Decimal(config.iss_rate).quantize(Decimal("0.0001"))) if config.iss_rate is not None else None,
        "iss_withheld": config.iss_withheld,
        "cancel_on_void": config.cancel_on_void,
        "cancel_on_refund": config.cancel_on_refund,
        "environment": environment_of(config.organization),
        "callback_path": f"/v1/callbacks/nfeio/{config.callback_token}",
        "updated_at": config.updated_at,
    }


def update_fiscal_settings(*, organization, changes: dict) -> FiscalSettings:
    """Apply typed `changes` (schema-checked) after the rules that span fields; nothing changes on error."""
    config = FiscalSettings.objects.select_for_update().get(pk=fiscal_settings(organization).pk)
    changes = dict(changes)
    credentials = dict(config.credentials)
    for name, key in (("nfeio_api_key", "api_key"), ("nfeio_webhook_secret", "webhook_secret")):
        if name in changes:
            value = changes.pop(name)
            if value:
                credentials[key] = value
            else:
                credentials.pop(key, None)
    if "description_template" in changes and changes["description_template"]:
        try:
            rendering.compile_template(changes["description_template"], html=False)
        except rendering.TemplateCompileError as exc:
            raise FiscalSettingsInvalid(f"the template does not compile: {exc}",
                                        field="description_template") from None
    for name, value in changes.items():
        if name == "iss_rate":
            value = Decimal(str(value)) if value is not None else None
        elif value is None:
            value = ""
        setattr(config, name, value)
    config.credentials = credentials
    if config.policy != "never":
        for name, have in (("nfeio_company_id", config.nfeio_company_id),
                           ("nfeio_api_key", credentials.get("api_key")),
                           ("city_service_code", config.city_service_code)):
            if not have:
                raise FiscalSettingsInvalid(f"{name} is required when the policy is {config.policy}", field=name)
    config.updated_at = clock.now()
    config.save()
    return config


def client_for(config: FiscalSettings) -> nfeio.NfeioClient:
    return nfeio.HttpNfeioClient(api_key=config.credentials.get("api_key", ""))


# --- the borrower ---------------------------------------------------------------------------------------


def missing_fiscal_data(account, config: FiscalSettings | None) -> str:
    """Why a note for `account` cannot be sent to NFe.io, naming the field ("" when nothing is missing)."""
    if config is None or not config.nfeio_company_id or not config.credentials.get("api_key"):
        return "fiscal settings: nfeio_company_id and nfeio_api_key are required"
    if not config.city_service_code:
        return "fiscal settings: city_service_code is required"
    if not account.document:
        return "billing account: document (CPF or CNPJ) is required"
    address = account.address or {}
    for key in ("zipcode", "state", "city", "street", "city_code"):
        if not address.get(key):
            return f"billing account: address.{key} is required"
    if address.get("country", "BR") != "BR":
        return "billing account: the address must be in Brazil (country BR)"
    return ""


def _federal_tax_number(document: str):
    """NFe.io types federalTaxNumber as an integer; an alphanumeric CNPJ can only go as a string."""
    return int(document) if document.isdigit() else document


def borrower(account) -> dict:
    address = account.address or {}
    zipcode = re.sub(r"\D", "", address.get("zipcode", ""))
    return {
        "type": "LegalEntity" if account.document_type == "cnpj" else "NaturalPerson",
        "name": (account.legal_name or account.name)[:115],
        "federalTaxNumber": _federal_tax_number(account.document),
        "email": account.fiscal_email or account.email,
        "address": {
            "country": "BRA",
            "postalCode": f"{zipcode[:5]}-{zipcode[5:]}" if len(zipcode) == 8 else zipcode,
            "street": address.get("street", ""),
            "number": address.get("number", "") or "S/N",
            "additionalInformation": address.get("complement", ""),
            "district": address.get("neighborhood", ""),
            "city": {"code": address.get("city_code", ""), "name": address.get("city", "")},
            "state": address.get("state", ""),
        },
    }


def description_for(config: FiscalSettings, invoice, lines) -> str:
    """The service description, from the organization's sandboxed template and the invoice's lines."""
    context = {"invoice": {"id": invoice.public_id, "number": invoice.number, "total": invoice.total,
                           "currency": invoice.currency,
                           "period_start": invoice.period_start.date().isoformat() if invoice.period_start else "",
                           "period_end": invoice.period_end.date().isoformat() if invoice.period_end else ""},
               "lines": [{"description": line.description, "quantity": line.quantity, "amount": line.amount}
                         for line in lines]}
    text = rendering.render(config.description_template or DEFAULT_DESCRIPTION, context, html=False).strip()
    return text[:2000] or f"Invoice {invoice.number}"


def issue_body(note: ServiceInvoice, config: FiscalSettings, account) -> dict:
    body = {
        "externalId": note.external_id,
        "cityServiceCode": config.city_service_code,
        "description": note.description,
        "servicesAmount": nfeio.reais(note.amount),
        "borrower": borrower(account),
    }
    if config.federal_service_code:
        body["federalServiceCode"] = config.federal_service_code
    if config.iss_rate is not None:
        body["issRate"] = float(config.iss_rate)
        if config.iss_withheld:
            body["issAmountWithheld"] = nfeio.reais(int((Decimal(note.amount) * config.iss_rate).to_integral_value()))
    return body


# --- notes -----------------------------------------------------------------------------------------------


def service_invoice_data(note: ServiceInvoice) -> dict:
    return {
        "id": note.public_id,
        "object": "service_invoice",
        "invoice": note.invoice.public_id,
        "account": note.account.public_id,
        "status": note.status,
        "environment": note.environment,
        "external_id": note.external_id,
        "amount": note.amount,
        "currency": note.currency,
        "description": note.description or None,
        "blocked_reason": note.blocked_reason or None,
        "nfeio_id": note.nfeio_id or None,
        "number": note.number or None,
        "verification_code": note.check_code or None,
        "access_key": note.access_key or None,
        "flow_status": note.flow_status or None,
        "flow_message": note.flow_message or None,
        "pdf_url": note.pdf_url or None,
        "xml_url": note.xml_url or None,
        "error": note.error or None,
        "cancel_requested": note.cancel_requested,
        "attempts": note.attempts,
        "issued_at": note.issued_at,
        "canceled_at": note.canceled_at,
        "created_at": note.created_at,
        "updated_at": note.updated_at,
    }


def call_data(call) -> dict:
    return {"operation": call.operation, "http_status": call.http_status, "outcome": call.outcome,
            "duration_ms": call.duration_ms, "at": call.at}


@dataclass
class Changes:
    """What a transaction changed about notes: rows to save, events to write (once, at the end)."""

    notes: dict = field(default_factory=dict)  # pk -> note
    events: list = field(default_factory=list)
    companies: dict = field(default_factory=dict)  # organization pk -> NFe.io company id, read once

    def company_id(self, organization_id: int) -> str:
        if organization_id not in self.companies:
            self.companies[organization_id] = FiscalSettings.objects.filter(
                organization_id=organization_id).values_list("nfeio_company_id", flat=True).first() or ""
        return self.companies[organization_id]

    def save(self, note: ServiceInvoice) -> None:
        self.notes[note.pk] = note

    def emit(self, note: ServiceInvoice) -> None:
        self.events.append(EventDraft(note.organization, EVENT_OF_STATUS[note.status], service_invoice_data(note)))

    def write(self) -> None:
        update_rows(list(self.notes.values()), NOTE_FIELDS)
        record_events(self.events)
        self.notes, self.events = {}, []  # the companies stay: read once per transaction


def new_notes(*, invoices, configs: dict, now) -> list[ServiceInvoice]:
    """Build (not save) one `issue` note per invoice: `pending`, or `blocked` with the missing field.
    `configs`: organization pk -> FiscalSettings. Invoices carry their account, organization and lines."""
    notes = []
    for invoice in invoices:
        config = configs[invoice.organization_id]
        public_id = f"nfse_{random_token()}"
        lines = list(invoice.lines.all())
        reason = missing_fiscal_data(invoice.account, config)
        try:
            description = description_for(config, invoice, lines)
        except (rendering.RenderError, rendering.TemplateCompileError) as exc:
            description, reason = "", reason or f"fiscal settings: description_template failed: {exc}"[:500]
        notes.append(build(
            ServiceInvoice, public_id=public_id, organization_id=invoice.organization_id, invoice_id=invoice.pk,
            account_id=invoice.account_id, purpose="issue", status="blocked" if reason else "pending",
            environment=environment_of(invoice.organization), external_id=public_id, amount=invoice.total,
            currency=invoice.currency, description=description, blocked_reason=reason,
            next_attempt_at=None if reason else now, created_at=now, updated_at=now))
    return notes


def create_notes(*, invoices, configs: dict) -> list[ServiceInvoice]:
    """Write the notes of `invoices` that have none (a repeat is a no-op: the unique (invoice, purpose)
    key). Returns the notes written."""
    now = clock.now()
    have = set(ServiceInvoice.objects.filter(invoice_id__in=[i.pk for i in invoices], purpose="issue")
               .values_list("invoice_id", flat=True))
    notes = new_notes(invoices=[i for i in invoices if i.pk not in have and i.total > 0], configs=configs, now=now)
    insert_objects(notes, ignore_conflicts=True)
    return notes


def apply_answer(*, note: ServiceInvoice, answer: nfeio.NoteAnswer, changes: Changes, via: str) -> str:
    """Merge what NFe.io says about `note` (locked by the caller); returns what happened, for logs."""
    if answer.nfeio_id and note.nfeio_id and answer.nfeio_id != note.nfeio_id:
        return f"{via}: about another note ({answer.nfeio_id}), ignored"
    if answer.external_id and answer.external_id != note.external_id:
        return f"{via}: about another attempt ({answer.external_id}), ignored"
    if answer.environment and answer.environment != note.environment:
        return f"{via}: a {answer.environment} note for a {note.environment} organization, ignored"
    now = clock.now()
    if answer.nfeio_id and not note.nfeio_id:
        note.nfeio_id = answer.nfeio_id
    for attribute, key in (("flow_status", "flowStatus"), ("flow_message", "flowMessage"), ("number", "number"),
                           ("check_code", "checkCode"), ("access_key", "accessKey")):
        value = getattr(answer, attribute)
        if value or (answer.present and key in answer.present and attribute == "flow_message"):
            setattr(note, attribute, value)
    if note.nfeio_id and not note.pdf_url:
        company_id = changes.company_id(note.organization_id)
        if company_id:
            note.pdf_url = nfeio.file_url(company_id, note.nfeio_id, "pdf")
            note.xml_url = nfeio.file_url(company_id, note.nfeio_id, "xml")
    target = _status_for(answer.flow_status, note.status)
    before = note.status
    note.updated_at = now
    if target and target != before and target in TRANSITIONS[before]:
        note.status = target
        if target in ("issued", "failed", "canceled", "cancel_failed"):
            note.sent_at, note.next_attempt_at = None, None
        if target == "issued":
            note.issued_at, note.error = note.issued_at or now, ""
        elif target == "failed":
            note.error = note.flow_message or "NFe.io could not issue the note"
        elif target == "canceled":
            note.canceled_at = now
        elif target == "cancel_failed":
            note.error = note.flow_message or "NFe.io could not cancel the note"
        if target in EVENT_OF_STATUS:
            changes.emit(note)
        if target == "issued" and note.cancel_requested:
            request_cancel(note=note, changes=changes)
    changes.save(note)
    return f"{via}: {before} -> {note.status} ({note.flow_status or '-'})"


def _status_for(flow_status: str, current: str) -> str | None:
    if flow_status == ISSUED_FLOW:
        return "issued"
    if flow_status == FAILED_FLOW:
        return "failed"
    if flow_status == CANCELED_FLOW:
        return "canceled"
    if flow_status == CANCEL_FAILED_FLOW:
        return "cancel_failed"
    if flow_status == WAITING_CANCEL_FLOW:
        return "cancel_pending"
    if flow_status and current == "pending":
        return "processing"
    return None


def fail(*, note: ServiceInvoice, message: str, changes: Changes) -> None:
    """NFe.io refused the request itself (bad data, key, permission): the note failed, with its message."""
    note.status, note.error, note.sent_at, note.next_attempt_at = "failed", message[:2000], None, None
    note.updated_at = clock.now()
    changes.save(note)
    changes.emit(note)


def request_cancel(*, note: ServiceInvoice, changes: Changes) -> None:
    """Cancel `note` (locked) as soon as possible: an issued note goes to NFe.io, one in flight once it is
    issued, one never sent is settled here."""
    now = clock.now()
    note.updated_at = now
    if note.status in ("issued", "cancel_failed"):
        note.status, note.sent_at, note.next_attempt_at, note.error = "cancel_pending", None, now, ""
    elif note.status in ("pending", "blocked", "failed"):  # nothing valid at NFe.io to cancel
        note.status, note.canceled_at, note.next_attempt_at = "canceled", now, None
        note.flow_message = "canceled before NFe.io issued it"
        changes.emit(note)
    elif note.status == "processing":
        note.cancel_requested = True
    changes.save(note)


def retry(*, note: ServiceInvoice) -> ServiceInvoice:
    """An operator asks again (inside the caller's transaction, `note` locked): a failed note is issued
    anew under a new external id (NFe.io keeps the failed one and refuses its id); a blocked one is
    checked again now; a failed cancellation is sent again."""
    now = clock.now()
    changes = Changes()
    if note.status == "failed":
        note.attempts += 1
        note.external_id = f"{note.public_id}.{note.attempts}"
        note.status, note.nfeio_id, note.flow_status, note.flow_message = "pending", "", "", ""
        note.number = note.check_code = note.access_key = note.pdf_url = note.xml_url = note.error = ""
        note.next_attempt_at, note.sent_at = now, None
    elif note.status == "blocked":
        config = FiscalSettings.objects.filter(organization_id=note.organization_id).first()
        note.blocked_reason = missing_fiscal_data(note.account, config)
        if not note.blocked_reason:
            note.status, note.next_attempt_at = "pending", now
    elif note.status == "cancel_failed":
        request_cancel(note=note, changes=changes)
    else:
        raise ServiceInvoiceNotRetryable(f"a {note.status} service invoice cannot be retried", field="status")
    note.updated_at = now
    changes.save(note)
    changes.write()
    return note


def cancel(*, note: ServiceInvoice) -> ServiceInvoice:
    """The API's cancel (inside the caller's transaction, `note` locked)."""
    if note.status not in ("issued", "cancel_failed", "processing", "pending", "blocked", "failed"):
        raise ServiceInvoiceNotCancelable(f"a {note.status} service invoice cannot be canceled", field="status")
    changes = Changes()
    request_cancel(note=note, changes=changes)
    changes.write()
    return note


def release_blocked(*, notes: list[ServiceInvoice], configs: dict) -> int:
    """Blocked notes whose account (or settings) now has what NFe.io needs become pending. Returns how many."""
    now = clock.now()
    released = []
    for note in notes:
        reason = missing_fiscal_data(note.account, configs.get(note.organization_id))
        if not reason:
            note.status, note.blocked_reason, note.next_attempt_at, note.updated_at = "pending", "", now, now
            released.append(note)
        elif reason != note.blocked_reason:
            note.blocked_reason, note.updated_at = reason, now
            released.append(note)
    update_rows(released, ["status", "blocked_reason", "next_attempt_at", "updated_at"])
    return sum(n.status == "pending" for n in released)


def invoice_extension(invoice) -> dict:
    """The invoice object's `service_invoice` (registered with invoicing in apps.py)."""
    note = ServiceInvoice.objects.filter(invoice_id=invoice.pk, purpose="issue").first()
    if note is None:
        return {}
    return {"service_invoice": {"id": note.public_id, "status": note.status, "number": note.number or None,
                                "verification_code": note.check_code or None, "access_key": note.access_key or None,
                                "pdf_url": note.pdf_url or None, "xml_url": note.xml_url or None}}
