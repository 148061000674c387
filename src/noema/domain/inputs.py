"""Validating and coercing a request's inputs against a tool's input schema (pure, no I/O)."""

from __future__ import annotations

import ipaddress
import math
import random
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from noema.domain.errors import InvalidInput
from noema.domain.tools import InputType, Tool, ToolInput

DEFAULT_TEXT_LIMIT = 4000
MAX_URL_LENGTH = 2048
#: The largest file a run may be given, however it comes (a web form, a data: URI over the API, a chat's
#: image): 20 MiB, what the Telegram Bot API lets a bot download and the sandbox backend takes.
MAX_UPLOAD_BYTES = 20 * 2**20
#: The longest data: URI an input may be: a file of MAX_UPLOAD_BYTES in base64, with room for its header.
MAX_DATA_URI_LENGTH = 4 * -(-MAX_UPLOAD_BYTES // 3) + 256
SEED_LIMIT = 2**64
RANDOM_SEED_MAX = 2**32 - 1
_MAX_INTEGER = 2**63
_MAX_NUMBER_TEXT = 100

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_DATA_URI = re.compile(r"data:([a-z0-9][\w!#$&^.+-]*/[\w!#$&^.+-]+)((?:;[\w.+-]+=[^;,]*)*);base64,", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
#: Suffixes that never resolve on the public internet (RFC 6761, RFC 8375, common intranet names).
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "lan", "intranet", "home.arpa")
#: A numeric last label makes resolvers read the host as an IP ("127.1", "0x7f.1"): refuse those forms.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_MIME_PREFIXES = {InputType.IMAGE: ("image/",), InputType.VIDEO: ("video/", "image/gif"), InputType.AUDIO: ("audio/",)}
_Coercer = Callable[[ToolInput, Any, random.Random], Any]


#: How a stored generation notes a file that was uploaded (the file itself is never kept in the record).
UPLOADED_FILE_NOTE = "(uploaded file"


def uploaded_file_note(size_bytes: int) -> str:
    """The note kept in a generation's inputs in place of an uploaded file of ``size_bytes``."""
    return f"{UPLOADED_FILE_NOTE}, {size_bytes // 1024} KB)"


def stands_for_a_file(value: object) -> bool:
    """Whether a stored input value is a file (a link, an upload's note or a data: URI), not text to show."""
    return isinstance(value, str) and value.startswith(("http://", "https://", UPLOADED_FILE_NOTE, "data:"))


def validate_inputs(tool: Tool, raw: Mapping[str, Any], *, rng: random.Random) -> dict[str, Any]:
    """The values to send to the backend: checked, coerced, defaults filled in; ``raw`` is left untouched."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("The inputs must be an object of input names and values.")
    names = [spec.name for spec in tool.inputs]
    for key in raw:
        if key not in names:
            takes = ", ".join(names) if names else "nothing"
            field = key[:100] if isinstance(key, str) else type(key).__name__
            raise InvalidInput(f"Unknown input {_show(key)}; this tool takes: {takes}.", details={"field": field})
    values: dict[str, Any] = {}
    for spec in tool.inputs:
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                raise _missing(spec)
            default = _default_value(spec, rng)
            if default is not None:
                values[spec.name] = default
            continue
        coerced = coerce_value(spec, value, rng=rng)
        if spec.required and coerced == "":
            raise _missing(spec)
        values[spec.name] = coerced
    return values


def coerce_value(spec: ToolInput, value: Any, *, rng: random.Random) -> Any:
    """One input's value, checked and coerced to what the backend expects; InvalidInput otherwise."""
    coercer: _Coercer = _COERCERS.get(spec.type, _coerce_media)
    return coercer(spec, value, rng)


def _default_value(spec: ToolInput, rng: random.Random) -> Any:
    """The default of an omitted input, or None when there is none worth sending."""
    if spec.type is InputType.SEED and (spec.default is None or _is_minus_one(spec.default)):
        return rng.randint(0, RANDOM_SEED_MAX)
    if spec.default is None:
        return None
    try:
        return coerce_value(spec, spec.default, rng=rng)
    except InvalidInput:
        # A default we cannot send as a value (a file name, a wired link …): the backend keeps its own.
        return None


def _coerce_text(spec: ToolInput, value: Any, _rng: random.Random) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(spec, "must be text")
    # Giant ints cannot be printed (Python refuses str() past 4300 digits), NaN is no text.
    too_odd = isinstance(value, int) and abs(value) >= 10**100
    if too_odd or (isinstance(value, float) and not math.isfinite(value)):
        raise _invalid(spec, "must be text")
    value = str(value)
    limit = spec.max_length or DEFAULT_TEXT_LIMIT
    if len(value) > limit * 4 + 1024:  # far too long: refuse before scanning it
        raise _invalid(spec, f"is too long: at most {limit} characters")
    text = _CONTROL_CHARS.sub("", value).strip()
    if len(text) > limit:
        raise _invalid(spec, f"is too long: at most {limit} characters (got {len(text)})")
    return text


def _coerce_number(spec: ToolInput, value: Any, _rng: random.Random) -> int | float:
    number = _decimal(spec, value)
    _check_range(spec, number)
    if spec.type is InputType.INTEGER or (spec.type is InputType.SLIDER and spec.integer):
        if number.copy_abs() >= _MAX_INTEGER:
            raise _invalid(spec, "is too large")
        if number != number.to_integral_value():
            raise _invalid(spec, "must be a whole number")
        return int(number)
    result = float(number)
    if not math.isfinite(result):
        raise _invalid(spec, "is too large")
    return result


def _coerce_seed(spec: ToolInput, value: Any, rng: random.Random) -> int:
    number = _decimal(spec, value)
    if number == -1:
        return rng.randint(0, RANDOM_SEED_MAX)
    if not 0 <= number < SEED_LIMIT:
        raise _invalid(spec, f"must be -1 (random) or between 0 and {SEED_LIMIT - 1}")
    if number != number.to_integral_value():
        raise _invalid(spec, "must be a whole number")
    return int(number)


def _decimal(spec: ToolInput, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _invalid(spec, "must be a number, not true/false")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))  # repr: 0.1 stays 0.1, not its binary approximation
    if isinstance(value, str) and 0 < len(value.strip()) <= _MAX_NUMBER_TEXT:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise _invalid(spec, "must be a number") from None
        if number.is_finite():
            # Decimal arithmetic on exponents like 1e999999999 overflows the context: stop here.
            if number and number.adjusted() > 100:
                raise _invalid(spec, "is too large")
            return number
    raise _invalid(spec, "must be a finite number")


def _check_range(spec: ToolInput, number: Decimal) -> None:
    low = None if spec.minimum is None else Decimal(repr(spec.minimum))
    high = None if spec.maximum is None else Decimal(repr(spec.maximum))
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            raise _invalid(spec, f"must be between {_fmt(spec.minimum)} and {_fmt(spec.maximum)}")
        if low is not None:
            raise _invalid(spec, f"must be at least {_fmt(spec.minimum)}")
        raise _invalid(spec, f"must be at most {_fmt(spec.maximum)}")


def _coerce_boolean(spec: ToolInput, value: Any, _rng: random.Random) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _invalid(spec, "must be true or false (yes/no, on/off, 1/0)")


def _coerce_enum(spec: ToolInput, value: Any, rng: random.Random) -> str:
    text = _coerce_text(spec, value, rng)
    if not spec.options:  # the backend listed no options: any non-empty choice is passed on
        if not text:
            raise _invalid(spec, "must not be empty")
        return text
    if text in spec.options:
        return text
    folded = [option for option in spec.options if option.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(spec.options[:20]) + (", …" if len(spec.options) > 20 else "")
    raise _invalid(spec, f"must be one of: {shown}")


def _coerce_media(spec: ToolInput, value: Any, _rng: random.Random) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(spec, "must be a public http(s) URL or a data: URI")
    text = value.strip()
    if text[:5].lower() == "data:":
        _check_data_uri(spec, text)
        return text
    problem = _url_problem(text)
    if problem is not None:
        raise _invalid(spec, f"must be a public http(s) URL or a data: URI ({problem})")
    return text


def _check_data_uri(spec: ToolInput, text: str) -> None:
    if len(text) > MAX_DATA_URI_LENGTH:
        raise _invalid(spec, f"is too large: a file may be at most {MAX_UPLOAD_BYTES // 2**20} MB")
    match = _DATA_URI.match(text)
    if match is None:
        raise _invalid(spec, "must be a data:<type>;base64,… URI")
    mime = match.group(1).lower()
    prefixes = _MIME_PREFIXES.get(spec.type)
    if prefixes is not None and not mime.startswith(prefixes):
        raise _invalid(spec, f"must be {spec.type.value} data, not {mime[:60]}")
    if not _BASE64.fullmatch(text, match.end()):
        raise _invalid(spec, "is not valid base64 data")


def is_public_http_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL to a public host (checked without DNS: names and IP literals only)."""
    return isinstance(url, str) and _url_problem(url) is None


def _url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if any(c.isspace() or c == "\\" or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains spaces, backslashes or control characters"
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return "it cannot be read as a URL"
    if parts.scheme not in ("http", "https"):
        return "only http and https are allowed"
    if "@" in parts.netloc:
        return "it must not carry credentials"
    return _host_problem(host or "")


def _host_problem(raw_host: str) -> str | None:
    host = raw_host.rstrip(".").lower()
    if not host:
        return "it has no host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return "it points at a private or local address" if not ip.is_global or ip.is_multicast else None
    labels = host.split(".")
    if any(host == suffix or host.endswith("." + suffix) for suffix in _LOCAL_SUFFIXES):
        return "it points at a local host"
    if len(labels) < 2 or not all(labels) or "%" in host:
        return "it is not a public host name"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "it is not a standard public IP address"
    return None


_COERCERS: dict[InputType, _Coercer] = {
    InputType.TEXT: _coerce_text,
    InputType.NUMBER: _coerce_number,
    InputType.INTEGER: _coerce_number,
    InputType.SLIDER: _coerce_number,
    InputType.SEED: _coerce_seed,
    InputType.BOOLEAN: _coerce_boolean,
    InputType.ENUM: _coerce_enum,
}


def describe_inputs(tool: Tool) -> str:
    """One short line per input for help texts, e.g. ``width (integer 256-1536, default 512)``."""
    return "\n".join(_describe(spec) for spec in tool.inputs)


def _describe(spec: ToolInput) -> str:
    if spec.required:
        state = "required"
    elif spec.type is InputType.SEED and (spec.default is None or _is_minus_one(spec.default)):
        state = "default random"
    elif spec.default is None or spec.default == "":
        state = "optional"
    else:
        state = f"default {_fmt(spec.default)}"
    line = f"{spec.name} ({_kind_label(spec)}, {state})"
    if spec.display_name and spec.display_name != spec.name:
        line += f" — {spec.display_name}"
    return line


def _kind_label(spec: ToolInput) -> str:
    if spec.type is InputType.ENUM and spec.options:
        return "one of " + "/".join(spec.options[:8]) + ("/…" if len(spec.options) > 8 else "")
    if spec.type is InputType.BOOLEAN:
        return "yes/no"
    if spec.type not in (InputType.NUMBER, InputType.INTEGER, InputType.SLIDER):
        return str(spec.type.value)
    kind = "integer" if spec.type is InputType.INTEGER or spec.integer else "number"
    if spec.minimum is not None and spec.maximum is not None:
        return f"{kind} {_fmt(spec.minimum)}–{_fmt(spec.maximum)}"
    if spec.minimum is not None:
        return f"{kind} ≥ {_fmt(spec.minimum)}"
    return f"{kind} ≤ {_fmt(spec.maximum)}" if spec.maximum is not None else kind


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    return _show(value)


def _show(value: Any) -> str:
    """A short, safe rendering of an outside value for a message."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:39] + "…")
    if isinstance(value, float) or (isinstance(value, int) and abs(value) < 10**30):
        return repr(value)
    return type(value).__name__


def _is_minus_one(value: Any) -> bool:
    return not isinstance(value, bool) and (value == -1 or (isinstance(value, str) and value.strip() == "-1"))


def _label(spec: ToolInput) -> str:
    if spec.display_name and spec.display_name != spec.name:
        return f"The input {spec.display_name!r} ({spec.name})"
    return f"The input {spec.name!r}"


def at_field(spec: ToolInput, message: str) -> str:
    """An input's error as shown next to it: named by its display name ("Prompt is required.")."""
    named = spec.display_name or spec.name
    prefix = _label(spec) + " "
    if message.startswith(prefix):
        return f"{named} {message.removeprefix(prefix)}"
    return message


def _invalid(spec: ToolInput, problem: str) -> InvalidInput:
    return InvalidInput(f"{_label(spec)} {problem}.", details={"field": spec.name})


def _missing(spec: ToolInput) -> InvalidInput:
    return _invalid(spec, "is required")
