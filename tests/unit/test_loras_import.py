"""The JSON file format of ``noema loras import``: what parses, and what is refused, clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from noema.domain.errors import InvalidInput
from noema.domain.loras import Cognate, Family, Lora, Visibility, parse_lora_file
from noema.domain.loras_import import MAX_ENTRIES, MAX_PHRASES

FILE = """
{"loras": [
  {
    "_id": "65f0c0ffee",
    "slug": "ghibli-style",
    "displayName": "Ghibli style",
    "triggerWords": ["ghibli", "studio ghibli"],
    "cognates": [{"word": "anime", "replaceWith": "ghibli style anime"}],
    "defaultWeight": 0.8,
    "baseModel": "SDXL 1.0",
    "ownerId": "acc-1",
    "visibility": "Allowed",
    "allowedAccounts": ["acc-2", " acc-3 "],
    "enabled": false,
    "usageCount": 42,
    "createdAt": "2024-03-01T00:00:00Z"
  },
  {"slug": "pixel_art.v2", "family": "sd 1.5", "trigger_words": "pixel art,  8 bit , ", "weight": -0.5},
  {"slug": "flux-skin", "family": "Flux.1", "cognates": [{"word": "skin", "replace_with": "detailed skin"}]}
]}
"""


def parse_one(**fields: Any) -> Lora:
    return parse_lora_file([{"slug": "x", "family": "SDXL", **fields}])[0]


def refusal(data: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_lora_file(data)
    return caught.value


def refuse_one(field: str, **fields: Any) -> str:
    error = refusal([{"slug": "ok", "family": "SDXL"}, {"slug": "x", "family": "SDXL", **fields}])
    assert error.details == {"entry": 1, "field": field}
    assert error.message.startswith("LoRA entry 2")
    return error.message


# --- what parses --------------------------------------------------------------------------------


def test_a_valid_file_parses_with_camel_case_snake_case_and_foreign_keys() -> None:
    ghibli, pixel, flux = parse_lora_file(json.loads(FILE))
    assert ghibli == Lora(
        slug="ghibli-style",
        display_name="Ghibli style",
        triggers=("ghibli", "studio ghibli"),
        cognates=(Cognate("anime", "ghibli style anime"),),
        default_weight=0.8,
        family=Family.SDXL,
        owner_id="acc-1",
        visibility=Visibility.ALLOWED,
        allowed_accounts=frozenset({"acc-2", "acc-3"}),
        enabled=False,
        usage_count=42,
    )
    assert pixel == Lora(
        slug="pixel_art.v2",
        display_name="pixel_art.v2",
        triggers=("pixel art", "8 bit"),
        cognates=(),
        default_weight=-0.5,
        family=Family.SD15,
        owner_id=None,
        visibility=Visibility.PUBLIC,
    )
    assert (flux.family, flux.cognates) == (Family.FLUX, (Cognate("skin", "detailed skin"),))


def test_a_bare_list_is_a_file_too() -> None:
    assert [lora.slug for lora in parse_lora_file([{"slug": "a", "family": "SD3"}])] == ["a"]


def test_an_empty_file_holds_no_loras() -> None:
    assert parse_lora_file({"loras": []}) == []


def test_defaults_fill_in_everything_but_slug_and_family() -> None:
    lora = parse_one()
    assert (lora.display_name, lora.triggers, lora.cognates, lora.default_weight) == ("x", (), (), 1.0)
    assert (lora.owner_id, lora.visibility, lora.allowed_accounts) == (None, Visibility.PUBLIC, frozenset())
    assert (lora.enabled, lora.usage_count) == (True, 0)


def test_a_null_value_counts_as_missing_and_the_next_spelling_is_used() -> None:
    assert parse_one(displayName=None, name="Named").display_name == "Named"


def test_phrases_are_trimmed_and_their_inner_spaces_collapsed() -> None:
    lora = parse_one(triggers=["  blue \t hair "], cognates=[{"word": " kitty ", "replaceWith": " cat "}])
    assert (lora.triggers, lora.cognates) == (("blue hair",), (Cognate("kitty", "cat"),))


@pytest.mark.parametrize(
    ("written", "family"), [("sd15", Family.SD15), ("SD1.5-XL", Family.SD15_XL), ("ponyxl", Family.PONY)]
)
def test_family_names_are_read_loosely(written: str, family: Family) -> None:
    assert parse_one(family=written).family is family


def test_a_private_lora_with_an_owner_parses() -> None:
    lora = parse_one(visibility="private", owner="acc-9")
    assert (lora.visibility, lora.owner_id) == (Visibility.PRIVATE, "acc-9")


# --- what is refused ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, "loras", 5, {"entries": []}, {"loras": {"slug": "x"}}])
def test_a_file_that_is_not_a_list_of_loras_is_refused(data: object) -> None:
    assert refusal(data).message == 'A LoRA file is a list of LoRA objects, or {"loras": [...]}.'


def test_a_file_with_too_many_entries_is_refused() -> None:
    assert "at most 10000 entries" in refusal([{}] * (MAX_ENTRIES + 1)).message


def test_an_entry_that_is_not_an_object_is_refused() -> None:
    assert refusal([{"family": "SDXL"}]).message == "LoRA entry 1: slug is required."
    error = refusal([{"slug": "ok", "family": "SDXL"}, "x"])
    assert (error.message, error.details) == ("LoRA entry 2 must be an object.", {"entry": 1, "field": "entry"})


@pytest.mark.parametrize("slug", ["", "-x", "a b", "a/b", "x" * 101, 7, "é"])
def test_a_bad_slug_is_refused(slug: object) -> None:
    error = refusal([{"slug": slug, "family": "SDXL"}])
    assert error.details == {"entry": 0, "field": "slug"}
    assert "slug must be 1-100 letters, digits" in error.message


def test_a_slug_used_twice_ignoring_case_is_refused() -> None:
    error = refusal([{"slug": "Cat", "family": "SDXL"}, {"slug": "cat", "family": "FLUX"}])
    assert error.message == "LoRA entry 2 ('cat'): slug is used by an earlier entry."
    assert error.details == {"entry": 1, "field": "slug"}


def test_a_missing_family_is_refused() -> None:
    error = refusal([{"slug": "x"}])
    assert error.message == "LoRA entry 1 ('x'): family is required, one of: SD1.5, SDXL, PONY, FLUX, SD3, SD1.5-XL."
    assert error.details == {"entry": 0, "field": "family"}


@pytest.mark.parametrize("family", ["SD2", "", 15, ["SDXL"]])
def test_an_unknown_family_is_refused(family: object) -> None:
    assert "family must be one of: SD1.5, SDXL" in refuse_one("family", family=family)


@pytest.mark.parametrize("name", ["", "   ", 5, "n" * 201])
def test_a_bad_display_name_is_refused(name: object) -> None:
    assert "displayName must be a non-empty text" in refuse_one("displayName", displayName=name)


@pytest.mark.parametrize("triggers", [5, {"a": 1}, ["t"] * (MAX_PHRASES + 1)])
def test_triggers_that_are_not_a_list_are_refused(triggers: object) -> None:
    assert "triggers must be a list of at most 50" in refuse_one("triggers", triggers=triggers)


@pytest.mark.parametrize("trigger", [5, None, "t" * 101])
def test_a_trigger_that_is_not_a_short_text_is_refused(trigger: object) -> None:
    assert "triggers must be words or phrases of at most 100 characters" in refuse_one("triggers", triggers=[trigger])


@pytest.mark.parametrize("trigger", ["", "  ", "...", "<lora:x>", "a>b"])
def test_a_trigger_without_a_letter_or_with_angle_brackets_is_refused(trigger: str) -> None:
    message = refuse_one("triggers", triggers=["fine", trigger])
    assert f"triggers holds {trigger!r}, which needs a letter or digit and no '<' or '>'" in message


def test_cognates_that_are_not_a_list_of_objects_are_refused() -> None:
    assert "cognates must be a list" in refuse_one("cognates", cognates={"kitty": "cat"})
    assert "cognates[1] must be an object like" in refuse_one(
        "cognates[1]", cognates=[{"word": "a", "replaceWith": "b"}, "c"]
    )


def test_a_cognate_without_a_word_is_refused() -> None:
    assert "cognates[0].word must be words or phrases" in refuse_one(
        "cognates[0].word", cognates=[{"replaceWith": "b"}]
    )


@pytest.mark.parametrize("replacement", [None, "", " ", "<lora:x:1> cat", "r" * 201, 5])
def test_a_cognate_without_a_usable_replacement_is_refused(replacement: object) -> None:
    message = refuse_one("cognates[0].replaceWith", cognates=[{"word": "kitty", "replaceWith": replacement}])
    assert "cognates[0].replaceWith must be a non-empty text of at most 200 characters" in message


@pytest.mark.parametrize("weight", ["0.8", True, float("nan"), float("inf"), [1]])
def test_a_default_weight_that_is_not_a_number_is_refused(weight: object) -> None:
    assert "defaultWeight must be a number" in refuse_one("defaultWeight", defaultWeight=weight)


@pytest.mark.parametrize("weight", [0, 0.0, 10.5, -11])
def test_a_default_weight_of_zero_or_far_out_is_refused(weight: float) -> None:
    assert "defaultWeight must be between -10 and 10, and not 0" in refuse_one("defaultWeight", defaultWeight=weight)


@pytest.mark.parametrize("visibility", ["secret", 3, True])
def test_an_unknown_visibility_is_refused(visibility: object) -> None:
    assert "visibility must be one of: public, private, allowed" in refuse_one("visibility", visibility=visibility)


@pytest.mark.parametrize("visibility", ["private", "allowed"])
def test_a_private_or_shared_lora_without_an_owner_is_refused(visibility: str) -> None:
    assert f"ownerId is required for a {visibility} LoRA" in refuse_one("ownerId", visibility=visibility)


@pytest.mark.parametrize("owner", ["", "  ", 12, "o" * 129])
def test_a_bad_owner_is_refused(owner: object) -> None:
    assert "ownerId must be an account id" in refuse_one("ownerId", ownerId=owner)


@pytest.mark.parametrize("allowed", ["acc-2", [""], [5], {"acc-2": True}])
def test_allowed_accounts_that_are_not_a_list_of_ids_are_refused(allowed: object) -> None:
    assert "allowedAccounts must be a list of account ids" in refuse_one("allowedAccounts", allowedAccounts=allowed)


@pytest.mark.parametrize("enabled", ["yes", 1, 0])
def test_an_enabled_flag_that_is_not_a_boolean_is_refused(enabled: object) -> None:
    assert "enabled must be true or false" in refuse_one("enabled", enabled=enabled)


@pytest.mark.parametrize("count", [-1, 1.5, "3", True])
def test_a_usage_count_that_is_not_a_whole_number_is_refused(count: object) -> None:
    assert "usageCount must be a whole number, 0 or more" in refuse_one("usageCount", usageCount=count)


def test_the_entry_is_named_by_its_slug_when_it_has_one() -> None:
    error = refusal([{"slug": "my-lora", "family": "nope"}])
    assert error.message.startswith("LoRA entry 1 ('my-lora'): family")
