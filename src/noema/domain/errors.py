"""The one error tree of Noema. Each class's docstring is its default message."""

from __future__ import annotations

from typing import Any


class NoemaError(Exception):
    """Something went wrong."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)


class DomainError(NoemaError):
    """The request breaks a rule of Noema."""

    code = "DOMAIN_ERROR"


class InvalidInput(DomainError):
    """The input is not valid."""

    code = "INVALID_INPUT"


class InvalidWorkflow(InvalidInput):
    """A workflow file is not usable."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}", details={"file": file, "problem": problem})
        self.file = file
        self.problem = problem


class ForbiddenFieldUpdate(DomainError):
    """That field cannot be changed."""

    code = "FORBIDDEN_FIELD_UPDATE"


class NotFound(DomainError):
    """Not found."""

    code = "NOT_FOUND"


class AccountNotFound(NotFound):
    """No such account."""


class SessionNotFound(NotFound):
    """No such session."""


class EventNotFound(NotFound):
    """No such event."""


class TransactionNotFound(NotFound):
    """No such transaction."""


class GenerationNotFound(NotFound):
    """No such generation."""


class ToolNotFound(NotFound):
    """No such tool."""


class LoraNotFound(NotFound):
    """No such LoRA."""


class ToolDisabled(DomainError):
    """This tool cannot be run right now."""

    code = "TOOL_DISABLED"


class Conflict(DomainError):
    """That conflicts with what already exists."""

    code = "CONFLICT"


class InsufficientFunds(DomainError):
    """The balance is too low for this."""

    code = "INSUFFICIENT_FUNDS"


class InvalidTransition(DomainError):
    """That status change is not allowed."""

    code = "INVALID_TRANSITION"


class LimitExceeded(DomainError):
    """Too many requests; try again shortly."""

    code = "RATE_LIMITED"
    retry_after: int | None = None  #: seconds, when known (HTTP sends it as Retry-After)


class Busy(NoemaError):
    """Noema is busy right now; nothing was changed. Try again in a moment."""

    code = "BUSY"
    retry_after: int = 2  #: seconds (HTTP sends it as Retry-After)


class Unauthenticated(DomainError):
    """Authentication is required."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """Not allowed."""

    code = "FORBIDDEN"


class ExternalServiceError(NoemaError):
    """An outside service failed."""

    code = "EXTERNAL_SERVICE_ERROR"


class BackendUnavailable(ExternalServiceError):
    """The GPU backend could not be reached."""

    code = "BACKEND_UNAVAILABLE"


class BackendOutcomeUnknown(BackendUnavailable):
    """The GPU backend did not say whether it started the run."""

    code = "BACKEND_OUTCOME_UNKNOWN"


class BackendRejected(ExternalServiceError):
    """The GPU backend refused the request."""

    code = "BACKEND_REJECTED"

    def __init__(self, message: str | None = None, *, status: int, body: str = "") -> None:
        super().__init__(message or f"The GPU backend refused the request (HTTP {status}).")
        self.status = status
        self.body = body[:2000]


class BackendPromptInvalid(BackendRejected):
    """The GPU server refused the workflow as invalid."""

    code = "BACKEND_PROMPT_INVALID"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int = 400,
        body: str = "",
        node_errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip(), status=status, body=body)
        #: the server's per-node errors, keyed by node id (ComfyUI's ``node_errors``)
        self.node_errors = node_errors or {}


class BackendProtocolError(ExternalServiceError):
    """The GPU backend answered something that does not parse."""

    code = "BACKEND_PROTOCOL_ERROR"


class NotifierError(ExternalServiceError):
    """A message could not be delivered."""

    code = "NOTIFIER_ERROR"

    def __init__(self, message: str | None = None, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ResultRefused(NotifierError):
    """The result file could not be fetched."""

    code = "RESULT_REFUSED"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, retryable=False)


class AmountOwed(InsufficientFunds):
    """You owe money from a refunded payment; top up to continue."""

    code = "AMOUNT_OWED"


class PaymentNotFound(NotFound):
    """No such payment."""


class TooManyOpenPayments(LimitExceeded):
    """Too many unpaid top-ups are open; pay one or let one expire before starting another."""

    code = "TOO_MANY_OPEN_PAYMENTS"


class PaymentsDisabled(DomainError):
    """That payment method is not set up on this Noema."""

    code = "PAYMENTS_DISABLED"
