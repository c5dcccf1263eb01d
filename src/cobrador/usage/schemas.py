"""The /v1/analytics/{summary,mrr,movements,cohorts} shapes. Amounts are integer centavos (BRL)."""

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from cobrador.usage.mrr import DEFINITIONS_DOC

Interval = Literal["day", "month"]


def _iso_date(value):
    # Only an ISO 8601 calendar date string (pydantic would also take numbers as Unix time).
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "an ISO 8601 date (YYYY-MM-DD) is required")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_type", "an ISO 8601 date (YYYY-MM-DD) is required") from None


Day = Annotated[date, BeforeValidator(_iso_date), Field(strict=False)]

CSV_NOTE = ("Send `Accept: text/csv` for the same figures as CSV (one header row, comma-separated, amounts in "
            "centavos, dates as YYYY-MM-DD, an empty cell for null).")
PERIOD_NOTE = (
    "`from` and `to` are local dates (YYYY-MM-DD, in the organization's time zone, between 2000-01-01 and "
    "2100-12-31), both included. Every figure up to the last day the usage-daily-snapshot job stored comes "
    "from the snapshots; later days (today, so far) are computed from the MRR ledger and carry `partial: true`. "
    "Days before the organization's data and after today have no point.")


class MovementFigures(Schema):
    new: int
    expansion: int
    reactivation: int
    contraction: int
    churn: int
    churn_voluntary: int
    churn_involuntary: int
    net_change: int = Field(description="new + expansion + reactivation - contraction - churn")
    new_count: int
    expansion_count: int
    contraction_count: int
    churn_count: int
    reactivation_count: int


class RangeTotals(MovementFigures):
    mrr_at_start: int
    mrr: int = Field(description="at the end; mrr_at_start + net_change, exactly")


class MrrPoint(Schema):
    period: date = Field(description="the local day, or the first day of the local month")
    mrr_at_start: int
    mrr: int = Field(description="MRR at the end of the period (or now, for a partial period)")
    arr: int = Field(description="12 x mrr")
    active_customers: int = Field(description="customers with MRR above 0 at the end of the period")
    net_change: int
    partial: bool


class _SeriesOut(Schema):
    """What every series answer starts with: its object name, interval, range and currency."""

    model_config = ConfigDict(populate_by_name=True)
    object: str
    interval: Interval
    from_: date = Field(alias="from")
    to: date
    currency: str


class MrrSeriesOut(_SeriesOut):
    object: str = "mrr_series"
    points: list[MrrPoint]


class MovementPoint(MovementFigures):
    period: date
    partial: bool


class MovementSeriesOut(_SeriesOut):
    object: str = "mrr_movements"
    totals: RangeTotals
    points: list[MovementPoint]


class MonthTotals(RangeTotals):
    period: date


class SummaryOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": DEFINITIONS_DOC})
    object: str = "analytics_summary"
    as_of: datetime
    today: date = Field(description="the organization's local date now")
    currency: str
    timezone: str
    mrr: int
    arr: int
    active_customers: int
    arpa: int | None = Field(description="MRR per paying customer (rounded), null with none")
    month: MonthTotals = Field(description="this local month so far")
    last_30_days: RangeTotals = Field(description="the last 30 local days, today included")
    month_mrr_churn_rate: float | None = Field(description="this month's churned MRR / its MRR at start; "
                                                           "null when it started at 0")
    month_net_mrr_growth_rate: float | None


class CohortAge(Schema):
    age_months: int
    month: date
    active_customers: int
    mrr: int
    logo_retention: float | None = Field(description="active_customers / customers; null for an empty cohort")
    net_revenue_retention: float | None = Field(description="mrr / starting_mrr; null when it is 0")


class Cohort(Schema):
    cohort_month: date = Field(description="the local month of the customers' first MRR")
    customers: int
    starting_mrr: int = Field(description="the cohort's MRR at the end of its first month")
    ages: list[CohortAge]


class CohortsOut(Schema):
    model_config = ConfigDict(populate_by_name=True)
    object: str = "cohorts"
    from_: date = Field(alias="from")
    to: date
    currency: str
    cohorts: list[Cohort]
