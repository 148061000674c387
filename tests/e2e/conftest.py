"""Fixtures shared by the end-to-end tests: the fake Stripe API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.stripe_api import FakeStripe


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    """The fake Stripe API on a free loopback port."""
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()
