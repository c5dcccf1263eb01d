"""Money and dates the way each locale writes them. Templates get these as ready-made strings."""

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cobrador.core.money import CURRENCIES, to_decimal

LOCALES = ("pt-BR", "en")
DEFAULT_LOCALE = "pt-BR"

_SYMBOLS = {
    "pt-BR": {"BRL": "R$ ", "USD": "US$ ", "EUR": "€ "},
    "en": {"BRL": "R$", "USD": "$", "EUR": "€"},
}
_MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]


def money(amount: int | None, currency: str, locale: str) -> str:
    """1234567 BRL -> 'R$ 12.345,67' (pt-BR) or 'R$12,345.67' (en)."""
    if amount is None:
        return ""
    currency = (currency or "BRL").upper()
    places = CURRENCIES.get(currency, 2)
    value = to_decimal(abs(int(amount)), currency)
    text = f"{value:,.{places}f}"
    if locale == "pt-BR":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    symbol = _SYMBOLS.get(locale, _SYMBOLS["en"]).get(currency, currency + " ")
    return f"{'-' if int(amount) < 0 else ''}{symbol}{text}"


def _zone(timezone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_moment(value) -> date | datetime | None:
    """A date or datetime from an API object field (ISO text) or a Python value; None if absent or bad."""
    if value is None or value == "":
        return None
    if isinstance(value, (date, datetime)):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def local_date(value, timezone: str | None = None) -> date | None:
    moment = parse_moment(value)
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(_zone(timezone))
        return moment.date()
    return moment


def day(value, locale: str, timezone: str | None = None) -> str:
    """A date as people in the locale write it: '05/03/2026' (pt-BR), 'March 5, 2026' (en)."""
    d = local_date(value, timezone)
    if d is None:
        return ""
    if locale == "pt-BR":
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    return f"{_MONTHS_EN[d.month - 1]} {d.day}, {d.year}"


def card_expiry(exp_month: int | None, exp_year: int | None) -> str:
    if not exp_month or not exp_year:
        return ""
    return f"{int(exp_month):02d}/{int(exp_year)}"
