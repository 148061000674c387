"""Which submit failures let a generation move on to the next deployment (services/failover.py)."""

from __future__ import annotations

import pytest

from noema.domain.errors import (
    BackendOutcomeUnknown,
    BackendProtocolError,
    BackendRejected,
    BackendUnavailable,
    ExternalServiceError,
)
from noema.services.failover import worth_another


@pytest.mark.parametrize(
    "error",
    [
        BackendUnavailable("could not connect"),
        BackendRejected(status=500),
        BackendRejected(status=503),
        BackendRejected(status=404),
        BackendRejected(status=429),
    ],
)
def test_a_backend_that_did_not_take_the_run_lets_the_next_deployment_try(error: ExternalServiceError) -> None:
    assert worth_another(error)


@pytest.mark.parametrize(
    "error",
    [
        BackendOutcomeUnknown("no answer after the request was sent"),
        BackendRejected(status=400),
        BackendRejected(status=403),
        BackendProtocolError("garbled"),
    ],
)
def test_a_run_that_may_exist_or_a_request_no_deployment_would_take_is_not_sent_again(
    error: ExternalServiceError,
) -> None:
    # A second deployment after an unknown outcome could start (and bill) a second run.
    assert not worth_another(error)
