"""The ledger: holds, debits and settlement never take a wallet below zero, and entries add up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.domain import ledger
from noema.domain.errors import InsufficientFunds, InvalidInput
from noema.domain.ledger import EntryKind, Posting


@dataclass
class W:
    balance_nanos: int = 0
    held_nanos: int = 0


Operation = Callable[[W, int], Posting]  #: ledger.credit, debit, hold or release


@pytest.mark.parametrize(
    ("start", "op", "amount", "after", "kind"),
    [
        ((0, 0), ledger.credit, 5, (5, 0), EntryKind.CREDIT),
        ((10, 0), ledger.debit, 4, (6, 0), EntryKind.DEBIT),
        ((10, 0), ledger.hold, 4, (10, 4), EntryKind.HOLD),
        ((10, 4), ledger.release, 4, (10, 0), EntryKind.RELEASE),
        ((10, 4), ledger.debit, 6, (4, 4), EntryKind.DEBIT),
    ],
)
def test_each_operation_moves_the_wallet_as_its_entry_says(
    start: tuple[int, int], op: Operation, amount: int, after: tuple[int, int], kind: EntryKind
) -> None:
    wallet = W(*start)
    posting = op(wallet, amount)
    assert (wallet.balance_nanos, wallet.held_nanos) == after
    assert posting.kind is kind
    assert posting.balance_after == after[0] and posting.held_after == after[1]
    assert posting.balance_delta == after[0] - start[0] and posting.held_delta == after[1] - start[1]


@pytest.mark.parametrize(
    ("start", "op", "amount"),
    [
        ((10, 0), ledger.debit, 11),
        ((10, 5), ledger.debit, 6),
        ((10, 5), ledger.hold, 6),
        ((0, 0), ledger.hold, 1),
    ],
)
def test_spending_more_than_the_free_balance_is_refused_and_changes_nothing(
    start: tuple[int, int], op: Operation, amount: int
) -> None:
    wallet = W(*start)
    with pytest.raises(InsufficientFunds) as info:
        op(wallet, amount)
    assert (wallet.balance_nanos, wallet.held_nanos) == start
    assert info.value.details is not None and set(info.value.details) == {"currentBalance", "debitAmount"}


@pytest.mark.parametrize("op", [ledger.credit, ledger.debit, ledger.hold, ledger.release])
@pytest.mark.parametrize("amount", [0, -1])
def test_zero_and_negative_amounts_are_refused(op: Operation, amount: int) -> None:
    wallet = W(100, 10)
    with pytest.raises(InvalidInput):
        op(wallet, amount)
    assert (wallet.balance_nanos, wallet.held_nanos) == (100, 10)


def test_releasing_more_than_is_held_is_refused() -> None:
    with pytest.raises(InvalidInput):
        ledger.release(W(100, 10), 11)


@pytest.mark.parametrize(
    ("start", "held", "cost", "after", "charged", "shortfall"),
    [
        ((100, 30), 30, 20, (80, 0), 20, 0),  # cost under the hold: the rest is released
        ((100, 30), 30, 30, (70, 0), 30, 0),
        ((100, 30), 30, 50, (70, 0), 30, 20),  # over the hold: never more than the hold; the rest is written off
        ((40, 30), 30, 55, (10, 0), 30, 25),
        ((100, 30), 30, 0, (100, 0), 0, 0),  # failed before running: nothing charged
        ((100, 50), 30, 20, (80, 20), 20, 0),
    ],  # another run's hold stays untouched
)
def test_settlement_charges_the_cost_and_releases_the_hold(
    start: tuple[int, int], held: int, cost: int, after: tuple[int, int], charged: int, shortfall: int
) -> None:
    wallet = W(*start)
    result = ledger.settle(wallet, held=held, cost=cost)
    assert (wallet.balance_nanos, wallet.held_nanos) == after
    assert (result.charged_nanos, result.shortfall_nanos) == (charged, shortfall)
    assert sum(p.balance_delta for p in result.postings) == after[0] - start[0]


_ops = st.lists(
    st.tuples(
        st.sampled_from(["credit", "debit", "hold", "release", "settle"]),
        st.integers(min_value=-5, max_value=1_000),
    ),
    max_size=60,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_ops)
def test_any_sequence_keeps_balance_equal_to_the_sum_of_entries_and_never_negative(
    ops: list[tuple[str, int]],
) -> None:
    wallet = W()
    postings: list[Posting] = []
    holds: list[int] = []
    for name, amount in ops:
        try:
            if name == "settle":
                if not holds:
                    continue
                postings += ledger.settle(wallet, held=holds.pop(), cost=max(amount, 0)).postings
            elif name == "release":
                if not holds:
                    continue
                postings.append(ledger.release(wallet, holds.pop()))
            else:
                postings.append(getattr(ledger, name)(wallet, amount))
                if name == "hold":
                    holds.append(amount)
        except (InsufficientFunds, InvalidInput):
            pass
        assert wallet.balance_nanos >= 0
        assert 0 <= wallet.held_nanos <= wallet.balance_nanos
        assert wallet.balance_nanos == sum(p.balance_delta for p in postings)
        assert wallet.held_nanos == sum(p.held_delta for p in postings) == sum(holds)
        if postings:
            assert postings[-1].balance_after == wallet.balance_nanos
