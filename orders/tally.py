"""Keyed tallies: counters under a key that every order adds to, kept exact by difference.

A `KeyedTally` pairs a tally model (key columns and one count column, unique on the keys)
with a per-order model that records what each order added last (`order`, `counts`: JSON
rows [*key, n], sorted). A change to some orders is applied as the difference between their
counts now and what they added: exact, in the transaction of the write, and repairable (what
each order added is there to sum). The lead-time tally (orders.schedules) and the order
tally (orders.order_tally) are two of them; the vendor scorecards' tally has
several counts per key and its own record (orders.vendor_tally).

Callers lock what they change first: the orders' rows, so that two writers of one order
apply their differences one after the other, never both from the same base.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction

from orders import bulk
from orders.bulk import chunks

Key = tuple[Any, ...]
# (order pk, its counts now, what it added to the tally before)
Change = tuple[int, Counter[Key], Counter[Key]]


def _as_is(values: Sequence[Any]) -> Key:
    return tuple(values)


@dataclass(frozen=True)
class KeyedTally:
    """`model` (columns `keys` and `count`) summed from what each order added (`added`)."""

    model: type[models.Model]
    keys: tuple[str, ...]
    count: str
    added: type[models.Model]
    # A key from stored values (a JSON row's or a tally row's); `encode` the reverse, for
    # JSON (a date as ISO text).
    decode: Callable[[Sequence[Any]], Key] = _as_is
    encode: Callable[[Key], list[Any]] = list

    def counter(self, rows: Iterable[Sequence[Any]]) -> Counter[Key]:
        """The counts of stored JSON rows [*key, n]."""
        return Counter({self.decode(row[:-1]): row[-1] for row in rows})

    def rows(self, counts: Counter[Key]) -> list[list[Any]]:
        """The JSON rows that record these counts: [*key, n], sorted, zeros left out."""
        return [[*self.encode(key), n] for key, n in sorted(counts.items()) if n]

    def added_by(self, order_ids: Sequence[int]) -> dict[int, Counter[Key]]:
        """What these orders last added to the tally (orders that added nothing: absent)."""
        return {
            order_id: self.counter(rows)
            for order_id, rows in self.added.objects.filter(order_id__in=order_ids).values_list(
                "order_id", "counts"
            )
        }

    def changes(self, counts: dict[int, Counter[Key]]) -> list[Change]:
        """(order, counts now, added before) for the orders whose counts differ from what
        they added. One query."""
        added = self.added_by(list(counts))
        return [
            (order_id, now, added.get(order_id, Counter()))
            for order_id, now in counts.items()
            if +now != +added.get(order_id, Counter())
        ]

    def add(self, delta: Counter[Key]) -> None:
        """Add these counts (negative ones subtract) to the tally, in one statement."""
        bulk.add_counts(
            self.model,
            keys=self.keys,
            counts=(self.count,),
            rows=[(*self.encode(key), n) for key, n in delta.items() if n],
        )

    def write(self, changes: Sequence[Change]) -> int:
        """Apply these changes: their difference to the tally, their counts to the orders'
        records (two statements). Returns how many orders changed."""
        if not changes:
            return 0
        delta: Counter[Key] = Counter()
        for _, now, before in changes:
            delta.update(now)
            delta.subtract(before)
        self.add(delta)
        bulk.upsert(
            self.added,
            keys=("order",),
            values=("counts",),
            rows=[(order_id, self.rows(now)) for order_id, now, _ in changes],
        )
        return len(changes)

    def refresh(self, counts: dict[int, Counter[Key]]) -> int:
        """Bring these orders' part of the tally to `counts`, their counts now."""
        return self.write(self.changes(counts))

    def forget(self, order_ids: Iterable[int], *, chunk_size: int = 2000) -> None:
        """Take these orders out of the tally (they are being deleted)."""
        with transaction.atomic():
            for chunk in chunks(sorted(set(order_ids)), chunk_size):
                delta: Counter[Key] = Counter()
                for counts in self.added_by(chunk).values():
                    delta.subtract(counts)
                self.add(delta)
                # The records go: no need to write them empty first.
                self.added.objects.filter(order_id__in=chunk).delete()

    def drift(self, *, fix: bool, chunk_size: int = 2000) -> int:
        """Counters that are not the sum of what every order added; with fix=True they are set
        to it. Reads every order's record."""
        expected: Counter[Key] = Counter()
        for rows in self.added.objects.values_list("counts", flat=True).iterator(chunk_size):
            expected.update(self.counter(rows))
        stored: Counter[Key] = Counter(
            {
                self.decode(key): n
                for *key, n in self.model.objects.exclude(**{self.count: 0}).values_list(
                    *self.keys, self.count
                )
            }
        )
        stale = [key for key in expected.keys() | stored.keys() if expected[key] != stored[key]]
        if fix and stale:
            with transaction.atomic():
                self.add(Counter({key: expected[key] - stored[key] for key in stale}))
        return len(stale)


def every_order_id(chunk_size: int = 2000) -> Iterator[int]:
    """Every order's pk in order, read a chunk at a time."""
    from orders.models import PurchaseOrder

    return PurchaseOrder.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size)


def drift_of_orders(
    order_ids: Iterable[int] | None,
    *,
    stale: Callable[[list[int]], Sized],
    refresh: Callable[[list[int]], Any],
    tally_drift: Callable[..., int],
    fix: bool,
    chunk_size: int = 2000,
) -> tuple[int, int]:
    """(orders whose part is not what they added, tally rows that are not the sum of what the
    orders added) for a tally whose orders' stale parts `stale(chunk)` finds and
    `refresh(chunk)` rewrites: all orders, or these (the tally's rows only for all, by
    `tally_drift(fix=...)`). With fix=True both are set right, each chunk refreshed in its own
    transaction (a writer may have been first)."""
    every_order = order_ids is None
    stale_orders = 0
    for chunk in chunks(every_order_id(chunk_size) if order_ids is None else order_ids, chunk_size):
        found = len(stale(chunk))
        stale_orders += found
        if fix and found:
            refresh(chunk)
    return stale_orders, (tally_drift(fix=fix) if every_order else 0)
