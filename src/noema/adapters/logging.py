"""Structured logging with structlog; secrets are masked in every line, ours and the libraries' (uvicorn's too).

Two layers, because a secret can arrive by either road:

* structlog events go through ``_mask`` after exceptions have been turned into text, so the
  traceback is masked too; tracebacks are plain (no locals: the locals of a request handler hold
  the request's headers, and printing them wrote keys into the log);
* stdlib records (uvicorn's access and error logs, httpx, the sandbox) go through the same chain in
  ``ProcessorFormatter``, and a ``SecretFilter`` on the handler masks the record itself first.

What is masked: the values of settings that are secrets (passed in by the caller), personal API keys
(``nk_...``), Bearer/Basic credentials, Telegram and Discord bot tokens, our cookies, ``token=``-like
query values, and the token in a one-time sign-in link path.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "***"
_SECRET_KEYS = re.compile(r"(token|secret|password|api_?key|authorization|client_key|key_hash|cookie)", re.I)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"nk_[A-Za-z0-9_\-]{6,}"), "nk_" + MASK),
    (re.compile(r"\b(Bearer|Basic)(\s+|%20|\+)[^\s'\",;)\]}]+", re.I), r"\1\2" + MASK),
    (re.compile(r"\b(bot)?\d{5,}:[A-Za-z0-9_\-]{30,}"), r"\1" + MASK),  # Telegram bot tokens
    (re.compile(r"\b[A-Za-z0-9_\-]{23,28}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,}"), MASK),  # Discord bot tokens
    (re.compile(r"\b(noema_session|noema_csrf)=[^;\s'\",&]+"), r"\1=" + MASK),
    (
        re.compile(r"([?&;\s\"'(]|^)([A-Za-z_\-]*(?:token|secret|password|api_?key|key))=[^&\s'\"#;)]+", re.I),
        r"\1\2=" + MASK,
    ),
    (re.compile(r"(/signin/link/)[^\s?/'\"#]+"), r"\1" + MASK),
    (
        re.compile(
            r"((?:x-internal-client-key|x-telegram-bot-api-secret-token)['\"]?\s*[:,=]\s*b?['\"]?)[^\s'\",)]+", re.I
        ),
        r"\1" + MASK,
    ),
]


class Masker:
    """Replaces secrets in text: the known secret values first, then the shapes of secrets."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole; short values are no secrets.
        self.known = sorted({k for k in known if len(k) >= 8}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every secret in it masked."""
        for secret in self.known:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def any(self, value: Any) -> Any:
        """Strings masked inside strings, bytes, lists, tuples and dicts (other values are kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        if isinstance(value, dict):
            return {k: MASK if _SECRET_KEYS.search(str(k)) else self.any(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.any(v) for v in value)
        return value

    def event(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """The structlog processor: every value masked, and whole values under secret-sounding keys."""
        for key, value in list(event.items()):
            if key.startswith("_"):
                continue  # structlog's own bookkeeping (the stdlib record), never rendered
            event[key] = MASK if _SECRET_KEYS.search(key) else self.any(value)
        return event


class SecretFilter(logging.Filter):
    """Masks a stdlib record's message, arguments and traceback before any formatter sees it."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; rewrites it with its secrets masked."""
        if isinstance(record.msg, dict):
            return True  # a structlog event on its way to ProcessorFormatter: masked in its chain
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not lose the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.masker.text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.text(record.exc_text)
        return True


def configure_logging(level: str = "INFO", fmt: str = "console", *, secrets: Iterable[str] = ()) -> None:
    """One line per event, JSON or console, with secrets masked; stdlib logs (uvicorn's) go the same way."""
    masker = Masker(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    stamp: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Exceptions become plain text (no locals) before masking, so the traceback is masked as well.
    finish: list[Any] = [structlog.processors.format_exc_info, masker.event, renderer]
    structlog.configure(
        processors=[*stamp, *finish],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretFilter(masker))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
            foreign_pre_chain=stamp,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's loggers propagate to the root handler above; no handler of their own may bypass it.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "telegram", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
