"""Discord: an interaction is accepted only with Discord's Ed25519 signature over a fresh timestamp."""

from __future__ import annotations

from nacl.signing import SigningKey

from noema.adapters.platforms.discord.signature import SignatureCheck

KEY = SigningKey(b"\x07" * 32)
CHECK = SignatureCheck(KEY.verify_key.encode().hex())
NOW = 1_800_000_000
BODY = b'{"type":1}'


def _sign(body: bytes, stamp: str, key: SigningKey = KEY) -> str:
    return key.sign(stamp.encode() + body).signature.hex()


def test_a_signature_over_timestamp_and_body_verifies() -> None:
    assert CHECK.verify(BODY, _sign(BODY, str(NOW)), str(NOW), now=NOW)
    assert CHECK.verify(BODY, _sign(BODY, str(NOW - 299)), str(NOW - 299), now=NOW)


def test_another_key_another_body_or_another_timestamp_do_not_verify() -> None:
    stamp = str(NOW)
    assert not CHECK.verify(BODY, _sign(BODY, stamp, SigningKey.generate()), stamp, now=NOW)
    assert not CHECK.verify(BODY + b" ", _sign(BODY, stamp), stamp, now=NOW)
    assert not CHECK.verify(BODY, _sign(BODY, stamp), str(NOW + 1), now=NOW)


def test_timestamps_more_than_five_minutes_off_are_refused_even_when_signed() -> None:
    for stamp in (str(NOW - 301), str(NOW + 301)):
        assert not CHECK.verify(BODY, _sign(BODY, stamp), stamp, now=NOW)


def test_missing_or_malformed_headers_are_refused_without_raising() -> None:
    good = _sign(BODY, str(NOW))
    for signature, stamp in [
        (None, str(NOW)),
        (good, None),
        ("", ""),
        ("zz" * 64, str(NOW)),
        (good[:-2], str(NOW)),
        (good, "soon"),
        (good, "9" * 40),
        (good, f"{NOW}.0"),
    ]:
        assert not CHECK.verify(BODY, signature, stamp, now=NOW)
