"""The demo organization's catalog and its customers: who they are and how they behave, drawn from a seed.

Nothing here touches the database. `build_customers` returns one `Customer` per account: the featured
stories first (fixed behaviour, so a delinquent account, a boleto payer, a trial and a declined card
can be followed through the timeline), then the crowd, each drawn from its own random stream
(`random.Random(f"{seed}:{index}")`), so adding accounts never changes the ones before them.

The crowd is a realistic mix: customers imported on day 0 whose next billing date falls somewhere in
the first four weeks, and new sign-ups spread over the first weeks (Pro sign-ups start with the
plan's 14-day trial, some without a payment method); cards that work, decline or are reported
stolen, boleto and PIX payers who pay a few days after issue (or not at all), coupons, commitments
renewing automatically or only when the customer confirms, cards expiring within the window,
scheduled and immediate cancellations.
"""

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cobrador.customers.documents import cnpj_check_digits, cpf_check_digits

# --- the catalog ---------------------------------------------------------------------------------------

PLANS = {
    "basic": {"name": "Básico mensal", "amount": 4990, "interval": "month", "interval_count": 1, "trial_days": 0},
    "pro": {"name": "Pro mensal", "amount": 14990, "interval": "month", "interval_count": 1, "trial_days": 14},
    "team": {"name": "Equipe mensal (por usuário)", "amount": 3990, "interval": "month", "interval_count": 1,
             "trial_days": 0},
    "pro_yearly": {"name": "Pro anual", "amount": 149900, "interval": "year", "interval_count": 1,
                   "trial_days": 0},
}

COUPONS = [
    {"code": "BEMVINDO10", "name": "10% off the first invoice", "percent_off": 10.0, "duration": "once"},
    {"code": "LANCAMENTO20", "name": "20% off for 3 months", "percent_off": 20.0, "duration": "repeating",
     "duration_in_periods": 3},
    {"code": "PARCEIRO15", "name": "15% off, partners, forever", "percent_off": 15.0, "duration": "forever"},
]

# The default policy (retries after 1, 2, 3, 5 and 7 days, grace 30 days): the grace period runs from the
# first failed charge, so a monthly customer whose card keeps failing is suspended about a month later even
# though the next month's invoice joins the case with fresh retries.
DUNNING_POLICY = {"grace_period_days": 30}

CARD_TOKENS = {
    "ok": "tok_sandbox_success",
    "declined": "tok_sandbox_decline",
    "insufficient_funds": "tok_sandbox_insufficient_funds",
    "stolen": "tok_sandbox_stolen",
}

# --- people and companies ------------------------------------------------------------------------------

FIRST_NAMES = ["Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Heitor", "Isabela", "João",
               "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Thiago", "Vitória", "Wagner"]
SURNAMES = ["Silva", "Souza", "Oliveira", "Santos", "Pereira", "Lima", "Carvalho", "Ferreira", "Almeida", "Costa",
            "Ribeiro", "Gomes", "Martins", "Araújo", "Barbosa", "Rocha", "Dias", "Teixeira", "Moreira", "Cardoso"]
BUSINESS_KINDS = ["Padaria", "Oficina", "Estúdio", "Clínica", "Livraria", "Agência", "Academia", "Consultoria",
                  "Escola", "Pet Shop", "Restaurante", "Mercearia", "Floricultura", "Ótica", "Papelaria"]
BUSINESS_NAMES = ["Aurora", "Boa Vista", "Central", "Estrela", "Horizonte", "Jardim", "Lótus", "Mar Azul",
                  "Nova Era", "Ponto Certo", "Primavera", "Sol Nascente", "Vale Verde", "Veloz", "Bom Gosto"]
CITIES = [("São Paulo", "SP", "01"), ("Rio de Janeiro", "RJ", "20"), ("Belo Horizonte", "MG", "30"),
          ("Curitiba", "PR", "80"), ("Porto Alegre", "RS", "90"), ("Recife", "PE", "50"), ("Salvador", "BA", "40"),
          ("Campinas", "SP", "13"), ("Florianópolis", "SC", "88"), ("Fortaleza", "CE", "60")]
# The IBGE code of each city (an NFS-e needs the borrower's).
CITY_CODES = {"São Paulo": "3550308", "Rio de Janeiro": "3304557", "Belo Horizonte": "3106200", "Curitiba": "4106902",
              "Porto Alegre": "4314902", "Recife": "2611606", "Salvador": "2927408", "Campinas": "3509502",
              "Florianópolis": "4205407", "Fortaleza": "2304400"}
STREETS = ["Rua das Flores", "Avenida Brasil", "Rua XV de Novembro", "Rua da Consolação", "Avenida Paulista",
           "Rua Augusta", "Rua do Comércio", "Avenida Atlântica"]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def random_cpf(rng: random.Random) -> str:
    while True:
        first_nine = "".join(str(rng.randrange(10)) for _ in range(9))
        if len(set(first_nine)) > 1:
            return first_nine + cpf_check_digits(first_nine)


def random_cnpj(rng: random.Random) -> str:
    first_twelve = "".join(str(rng.randrange(10)) for _ in range(8)) + "0001"
    return first_twelve + cnpj_check_digits(first_twelve)


def random_address(rng: random.Random) -> dict:
    city, state, cep_prefix = rng.choice(CITIES)
    return {"street": rng.choice(STREETS), "number": str(rng.randrange(10, 3000)), "city": city, "state": state,
            "zipcode": cep_prefix + "".join(str(rng.randrange(10)) for _ in range(6)), "country": "BR",
            "city_code": CITY_CODES[city]}


# --- customers -----------------------------------------------------------------------------------------


@dataclass
class Customer:
    """One billing account of the demo organization and the behaviour the simulation plays for it.

    Times are offsets from the simulation's start. Reactions (`on_*`) are decided when the event that
    triggers them happens, with delays drawn then from the customer's own random stream."""

    index: int
    story: str  # "" for the crowd, else the key of a featured story
    title: str  # one line saying what this customer does
    name: str
    email: str
    document: str
    locale: str
    address: dict
    joins_at: timedelta  # when the account is created (through the API)
    plan: str  # key of PLANS
    quantity: int = 1
    starts_at: timedelta | None = None  # imported customers: the next billing date; None: at sign-up
    trial: bool = False  # take the plan's trial
    pays_with: str | None = "card"  # card | bank_slip | pix | None (no method at sign-up: a trial without card)
    card: str = "ok"  # key of CARD_TOKENS
    card_expires: tuple[int, int] | None = None  # (month, year) for a card expiring within the window
    coupon: str | None = None
    commitment_months: int = 0
    renewal_mode: str = "auto"
    # Behaviour (days after the triggering moment; None: never)
    adds_card_before_trial_end: float | None = None
    confirms_renewal_after: float | None = None
    cancels_at: timedelta | None = None
    cancels_immediately: bool = False
    pays_documents_after: tuple[float, float] | None = None  # (min, max) days after a boleto/PIX is issued
    new_card_after_decline: float | None = None
    pays_after_suspension: float | None = None
    replaces_expiring_card_after: float | None = None
    # Billing at the moment it happens (days after joining): a mid-period upgrade with proration, and a
    # one-off invoice (a setup or consulting fee) charged at once or sent.
    upgrades_after: float | None = None
    one_off_after: float | None = None
    one_off_sent: bool = False
    rng: random.Random = field(default_factory=random.Random, repr=False)
    account_id: str = ""  # the ba_ id, once the account exists

    @property
    def label(self) -> str:
        return f"{self.name} ({self.title})"


def _person(rng: random.Random, index: int, company: bool) -> tuple[str, str, str]:
    if company:
        name = f"{rng.choice(BUSINESS_KINDS)} {rng.choice(BUSINESS_NAMES)} Ltda"
        document = random_cnpj(rng)
    else:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        document = random_cpf(rng)
    email = f"{_slug(name)[:30]}.{index}@clientes.example"
    return name, email, document


def _story_customers(seed: int, start: datetime) -> list[Customer]:
    def make(index, story, title, name, company, minutes, **fields) -> Customer:
        rng = random.Random(f"{seed}:{index}")
        document = random_cnpj(rng) if company else random_cpf(rng)
        return Customer(index=index, story=story, title=title, name=name,
                        email=f"{_slug(name)[:30]}.{index}@clientes.example", document=document, locale="pt-BR",
                        address=random_address(rng), joins_at=timedelta(minutes=minutes), rng=rng, **fields)

    expiring = _month_after(start, 0 if start.day <= 15 else 1)
    return [
        make(0, "suspended", "card declines, ignores dunning, is suspended, then pays by PIX",
             "Padaria Pão Quente Ltda", True, 10, plan="basic", card="insufficient_funds", pays_after_suspension=3),
        make(1, "boleto", "pays every boleto two days after it is issued", "Oficina Mecânica Veloz Ltda", True, 14,
             plan="team", quantity=8, pays_with="bank_slip", pays_documents_after=(2, 2)),
        make(2, "trial", "Pro trial without a card, adds one three days before it ends", "Marina Duarte", False, 18,
             plan="pro", trial=True, pays_with=None, adds_card_before_trial_end=3),
        make(3, "new_card", "card declines, adds a new card two days later", "Livraria Sebo Antigo Ltda", True, 22,
             plan="pro", card="declined", coupon="BEMVINDO10", new_card_after_decline=2),
        make(4, "prompt", "1-month term renewed only on confirmation; confirms two days after the prompt",
             "Clínica Sorriso Ltda", True, 26, plan="basic", commitment_months=1, renewal_mode="prompt",
             confirms_renewal_after=2),
        make(5, "expiring_card", "card expires this month; replaces it two days after the alert",
             "Agência Criativa Nuvem Ltda", True, 30, plan="pro", card_expires=expiring,
             replaces_expiring_card_after=2),
        make(6, "pix", "pays every PIX a few hours after it is issued", "Rodrigo Almeida", False, 34, plan="basic",
             pays_with="pix", pays_documents_after=(0.1, 0.2)),
        make(7, "stolen", "card reported stolen; pays the dunning boleto the next day", "Bruna Cardoso", False, 38,
             plan="pro", card="stolen", pays_documents_after=(1, 1)),
        make(8, "cancels", "cancels on day 10, at the end of the period", "Escola Horizonte Ltda", True, 42,
             plan="team", quantity=3, coupon="LANCAMENTO20", cancels_at=timedelta(days=10, hours=15)),
        make(9, "paused", "Pro trial without a card, never adds one: paused when the trial ends", "Tiago Moreira",
             False, 46, plan="pro", trial=True, pays_with=None),
    ]


def _month_after(moment: datetime, months: int) -> tuple[int, int]:
    month_start = moment.replace(day=1)
    for _ in range(months):
        month_start = (month_start + timedelta(days=32)).replace(day=1)
    return month_start.month, month_start.year


def _crowd_customer(seed: int, index: int, days: int, start: datetime) -> Customer:
    rng = random.Random(f"{seed}:{index}")
    company = rng.random() < 0.45
    name, email, document = _person(rng, index, company)
    plan = rng.choices(["basic", "pro", "team", "pro_yearly"], weights=[40, 32, 16, 12])[0]
    quantity = rng.randint(2, 15) if plan == "team" else 1
    customer = Customer(index=index, story="", title="", name=name, email=email, document=document,
                        locale="en" if rng.random() < 0.08 else "pt-BR", address=random_address(rng),
                        joins_at=timedelta(0), plan=plan, quantity=quantity, rng=rng)

    signup_window = max(1, min(28, days // 2))
    if rng.random() < 0.65:  # imported on day 0, all at once; billing continues from its next billing date
        customer.joins_at = timedelta(minutes=50)
        customer.starts_at = timedelta(days=rng.randrange(0, 28), minutes=rng.randint(0, 59))
    else:  # a new sign-up, in the customer's daytime (11:00-23:00 UTC is 08:00-20:00 in Brasília)
        customer.joins_at = timedelta(days=rng.randrange(0, signup_window), hours=rng.randint(11, 22),
                                      minutes=rng.randint(0, 59))
        customer.trial = plan == "pro" and rng.random() < 0.8

    customer.pays_with = rng.choices(["card", "bank_slip", "pix"], weights=[70, 18, 12])[0]
    if customer.pays_with == "card":
        customer.card = rng.choices(["ok", "insufficient_funds", "declined", "stolen"], weights=[88, 6, 4, 2])[0]
        if rng.random() < 0.06:
            # expires at the end of this month, the next or the one after: alerted within the window
            customer.card_expires = _month_after(start, rng.randint(0, 2))
            customer.replaces_expiring_card_after = rng.uniform(1, 6) if rng.random() < 0.7 else None
    if customer.trial and rng.random() < 0.3:
        customer.pays_with = None
        if rng.random() < 0.6:
            customer.adds_card_before_trial_end = rng.uniform(1, 10)

    if customer.pays_with in ("bank_slip", "pix"):
        if rng.random() < 0.88:
            customer.pays_documents_after = (0.05, 1.0) if customer.pays_with == "pix" else (1, 3)
    elif customer.card != "ok":
        customer.title = f"card {customer.card.replace('_', ' ')}"
        reaction = rng.choices(["new_card", "document", "ignore"], weights=[40, 35, 25])[0]
        if reaction == "new_card":
            customer.new_card_after_decline = rng.uniform(1, 4)
        elif reaction == "document":
            customer.pays_documents_after = (0.5, 2)
        else:
            customer.pays_after_suspension = rng.uniform(2, 8) if rng.random() < 0.6 else None

    if rng.random() < 0.22:
        customer.coupon = rng.choices([c["code"] for c in COUPONS], weights=[40, 35, 25])[0]
    if plan != "pro_yearly" and rng.random() < 0.15:
        if rng.random() < 0.5:
            customer.commitment_months, customer.renewal_mode = 3, "auto"
        else:
            customer.commitment_months, customer.renewal_mode = rng.choice([1, 2]), "prompt"
            customer.confirms_renewal_after = rng.uniform(1, 10) if rng.random() < 0.65 else None
    roll = rng.random()
    if roll < 0.08:
        customer.cancels_at = timedelta(days=rng.uniform(3, max(4, days - 5)))
    elif roll < 0.10:
        customer.cancels_at, customer.cancels_immediately = timedelta(days=rng.uniform(3, max(4, days - 5))), True
    if not customer.title:
        customer.title = {"card": "card", "bank_slip": "boleto", "pix": "PIX", None: "trial without card"}[
            customer.pays_with]
    return customer


# A one-off line: (description, amount, NFS-e service code).
ONE_OFF_FEES = [("Implantação e configuração", 49900, "01.07"), ("Treinamento da equipe (4 h)", 60000, "08.02"),
                ("Consultoria de integração", 120000, "01.06")]


def _bills_at_once(customer: Customer, seed: int, days: int) -> None:
    """Some crowd customers upgrade mid-period with proration, some get a one-off invoice. Drawn from a
    stream of their own, so the draws before these (every other behaviour) stay as they were."""
    rng = random.Random(f"{seed}:{customer.index}:billing")
    window = max(1.0, min(25.0, days * 0.6))
    if customer.plan in ("basic", "team") and customer.pays_with is not None and rng.random() < 0.12:
        customer.upgrades_after = rng.uniform(2, window)
    if rng.random() < 0.08:
        customer.one_off_after = rng.uniform(0.1, window)
        customer.one_off_sent = customer.pays_with != "card" or rng.random() < 0.3


def build_customers(*, accounts: int, days: int, seed: int, start: datetime) -> list[Customer]:
    stories = _story_customers(seed, start)[:accounts]
    crowd = [_crowd_customer(seed, index, days, start) for index in range(len(stories), accounts)]
    for customer in crowd:
        _bills_at_once(customer, seed, days)
    return stories + crowd
