"""The memory of valid API keys: believed for the recheck time, forgotten at once on revoke or merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from noema.domain.accounts import ApiKey
from noema.services.api_keys import RecentKeys

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _key(key_id: str, account_id: str) -> ApiKey:
    return ApiKey(id=key_id, account_id=account_id, prefix="nk_abc", key_hash=f"hash-{key_id}", created_at=T0)


def test_a_key_is_believed_for_the_recheck_time_and_then_read_again() -> None:
    memory = RecentKeys(timedelta(seconds=5))
    memory.remember(_key("k1", "a1"), T0, read_after=memory.forgotten)
    assert memory.account_of("hash-k1", T0 + timedelta(seconds=4.9)) == "a1"
    assert memory.account_of("hash-k1", T0 + timedelta(seconds=5)) is None
    assert memory.account_of("hash-k1", T0 - timedelta(seconds=1)) is None  # a clock that went back: read again
    assert memory.account_of("hash-unknown", T0) is None


def test_revoking_forgets_the_key_and_merging_forgets_every_key_of_the_merged_account() -> None:
    memory = RecentKeys(timedelta(seconds=5))
    for key in (_key("k1", "a1"), _key("k2", "a1"), _key("k3", "a2")):
        memory.remember(key, T0, read_after=memory.forgotten)
    memory.forget(key_id="k1")
    assert [memory.account_of(f"hash-{k}", T0) for k in ("k1", "k2", "k3")] == [None, "a1", "a2"]
    memory.forget(account_id="a1")
    assert [memory.account_of(f"hash-{k}", T0) for k in ("k1", "k2", "k3")] == [None, None, "a2"]


def test_a_key_read_while_a_revoke_happened_is_not_remembered() -> None:
    memory = RecentKeys(timedelta(seconds=5))
    before_read = memory.forgotten
    memory.forget(key_id="k1")  # revoked while the read of k1 was on its way
    memory.remember(_key("k1", "a1"), T0, read_after=before_read)
    assert memory.account_of("hash-k1", T0) is None
