"""GET /v1/analytics/summary, /mrr, /movements and /cohorts: JSON, or CSV with `Accept: text/csv`.

They read the usage snapshots (and the ledger only for the days after the last snapshot): see
`usage/analytics.py`. The definitions are in the OpenAPI description (`usage/mrr.py`)."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from ninja import Query, Router

from cobrador.core.errors import errors
from cobrador.usage import analytics
from cobrador.usage.errors import InvalidRange
from cobrador.usage.schemas import (
    CSV_NOTE,
    PERIOD_NOTE,
    CohortsOut,
    Day,
    Interval,
    MovementPoint,
    MovementSeriesOut,
    MrrPoint,
    MrrSeriesOut,
    SummaryOut,
)
from cobrador.usage.snapshots import CURRENCY, month_start

router = Router(tags=["analytics"])

SUMMARY_DESCRIPTION = (
    "MRR, ARR and paying customers now (today's movements from the ledger), this local month so far and the "
    "last 30 days, with their movements. " + CSV_NOTE)
MRR_DESCRIPTION = (
    "MRR, ARR and paying customers per local day or month (default: the last 30 days, or with "
    "`interval=month` the last 12 months). " + PERIOD_NOTE + " " + CSV_NOTE)
MOVEMENTS_DESCRIPTION = (
    "New, expansion, reactivation, contraction and churn (voluntary and involuntary) per local day or month, "
    "amounts and counts, and over the whole range with its opening and closing MRR: "
    "`mrr_at_start + new + expansion + reactivation - contraction - churn = mrr`, exactly. " + PERIOD_NOTE + " "
    + CSV_NOTE)
COHORTS_DESCRIPTION = (
    "Customers grouped by the local month of their first MRR (`from`..`to` pick the cohort months; default the "
    "last 12), each with its size and its MRR at the end of that month, then at each month of age (as the "
    "usage-monthly-snapshot job consolidated it on day 1 of the next month) the customers still paying (logo "
    "retention) and their MRR (net revenue retention, expansion included). " + CSV_NOTE)
CSV_RESPONSE = {"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}}


def json_response(data: dict) -> HttpResponse:
    """The body as the declared schema says, written straight (two years of daily points: validating
    them through the response schema took most of the request)."""
    return HttpResponse(json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")),
                        content_type="application/json; charset=utf-8")


def wants_csv(request) -> bool:
    return request.get_preferred_type(["application/json", "text/csv"]) == "text/csv"


def csv_response(body: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@router.get("/analytics/summary", response=SummaryOut, summary="MRR, ARR and customers now",
            openapi_extra=CSV_RESPONSE, description=SUMMARY_DESCRIPTION)
def analytics_summary(request):
    data = analytics.summary(request.auth)
    return csv_response(analytics.summary_csv(data), "summary") if wants_csv(request) else data


@router.get("/analytics/mrr", response={200: MrrSeriesOut, **errors(InvalidRange)}, by_alias=True,
            summary="MRR over time", openapi_extra=CSV_RESPONSE, description=MRR_DESCRIPTION)
def analytics_mrr(request, date_from: Day | None = Query(None, alias="from"),
                  date_to: Day | None = Query(None, alias="to"), interval: Interval = "day"):
    first, last = analytics.resolve_range(request.auth, date_from, date_to, interval)
    points = analytics.points(request.auth, first=first, last=last, interval=interval, with_movements=False)
    if wants_csv(request):
        return csv_response(analytics.mrr_csv(points), f"mrr-{interval}-{first}-{last}")
    fields = MrrPoint.model_fields.keys()
    return json_response({"object": "mrr_series", "interval": interval, "from": first, "to": last,
                          "currency": CURRENCY, "points": [{k: p[k] for k in fields} for p in points]})


@router.get("/analytics/movements", response={200: MovementSeriesOut, **errors(InvalidRange)}, by_alias=True,
            summary="MRR movements over time", openapi_extra=CSV_RESPONSE,
            description=MOVEMENTS_DESCRIPTION)
def analytics_movements(request, date_from: Day | None = Query(None, alias="from"),
                        date_to: Day | None = Query(None, alias="to"), interval: Interval = "day"):
    first, last = analytics.resolve_range(request.auth, date_from, date_to, interval)
    points = analytics.points(request.auth, first=first, last=last, interval=interval)
    if wants_csv(request):
        return csv_response(analytics.movements_csv(points), f"movements-{interval}-{first}-{last}")
    fields = MovementPoint.model_fields.keys()
    return json_response({"object": "mrr_movements", "interval": interval, "from": first, "to": last,
                          "currency": CURRENCY, "totals": analytics.totals(points),
                          "points": [{k: p[k] for k in fields} for p in points]})


@router.get("/analytics/cohorts", response={200: CohortsOut, **errors(InvalidRange)}, by_alias=True,
            summary="Customer cohorts by first paid month", openapi_extra=CSV_RESPONSE,
            description=COHORTS_DESCRIPTION)
def analytics_cohorts(request, date_from: Day | None = Query(None, alias="from"),
                      date_to: Day | None = Query(None, alias="to")):
    first, last = analytics.resolve_range(request.auth, date_from, date_to, "month")
    table = analytics.cohorts(request.auth, first, last)
    if wants_csv(request):
        return csv_response(analytics.cohorts_csv(table), f"cohorts-{month_start(first)}-{month_start(last)}")
    return {"from": month_start(first), "to": month_start(last), "currency": CURRENCY, "cohorts": table}
