"""The log masker: every kind of secret Noema handles is masked wherever it appears in a line."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from noema.adapters.logging import Masker, configure_logging

TELEGRAM = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
KEY = "nk_8Hq2xM0pLr4tVw9zYb3cDe6fGh1jKm5n"
CLIENT_KEY = "telegram-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"authorization: Bearer {KEY}", KEY),
        (f"(b'authorization', b'Bearer {KEY}')", KEY),
        ("(b'authorization', b'Bearer opaque-sandbox-key-123')", "opaque-sandbox-key-123"),
        (f"GET https://api.telegram.org/bot{TELEGRAM}/getUpdates", TELEGRAM),
        (f"Authorization: Bot {DISCORD}", DISCORD),
        ("cookie: noema_session=s3cr3t-session-value; noema_csrf=csrf-value-123", "s3cr3t-session-value"),
        ("cookie: noema_session=s3cr3t-session-value; noema_csrf=csrf-value-123", "csrf-value-123"),
        ('"POST /api/webhook/comfydeploy?generation_id=g&token=webhook-secret-abc HTTP/1.1" 403', "webhook-secret-abc"),
        ("GET /signin/link/one-time-link-token-xyz HTTP/1.1", "one-time-link-token-xyz"),
        (f"x-internal-client-key: {CLIENT_KEY}", CLIENT_KEY),
        ("url=http://h/run?api_key=abc123def456&x=1", "abc123def456"),
    ],
)
def test_each_kind_of_secret_is_masked_in_a_line(line: str, secret: str) -> None:
    masked = Masker().text(line)
    assert secret not in masked and "***" in masked


def test_configured_secrets_are_masked_whatever_their_shape() -> None:
    masker = Masker(["plain-words-operator-secret", "short"])
    assert masker.text("it was plain-words-operator-secret here") == "it was *** here"
    assert masker.text("a short word") == "a short word"  # too short to be anyone's secret


def test_nested_values_and_secret_named_fields_are_masked() -> None:
    event = {"event": "x", "headers": {"authorization": "anything"}, "args": [f"Bearer {KEY}"], "api_key": "v"}
    masked = Masker().event(None, "info", dict(event))
    assert KEY not in repr(masked) and masked["api_key"] == "***" and masked["headers"]["authorization"] == "***"


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_stdlib_and_structlog_lines_are_masked_and_tracebacks_have_no_locals(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    try:
        configure_logging("INFO", fmt, secrets=[CLIENT_KEY])
        logging.getLogger("uvicorn.access").info('%s - "%s %s" %d', "1.2.3.4", "GET", "/x?token=tok-abc-123", 200)
        try:
            headers = {"authorization": f"Bearer {KEY}", "x-internal-client-key": CLIENT_KEY}
            raise RuntimeError(f"boom with {len(headers)} headers")
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
            structlog.get_logger("t").exception("unhandled_error", client_key=CLIENT_KEY)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)  # the tests' own configuration (tests/conftest.py)
    text = out.getvalue()
    assert "boom with 2 headers" in text and "Exception in ASGI application" in text and "unhandled_error" in text
    for secret in (KEY, CLIENT_KEY, "tok-abc-123"):
        assert secret not in text
    assert "headers = " not in text and "'headers':" not in text  # no frame locals
    if fmt == "json":
        assert all(json.loads(line) for line in text.splitlines())
