"""Demo data: the 2023 data-centre GPU shortage as a buyer lived it.

Figures from the project's source article (a copy, so nothing reads ../shared at run time):
normal channel lead time about one month, three months or more during the shortage, April
orders told "maybe December"; A100 average price US$10,000 rising 37.5% in five months, A800
+20%, H100 resold above US$40,000; A10 at US$2,800; a large training run needs 384+ A100s;
a large software company rationed AI hardware to its internal teams with quotas.

The story is written in 2023 (the dates below). Loaded `as_of` a day, every date moves by the
same whole number of years, so the latest delivery or quote lands in the year up to that day
and the story reads as current while its months stay true: quotes still say "pushed to
December", quota periods still run July to December, the PO numbers carry the new year.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from orders import quotas, services
from orders.models import (
    Allocation,
    Delivery,
    DeliveryQuote,
    ExchangeRate,
    GpuModel,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
    Quota,
    Team,
    Vendor,
)
from orders.roles import Role, role_grant

D = date.fromisoformat
# The year the story is written in: the year of its dates and its PO numbers.
STORY_YEAR = 2023

VENDORS = [
    # name, kind, email, website, notes
    (
        "Northwind Servers",
        Vendor.Kind.OEM,
        "orders@northwind.example",
        "https://northwind.example",
        "OEM: builds the HGX servers itself; dates have held best.",
    ),
    (
        "Pacific Silicon Distribution",
        Vendor.Kind.DISTRIBUTOR,
        "sales@pacific-si.example",
        "https://pacific-si.example",
        "Channel distributor; allocation from NVIDIA is quarterly.",
    ),
    (
        "FlipCard GPU Resale",
        Vendor.Kind.RESELLER,
        "deals@flipcard.example",
        "https://flipcard.example",
        "Reseller that stockpiles and re-sells cards: quotes are soft.",
    ),
    (
        "Stratus Cloud",
        Vendor.Kind.CLOUD,
        "capacity@stratus.example",
        "https://stratus.example",
        "Reserved GPU capacity; restricts internal use to its heaviest jobs.",
    ),
]

GPU_MODELS = [
    ("A100 80GB SXM", "Ampere", 80),
    ("A800", "Ampere", 80),
    ("H100 SXM", "Hopper", 80),
    ("A10", "Ampere", 24),
]

USERS = [
    ("alice", "Alice", "Moreau", "alice@gpu-buyers.example"),
    ("bob", "Bob", "Okafor", "bob@gpu-buyers.example"),
    ("carol", "Carol", "Lindqvist", "carol@gpu-buyers.example"),
]


@dataclass
class DemoOrder:
    po_number: str
    vendor: str
    buyer: str
    placed_on: date
    status: str
    lines: list[tuple[str, int, str]]  # GPU model, quantity, unit price
    need_by: date | None = None
    watchers: list[str] = field(default_factory=list)
    # quoted_on, delivery_date, GPU model of the line (None = whole order), note
    quotes: list[tuple[date, date, str | None, str]] = field(default_factory=list)
    # GPU model, quantity, delivered_on
    receipts: list[tuple[str, int, date]] = field(default_factory=list)
    notes: str = ""


ORDERS = [
    DemoOrder(
        "PO-2023-0412",
        "Pacific Silicon Distribution",
        "alice",
        D("2023-04-14"),
        "confirmed",
        [("A100 80GB SXM", 384, "10000.00")],
        need_by=D("2023-09-30"),
        watchers=["carol"],
        quotes=[
            (D("2023-04-14"), D("2023-05-15"), None, "Order confirmed: usual one-month lead."),
            (D("2023-06-02"), D("2023-08-31"), None, "Allocation cut; earliest end of August."),
            (D("2023-07-21"), D("2023-12-15"), None, "Pushed to December."),
        ],
        notes="384 A100s: the low end of what one large-model training run needs.",
    ),
    DemoOrder(
        "PO-2023-0320",
        "Pacific Silicon Distribution",
        "bob",
        D("2023-03-20"),
        "confirmed",
        [("A800", 64, "12000.00")],
        need_by=D("2023-06-01"),
        quotes=[
            (D("2023-03-20"), D("2023-04-20"), None, "One month."),
            (D("2023-04-12"), D("2023-05-31"), None, "Supply tight."),
            (D("2023-05-10"), D("2023-06-19"), None, "Three months after order."),
        ],
    ),
    DemoOrder(
        "PO-2023-0418",
        "FlipCard GPU Resale",
        "alice",
        D("2023-04-18"),
        "placed",
        [("H100 SXM", 16, "41500.00")],
        need_by=D("2023-06-30"),
        watchers=["bob"],
        quotes=[
            (D("2023-04-18"), D("2023-05-19"), None, "In stock, ships in a month."),
            (D("2023-05-15"), D("2023-07-28"), None, "Stock went to another buyer."),
            (D("2023-07-10"), D("2023-09-29"), None, "Half the cards end of September."),
        ],
        receipts=[("H100 SXM", 8, D("2023-10-06"))],
        notes="H100s resold above US$40,000 each on overseas sites at the time.",
    ),
    DemoOrder(
        "PO-2023-0301",
        "Northwind Servers",
        "bob",
        D("2023-03-01"),
        "confirmed",
        [("A10", 40, "2800.00")],
        need_by=D("2023-04-15"),
        quotes=[(D("2023-03-01"), D("2023-03-31"), None, "Standard lead time.")],
        receipts=[("A10", 40, D("2023-03-30"))],
        notes="Inference cards: delivered a day early.",
    ),
    DemoOrder(
        "PO-2023-0405",
        "Northwind Servers",
        "alice",
        D("2023-04-05"),
        "confirmed",
        [("A100 80GB SXM", 128, "13750.00"), ("A10", 32, "2800.00")],
        need_by=D("2023-07-31"),
        watchers=["carol"],
        quotes=[
            (D("2023-04-05"), D("2023-05-08"), None, "Both lines in about a month."),
            (D("2023-04-28"), D("2023-07-14"), "A100 80GB SXM", "A100s split off: mid-July."),
        ],
        receipts=[("A10", 32, D("2023-05-08"))],
        notes="A100 price 37.5% above December's after five months of rises.",
    ),
    DemoOrder(
        "PO-2023-0502",
        "FlipCard GPU Resale",
        "bob",
        D("2023-05-02"),
        "cancelled",
        [("H100 SXM", 8, "43000.00")],
        quotes=[
            (D("2023-05-02"), D("2023-06-02"), None, "Ships in a month."),
            (D("2023-06-20"), D("2023-10-31"), None, "End of October at best."),
        ],
        notes="Cancelled: the reseller's dates kept moving.",
    ),
    DemoOrder(
        "PO-2023-0510",
        "Pacific Silicon Distribution",
        "bob",
        D("2023-05-10"),
        "draft",
        [("A800", 32, "14400.00")],
        notes="A800 up 20% in five months; waiting for budget approval.",
    ),
]


# vendor, GPU model, quoted_on, unit price (USD), note. With what the orders were charged, the
# A100 rises 37.5% in five months at the OEM and the A800 20.0% at the distributor.
PRICES = [
    ("Northwind Servers", "A100 80GB SXM", D("2022-11-07"), "10000.00", "Average selling price."),
    ("Northwind Servers", "A100 80GB SXM", D("2023-01-09"), "11000.00", "First rise."),
    ("Northwind Servers", "A100 80GB SXM", D("2023-02-13"), "12100.00", ""),
    ("Northwind Servers", "A100 80GB SXM", D("2023-03-06"), "13000.00", ""),
    ("Northwind Servers", "A100 80GB SXM", D("2023-04-20"), "13750.00", "+37.5% in 5 months."),
    ("Pacific Silicon Distribution", "A800", D("2022-11-21"), "12000.00", ""),
    ("Pacific Silicon Distribution", "A800", D("2023-02-20"), "13200.00", ""),
    ("Pacific Silicon Distribution", "A800", D("2023-04-17"), "14400.00", "+20% in 5 months."),
    ("FlipCard GPU Resale", "H100 SXM", D("2023-04-12"), "40500.00", "Resale above US$40,000."),
    ("Northwind Servers", "A10", D("2023-01-09"), "2800.00", "Inference card, steady."),
    ("Northwind Servers", "A10", D("2023-04-03"), "2800.00", ""),
]
# An illustrative rate, so a EUR order can be totalled in the reporting currency.
EXCHANGE_RATES = [("EUR", "USD", "1.08700000", D("2023-04-01"))]

# Rationing. Team, lead, members.
TEAMS = [
    ("LLM pre-training", "carol", ["carol", "alice"]),
    ("Inference", "bob", ["bob"]),
]
# Team, GPU model, period start, period end, GPUs: one training run's 384 A100s for 2023-H2;
# inference cards for 2023-H1.
QUOTAS = [
    ("LLM pre-training", "A100 80GB SXM", D("2023-07-01"), D("2023-12-31"), 384),
    ("Inference", "A10", D("2023-01-01"), D("2023-06-30"), 96),
]
# Team, GPU model, period start (which quota), PO number, GPUs, priority. PO-2023-0405's A100
# line keeps 32 free, so the 288 waiting for December on PO-2023-0412 can partly move there.
ALLOCATIONS = [
    ("LLM pre-training", "A100 80GB SXM", D("2023-07-01"), "PO-2023-0412", 288, 1),
    ("LLM pre-training", "A100 80GB SXM", D("2023-07-01"), "PO-2023-0405", 96, 1),
    ("Inference", "A10", D("2023-01-01"), "PO-2023-0301", 40, 1),
    ("Inference", "A10", D("2023-01-01"), "PO-2023-0405", 32, 1),
]


@dataclass
class DemoSummary:
    created: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, created: bool) -> None:
        self.created[kind] = self.created.get(kind, 0) + int(created)

    @property
    def total(self) -> int:
        return sum(self.created.values())

    def __str__(self) -> str:
        """ "1 vendor, 7 orders, 3 deliveries": what was created, each noun in the number
        it takes (kinds are recorded in the plural)."""
        return ", ".join(f"{n} {_noun(kind, n)}" for kind, n in self.created.items() if n)


def _noun(plural: str, n: int) -> str:
    if n == 1:
        return plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")
    return plural


def _later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return day.replace(year=day.year + years, day=28)


def _po_number(po_number: str, years: int) -> str:
    """PO-2023-0412 three years later is PO-2026-0412."""
    prefix, year, rest = po_number.split("-", 2)
    return f"{prefix}-{int(year) + years}-{rest}"


def _order_later(spec: DemoOrder, years: int) -> DemoOrder:
    return replace(
        spec,
        po_number=_po_number(spec.po_number, years),
        placed_on=_later(spec.placed_on, years),
        need_by=spec.need_by and _later(spec.need_by, years),
        quotes=[(_later(q, years), _later(d, years), gpu, n) for q, d, gpu, n in spec.quotes],
        receipts=[(gpu, n, _later(on, years)) for gpu, n, on in spec.receipts],
    )


def latest_event() -> date:
    """The story's last day with something in it: a quote, a delivery or a price."""
    return max(
        [q[0] for spec in ORDERS for q in spec.quotes]
        + [r[2] for spec in ORDERS for r in spec.receipts]
        + [p[2] for p in PRICES]
    )


def years_later(as_of: date) -> int:
    """How many years the story moves when loaded on `as_of`: the demo orders already in the
    database keep theirs; else as many as put its latest event in the year up to `as_of`."""
    first = ORDERS[0].po_number
    loaded = PurchaseOrder.objects.filter(
        po_number__in=[_po_number(first, n) for n in range(as_of.year - STORY_YEAR + 1)]
    ).values_list("po_number", flat=True)
    if loaded:
        return max(int(po.split("-")[1]) for po in loaded) - STORY_YEAR
    last = latest_event()
    years = as_of.year - last.year
    return years if _later(last, years) <= as_of else years - 1


@transaction.atomic
def load_demo(*, as_of: date | None = None) -> DemoSummary:
    """Create whatever of the demo data is missing; running it again creates nothing.

    `as_of` (the command passes today) moves every date by `years_later(as_of)` years; None
    loads the story as written, in 2023, the dates the README's examples quote.
    """
    years = 0 if as_of is None else years_later(as_of)
    summary = DemoSummary()
    vendors = {}
    for name, kind, email, website, notes in VENDORS:
        vendors[name], created = Vendor.objects.get_or_create(
            name=name,
            defaults={"kind": kind, "contact_email": email, "website": website, "notes": notes},
        )
        summary.add("vendors", created)
    gpus = {}
    for name, family, memory_gb in GPU_MODELS:
        gpus[name], created = GpuModel.objects.get_or_create(
            name=name, defaults={"family": family, "memory_gb": memory_gb}
        )
        summary.add("GPU models", created)
    users = {}
    user_model = get_user_model()
    for username, first, last, email in USERS:
        user = user_model.objects.filter(username=username).first()
        summary.add("users", user is None)
        if user is None:
            user = user_model(username=username, first_name=first, last_name=last, email=email)
            user.set_unusable_password()  # buyers receive alerts; they log in once given one
            user.save()
            role_grant(user=user, role=Role.BUYER)
        users[username] = user
    requoted: set[int] = set()
    for spec in ORDERS:
        _load_order(_order_later(spec, years), vendors, gpus, users, summary, requoted)
    services.orders_check_after_commit(order_ids=requoted)
    _load_prices(vendors, gpus, summary, years)
    _load_quotas(gpus, users, summary, years)
    return summary


def _load_quotas(gpus: dict[str, GpuModel], users: dict, summary: DemoSummary, years: int) -> None:
    teams = {}
    for name, lead, members in TEAMS:
        teams[name], created = Team.objects.get_or_create(name=name, defaults={"lead": users[lead]})
        if created:
            teams[name].full_clean()
            teams[name].members.set([users[m] for m in members])
        summary.add("teams", created)
    by_period = {}
    for team, gpu_name, start, end, number in QUOTAS:
        start, end = _later(start, years), _later(end, years)
        quota = Quota.objects.filter(
            team=teams[team], gpu_model=gpus[gpu_name], period_start=start
        ).first()
        summary.add("quotas", quota is None)
        if quota is None:
            quota = quotas.quota_save(
                quota=Quota(
                    team=teams[team],
                    gpu_model=gpus[gpu_name],
                    period_start=start,
                    period_end=end,
                    gpus=number,
                )
            )
        by_period[(team, gpu_name, start)] = quota
    for team, gpu_name, start, po_number, number, priority in ALLOCATIONS:
        quota = by_period[(team, gpu_name, _later(start, years))]
        line = OrderLine.objects.get(
            order__po_number=_po_number(po_number, years), gpu_model=gpus[gpu_name]
        )
        exists = Allocation.objects.filter(quota=quota, line=line).exists()
        if not exists:
            quotas.allocation_set(quota=quota, line=line, gpus=number, priority=priority)
        summary.add("allocations", not exists)


def _load_prices(
    vendors: dict[str, Vendor], gpus: dict[str, GpuModel], summary: DemoSummary, years: int
) -> None:
    added = False
    for vendor, gpu_name, quoted_on, price, note in PRICES:
        quoted_on = _later(quoted_on, years)
        exists = PriceQuote.objects.filter(
            vendor=vendors[vendor],
            gpu_model=gpus[gpu_name],
            quoted_on=quoted_on,
            unit_price=Decimal(price),
            currency="USD",
        ).exists()
        if not exists:
            services.price_quote_add(
                vendor=vendors[vendor],
                gpu_model=gpus[gpu_name],
                unit_price=Decimal(price),
                quoted_on=quoted_on,
                note=note,
                check=False,
            )
            added = True
        summary.add("price quotes", not exists)
    for currency, to_currency, rate, valid_on in EXCHANGE_RATES:
        valid_on = _later(valid_on, years)
        _, created = ExchangeRate.objects.get_or_create(
            currency=currency,
            to_currency=to_currency,
            valid_on=valid_on,
            defaults={"rate": Decimal(rate)},
        )
        summary.add("exchange rates", created)
    if added:
        services.prices_check_after_commit()


def _load_order(
    spec: DemoOrder,
    vendors: dict[str, Vendor],
    gpus: dict[str, GpuModel],
    users: dict,
    summary: DemoSummary,
    requoted: set[int],
) -> None:
    order, created = PurchaseOrder.objects.get_or_create(
        po_number=spec.po_number,
        defaults={
            "vendor": vendors[spec.vendor],
            "buyer": users[spec.buyer],
            "placed_on": spec.placed_on,
            "need_by": spec.need_by,
            "status": spec.status,
            "currency": "USD",
            "notes": spec.notes,
        },
    )
    summary.add("orders", created)
    if created:
        order.full_clean()
        order.watchers.set([users[w] for w in spec.watchers])
    lines = {}
    for gpu_name, quantity, price in spec.lines:
        lines[gpu_name], created = OrderLine.objects.get_or_create(
            order=order,
            gpu_model=gpus[gpu_name],
            defaults={"quantity": quantity, "unit_price": Decimal(price)},
        )
        summary.add("order lines", created)
    for quoted_on, delivery_date, gpu_name, note in spec.quotes:
        line = lines[gpu_name] if gpu_name else None
        exists = DeliveryQuote.objects.filter(
            order=order, line=line, quoted_on=quoted_on, delivery_date=delivery_date
        ).exists()
        if not exists:
            services.quote_add(
                order=order,
                line=line,
                quoted_on=quoted_on,
                delivery_date=delivery_date,
                note=note,
                source="demo",
                check=False,
            )
            requoted.add(order.pk)
        summary.add("delivery quotes", not exists)
    for gpu_name, quantity, delivered_on in spec.receipts:
        line = lines[gpu_name]
        exists = Delivery.objects.filter(
            line=line, quantity=quantity, delivered_on=delivered_on
        ).exists()
        if not exists:
            services.delivery_record(line=line, quantity=quantity, delivered_on=delivered_on)
        summary.add("deliveries", not exists)
