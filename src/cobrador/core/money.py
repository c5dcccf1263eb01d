"""Money is an integer amount of minor units plus an ISO 4217 code. Rounding happens once, half-up."""

from decimal import ROUND_HALF_UP, Decimal

DEFAULT_CURRENCY = "BRL"
CURRENCIES = {"BRL": 2, "USD": 2, "EUR": 2}


def round_half_up(value: Decimal | int | float) -> int:
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(amount: int, percent: Decimal | int | float) -> int:
    """`percent`% of `amount` minor units, rounded half-up to a whole minor unit."""
    return round_half_up(Decimal(amount) * Decimal(str(percent)) / Decimal(100))


def to_decimal(amount: int, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """Minor units as a decimal in major units (for providers that take reais, e.g. 12.34)."""
    return Decimal(amount).scaleb(-CURRENCIES.get(currency, 2))


def from_decimal(value: Decimal | str | float, currency: str = DEFAULT_CURRENCY) -> int:
    return round_half_up(Decimal(str(value)).scaleb(CURRENCIES.get(currency, 2)))


def format_money(amount: int, currency: str = DEFAULT_CURRENCY) -> str:
    value = to_decimal(amount, currency)
    return f"{currency} {value:,.2f}"
