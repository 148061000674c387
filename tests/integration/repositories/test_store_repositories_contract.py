"""The key-value store, link codes, preferences, payments, answered updates and LoRAs, on every store."""

from __future__ import annotations

from typing import Any

import pytest

from noema.domain.errors import Conflict
from noema.domain.ledger import LedgerEntry
from noema.domain.linking import CodePurpose, LinkCode
from noema.domain.loras import Family, Lora, Visibility
from noema.domain.payments import Payment, PaymentProvider, PaymentStatus
from noema.domain.platform_updates import PlatformUpdate
from noema.ports import UnitOfWorkFactory
from tests.fakes.ids import new_id
from tests.integration.repositories.conftest import at, make_account
from tests.integration.repositories.test_unit_of_work_contract import entry

STRIPE, STARS = PaymentProvider.STRIPE, PaymentProvider.TELEGRAM_STARS


async def test_the_key_value_store_keeps_json_and_stores_a_default_once(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        assert await uow.kv.get("presets") is None
        assert await uow.kv.get_for_update("presets", default={"a": [1]}, now=at(0)) == {"a": [1]}
        await uow.kv.put("pair", {"t": (1, 2)}, now=at(0))
        await uow.commit()
    async with uows() as uow:
        assert await uow.kv.get_for_update("presets", default={"ignored": True}, now=at(1)) == {"a": [1]}
        assert await uow.kv.get("pair") == {"t": [1, 2]}  # a tuple comes back as JSON gives it: a list
        await uow.kv.put("presets", {"b": 2}, now=at(1))
        await uow.commit()
    async with uows() as uow:
        assert await uow.kv.get("presets") == {"b": 2}


async def test_a_link_code_is_found_by_hash_and_its_use_is_saved(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    code = LinkCode("c" * 64, a.id, CodePurpose.LINK, created_at=at(0), expires_at=at(10), platform="telegram")
    async with uows() as uow:
        uow.link_codes.add(code)
        await uow.commit()
    async with uows() as uow:
        found = await uow.link_codes.get("c" * 64, for_update=True)
        assert found is not None and found.usable(at(5))
        found.used_at = at(5)
        await uow.commit()
    async with uows() as uow:
        used = await uow.link_codes.get("c" * 64)
        assert used is not None and not used.usable(at(6)) and await uow.link_codes.get("d" * 64) is None


async def test_wrong_link_codes_are_counted_per_account_and_overall(uows: UnitOfWorkFactory) -> None:
    a, b = new_id(), new_id()
    async with uows() as uow:
        for who, minutes in ((a, 3), (b, 1), (a, 5), (a, 0)):
            await uow.link_codes.record_failure(who, at=at(minutes))
        await uow.commit()
    async with uows() as uow:
        assert await uow.link_codes.failures_since(at(0), account_id=a) == [at(3), at(5)]
        assert await uow.link_codes.failures_since(at(0)) == [at(1), at(3), at(5)]


async def test_preferences_are_replaced_removed_and_merged_keeping_the_survivors_own(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    async with uows() as uow:
        assert await uow.preferences.get(a.id, "t") == {}
        await uow.preferences.put(a.id, "t", {"steps": 20}, now=at(0))
        await uow.preferences.put(a.id, "t", {"steps": 30, "seed": 1}, now=at(1))
        await uow.preferences.put(a.id, "u", {"steps": 5}, now=at(1))
        await uow.preferences.put(a.id, "gone", {"x": 1}, now=at(1))
        await uow.preferences.put(a.id, "gone", {}, now=at(2))
        await uow.preferences.put(b.id, "t", {"steps": 8}, now=at(1))
        await uow.commit()
    async with uows() as uow:
        assert await uow.preferences.get(a.id, "t") == {"steps": 30, "seed": 1}
        assert await uow.preferences.get(a.id, "gone") == {}
        await uow.preferences.move_owner(a.id, b.id)
        await uow.commit()
    async with uows() as uow:
        assert await uow.preferences.get(b.id, "t") == {"steps": 8}
        assert await uow.preferences.get(b.id, "u") == {"steps": 5}
        assert await uow.preferences.get(a.id, "u") == {}


def payment(account_id: str, provider: PaymentProvider = STRIPE, minutes: float = 0, **fields: object) -> Payment:
    """An unpaid $5 payment made ``minutes`` after the start."""
    p = Payment(
        new_id(), account_id, provider, "usd", 500, 5_000_000_000, created_at=at(minutes), updated_at=at(minutes)
    )
    for name, value in fields.items():
        setattr(p, name, value)
    return p


async def test_a_payment_is_found_by_any_provider_id_and_each_id_is_unique(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    p = payment(a.id, external_id="cs_1", payment_intent_id="pi_1", charge_id="ch_1")
    async with uows() as uow:
        uow.payments.add(p)
        uow.payments.add(payment(a.id, STARS, external_id="cs_1"))
        await uow.commit()
    async with uows() as uow:
        for ids in ({"external_id": "cs_1"}, {"payment_intent_id": "pi_1"}, {"charge_id": "ch_1"}):
            found = await uow.payments.find(STRIPE, **ids, for_update=True)
            assert found is not None and found.id == p.id
        by_charge = await uow.payments.find(STRIPE, external_id="cs_unknown", charge_id="ch_1")
        assert by_charge is not None and by_charge.id == p.id
        assert await uow.payments.find(STRIPE, external_id=None) is None
        got = await uow.payments.get(p.id)
        assert got is not None and got.amount_minor == 500
        uow.payments.add(payment(a.id, payment_intent_id="pi_1"))
        with pytest.raises(Conflict):
            await uow.commit()


async def test_open_payments_are_the_unpaid_ones_made_since(uows: UnitOfWorkFactory) -> None:
    a = await make_account(uows, new_id())
    async with uows() as uow:
        uow.payments.add(payment(a.id, minutes=1))
        uow.payments.add(payment(a.id, minutes=2))
        uow.payments.add(payment(a.id, minutes=0))
        uow.payments.add(payment(a.id, minutes=3, status=PaymentStatus.PAID, paid_at=at(3)))
        uow.payments.add(payment(a.id, minutes=4, status=PaymentStatus.EXPIRED))
        uow.payments.add(payment(a.id, STARS, minutes=4))
        await uow.commit()
    async with uows() as uow:
        assert sorted(await uow.payments.opened_since(a.id, STRIPE, at(0))) == [at(1), at(2)]
        first = await uow.payments.list(account_id=a.id, limit=4, cursor=None)
        rest = await uow.payments.list(account_id=a.id, limit=4, cursor=first.next_cursor)
        everyone = await uow.payments.list(account_id=None, limit=10, cursor=None)
    assert [p.created_at for p in first.items + rest.items][:3] == [at(4), at(4), at(3)]
    assert len(first.items + rest.items) == 6 == len(everyone.items) and rest.next_cursor is None


async def test_a_provider_event_is_remembered_once(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        assert not await uow.payments.seen_event(STRIPE, "evt_1")
        await uow.payments.record_event(
            STRIPE, "evt_1", event_type="checkout.session.completed", payment_id=None, at=at(0)
        )
        await uow.commit()
    async with uows() as uow:
        assert await uow.payments.seen_event(STRIPE, "evt_1")
        assert not await uow.payments.seen_event(STARS, "evt_1")


async def test_payment_totals_fold_merged_accounts_into_the_survivor(uows: UnitOfWorkFactory) -> None:
    kept = await make_account(uows, new_id(), balance_nanos=10, owed_nanos=4)
    gone = await make_account(uows, new_id(), merged_into=kept.id)
    credit: LedgerEntry = entry(gone.id, "pay-1", amount=7)
    credit.transaction_type = "payment_credit"
    async with uows() as uow:
        uow.payments.add(payment(gone.id, paid_at=at(1), status=PaymentStatus.PAID, taken_back_nanos=2))
        uow.payments.add(payment(kept.id))
        uow.ledger.add(credit)
        await uow.commit()
    async with uows() as uow:
        totals = await uow.payments.totals()
    mine = totals[kept.id]
    assert (mine.credited_nanos, mine.taken_back_nanos, mine.owed_nanos) == (5_000_000_000, 2, 4)
    assert mine.posted == {"payment_credit": 7} and set(totals) == {kept.id}


async def test_a_chat_update_is_recorded_as_answered_once(uows: UnitOfWorkFactory) -> None:
    update = PlatformUpdate("telegram", "1001")
    async with uows() as uow:
        assert not await uow.platform_updates.seen(update)
        assert await uow.platform_updates.record(update, at=at(0))
        await uow.commit()
    async with uows() as uow:
        assert await uow.platform_updates.seen(update)
        assert not await uow.platform_updates.record(update, at=at(1))
        assert not await uow.platform_updates.seen(PlatformUpdate("discord", "1001"))


async def test_chat_updates_answered_before_a_cutoff_are_forgotten_at_most_a_batch_at_a_time(
    uows: UnitOfWorkFactory,
) -> None:
    async with uows() as uow:
        for n in range(5):
            assert await uow.platform_updates.record(PlatformUpdate("telegram", str(n)), at=at(n))
        await uow.commit()
    async with uows() as uow:
        assert await uow.platform_updates.forget_before(at(3), limit=2) == 2
        assert await uow.platform_updates.forget_before(at(3), limit=2) == 1
        assert await uow.platform_updates.forget_before(at(3), limit=2) == 0
        await uow.commit()
    async with uows() as uow:
        seen = [await uow.platform_updates.seen(PlatformUpdate("telegram", str(n))) for n in range(5)]
    assert seen == [False, False, False, True, True]


def lora(slug: str, **fields: Any) -> Lora:
    """A public SDXL LoRA."""
    values: dict[str, Any] = {"display_name": slug, "triggers": (slug,), "cognates": (), "default_weight": 0.8}
    values |= {"family": Family.SDXL, "owner_id": None, "visibility": Visibility.PUBLIC} | fields
    return Lora(slug=slug, **values)


async def test_loras_are_unique_case_insensitively_listed_in_slug_order_and_counted(uows: UnitOfWorkFactory) -> None:
    a, b = await make_account(uows, new_id()), await make_account(uows, new_id())
    async with uows() as uow:
        for slug in ("cat", "Bird", "dog"):
            await uow.loras.add(lora(slug, owner_id=a.id), now=at(0))
        await uow.loras.add(lora("eel", visibility=Visibility.ALLOWED, allowed_accounts=frozenset({a.id})), now=at(0))
        await uow.commit()
    async with uows() as uow:
        with pytest.raises(Conflict):
            await uow.loras.add(lora("CAT"), now=at(1))
    async with uows() as uow:
        await uow.loras.count_usage(["cat", "CAT", "dog"])
        await uow.loras.replace(lora("Cat", enabled=False, owner_id=a.id), now=at(2))
        await uow.loras.move_owner(a.id, b.id, now=at(3))
        await uow.commit()
    async with uows() as uow:
        first = await uow.loras.list(limit=2, cursor=None)
        rest = await uow.loras.list(limit=2, cursor=first.next_cursor)
        cat = await uow.loras.get("CAT")
        found = await uow.loras.by_slugs(["bird", "DOG", "fish"])
        disabled = await uow.loras.list(limit=9, cursor=None, enabled=False)
        assert await uow.loras.existing_accounts([a.id, "nobody"]) == {a.id}
        every = await uow.loras.all()
    assert [r.lora.slug for r in first.items + rest.items] == ["Bird", "Cat", "dog", "eel"]
    assert cat is not None and (cat.lora.usage_count, cat.lora.enabled, cat.lora.owner_id) == (1, False, b.id)
    assert cat.created_at == at(0) and cat.updated_at == at(3)
    assert sorted(found) == ["bird", "dog"] and found["dog"].lora.usage_count == 1
    assert [r.lora.slug for r in disabled.items] == ["Cat"]
    assert [x.allowed_accounts for x in every if x.slug == "eel"] == [frozenset({b.id})]
