"""The LoRA registry's small rules: family names, weights and who may use a LoRA."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.domain.errors import InvalidInput
from noema.domain.loras import Family, Lora, Visibility, WeightBounds, family_or_none, format_weight, parse_family


@pytest.mark.parametrize(
    ("raw", "family"),
    [
        ("SD1.5", Family.SD15),
        ("sd 1.5", Family.SD15),
        ("SDXL 1.0", Family.SDXL),
        ("Pony XL", Family.PONY),
        ("Flux.1", Family.FLUX),
        ("SD 3.5", Family.SD3),
        ("sd1.5-xl", Family.SD15_XL),
        (Family.FLUX, Family.FLUX),
    ],
)
def test_family_names_are_read_ignoring_case_spaces_and_punctuation(raw: str, family: Family) -> None:
    assert family_or_none(raw) is family
    assert parse_family(str(raw.value if isinstance(raw, Family) else raw)) is family


@pytest.mark.parametrize("raw", [None, "", "SD2.1", "midjourney"])
def test_an_unknown_family_is_none(raw: str | None) -> None:
    assert family_or_none(raw) is None


def test_parsing_an_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"Unknown base-model family 'SD2'; use one of: SD1.5, SDXL, PONY, FLUX"):
        parse_family("SD2")


@pytest.mark.parametrize(
    ("weight", "text"),
    [(1.0, "1"), (0.7, "0.7"), (-0.25, "-0.25"), (0.12345, "0.123"), (0.0004, "0"), (-0.0004, "0"), (2.5, "2.5")],
)
def test_weights_are_written_compactly_at_three_decimals(weight: float, text: str) -> None:
    assert format_weight(weight) == text


@settings(max_examples=200)
@given(st.floats(-1e6, 1e6), st.floats(-5, 5), st.floats(0.011, 5))
def test_a_fitted_weight_is_within_the_bounds_and_at_tag_precision(weight: float, low: float, width: float) -> None:
    bounds = WeightBounds(low, max(low, 0) + width)
    fitted = bounds.fit(weight)
    assert bounds.minimum <= fitted <= bounds.maximum
    assert float(format_weight(fitted)) == fitted


def lora(visibility: Visibility, *, allowed: frozenset[str] = frozenset(), enabled: bool = True) -> Lora:
    return Lora("x", "X", ("x",), (), 1.0, Family.SDXL, "owner", visibility, allowed, enabled)


@pytest.mark.parametrize(
    ("visibility", "account", "visible"),
    [
        (Visibility.PUBLIC, None, True),
        (Visibility.PUBLIC, "someone", True),
        (Visibility.PRIVATE, "owner", True),
        (Visibility.PRIVATE, "friend", False),
        (Visibility.PRIVATE, None, False),
        (Visibility.ALLOWED, "owner", True),
        (Visibility.ALLOWED, "friend", True),
        (Visibility.ALLOWED, "someone", False),
        (Visibility.ALLOWED, None, False),
    ],
)
def test_who_may_see_a_lora(visibility: Visibility, account: str | None, visible: bool) -> None:
    assert lora(visibility, allowed=frozenset({"friend"})).visible_to(account) is visible


def test_a_switched_off_lora_is_visible_but_not_usable() -> None:
    off = lora(Visibility.PUBLIC, enabled=False)
    assert (off.visible_to("someone"), off.usable_by("someone")) == (True, False)


@pytest.mark.parametrize("checkpoint", [Family.SD15, "SDXL", "sdxl 1.0", Family.PONY])
def test_an_sd15_xl_lora_fits_sd15_sdxl_and_pony_checkpoints(checkpoint: Family | str) -> None:
    both = Lora("x", "X", (), (), 1.0, Family.SD15_XL, None, Visibility.PUBLIC)
    assert both.fits(checkpoint)


@pytest.mark.parametrize("checkpoint", [Family.FLUX, Family.SD3, None, "unknown"])
def test_an_sd15_xl_lora_does_not_fit_other_checkpoints(checkpoint: Family | str | None) -> None:
    both = Lora("x", "X", (), (), 1.0, Family.SD15_XL, None, Visibility.PUBLIC)
    assert not both.fits(checkpoint)
