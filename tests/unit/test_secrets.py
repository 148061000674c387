"""Tokens, codes and seeds come from an injected Secrets; a running Noema's draws on Python's ``secrets``."""

from __future__ import annotations

import base64
import string

from noema.adapters.randomness import SystemSecrets
from noema.domain.linking import CODE_ALPHABET, CODE_LENGTH

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
DRAWS = 2000


def test_a_token_is_url_safe_text_of_the_bytes_asked_for_and_never_repeats() -> None:
    secrets = SystemSecrets()
    made = [secrets.token(32) for _ in range(DRAWS)]
    assert all(len(t) == 43 and set(t) <= URL_SAFE for t in made)  # 32 bytes = 43 base64 characters, unpadded
    assert all(len(base64.urlsafe_b64decode(t + "=")) == 32 for t in made[:10])
    assert len(set(made)) == DRAWS
    assert len(secrets.token(24)) == 32


def test_a_hex_token_is_two_lowercase_hex_digits_a_byte_and_never_repeats() -> None:
    secrets = SystemSecrets()
    made = [secrets.token_hex(12) for _ in range(DRAWS)]
    assert all(len(t) == 24 and set(t) <= set("0123456789abcdef") for t in made)
    assert len(set(made)) == DRAWS


def test_a_code_has_the_length_asked_for_drawn_from_the_alphabet_only_and_uses_all_of_it() -> None:
    secrets = SystemSecrets()
    made = [secrets.code(CODE_ALPHABET, CODE_LENGTH) for _ in range(DRAWS)]
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in made)
    assert set("".join(made)) == set(CODE_ALPHABET)  # 16,000 draws over a small alphabet reach every letter
    assert len(set(made)) == DRAWS  # 31**8 codes: a repeat among 2,000 is about a one-in-400,000 chance
    assert secrets.code("x", 5) == "xxxxx"


def test_random_bits_fit_the_width_asked_for_and_vary() -> None:
    secrets = SystemSecrets()
    made = [secrets.randbits(64) for _ in range(DRAWS)]
    assert all(0 <= n < 1 << 64 for n in made)
    assert len(set(made)) == DRAWS
    assert any(n >= 1 << 63 for n in made)  # the top bit is used: about half of them
    assert {secrets.randbits(1) for _ in range(200)} == {0, 1}
