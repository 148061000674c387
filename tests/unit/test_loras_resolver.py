"""The LoRA resolver, rule by rule: trigger words and tags become ``<lora:slug:weight>`` tags."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from noema.domain.errors import InvalidInput
from noema.domain.loras import (
    ACCEPTS,
    AppliedSource,
    Cognate,
    Family,
    Lora,
    Resolution,
    Visibility,
    WeightBounds,
    resolve,
)


def lora(
    slug: str,
    *triggers: str,
    cognates: Sequence[tuple[str, str]] = (),
    weight: float = 1.0,
    family: Family = Family.SDXL,
    owner: str | None = None,
    visibility: Visibility = Visibility.PUBLIC,
    allowed: frozenset[str] = frozenset(),
    enabled: bool = True,
) -> Lora:
    return Lora(
        slug=slug,
        display_name=slug.title(),
        triggers=triggers,
        cognates=tuple(Cognate(word, replace_with) for word, replace_with in cognates),
        default_weight=weight,
        family=family,
        owner_id=owner,
        visibility=visibility,
        allowed_accounts=allowed,
        enabled=enabled,
    )


CAT = lora("cat", "cat", cognates=[("kitty", "small cat")])
DOG = lora("dog", "dog", "puppy", weight=0.8)
BLUE_HAIR = lora("blue-hair", "blue hair")
HAIR = lora("hair", "hair")
REGISTRY = (CAT, DOG, BLUE_HAIR, HAIR)


def run(
    prompt: str,
    loras: Sequence[Lora] = REGISTRY,
    *,
    base_model: Family | str | None = Family.SDXL,
    account_id: str | None = "acc-1",
    max_loras: int = 5,
    bounds: WeightBounds | None = None,
    max_prompt_chars: int = 100_000,
) -> Resolution:
    return resolve(
        prompt, base_model, account_id, loras, max_loras=max_loras, bounds=bounds, max_prompt_chars=max_prompt_chars
    )


def applied(result: Resolution) -> list[tuple[str, float]]:
    return [(a.slug, a.weight) for a in result.applied]


# --- matching -----------------------------------------------------------------------------------


def test_a_trigger_word_gets_its_tag_in_front_of_it() -> None:
    result = run("a cat on a mat")
    assert result.prompt == "a <lora:cat:1> cat on a mat"
    assert applied(result) == [("cat", 1.0)]
    assert result.warnings == ()


def test_a_prompt_without_triggers_is_unchanged() -> None:
    result = run("a photo of the sea, 4k")
    assert (result.prompt, result.applied, result.warnings) == ("a photo of the sea, 4k", (), ())


def test_matching_ignores_case_and_keeps_the_word_as_written() -> None:
    assert run("a CaT").prompt == "a <lora:cat:1> CaT"


@pytest.mark.parametrize("prompt", ["catalog", "bobcat", "cat2", "cat_food", "concatenate", "scatter"])
def test_a_trigger_inside_a_longer_word_does_not_match(prompt: str) -> None:
    result = run(prompt)
    assert (result.prompt, result.applied) == (prompt, ())


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("(cat),", "(<lora:cat:1> cat),"),
        ("cat's toy", "<lora:cat:1> cat's toy"),
        ("dog-cat", "<lora:dog:0.8> dog-<lora:cat:1> cat"),
        ("cat.", "<lora:cat:1> cat."),
    ],
)
def test_a_trigger_next_to_punctuation_matches(prompt: str, expected: str) -> None:
    assert run(prompt).prompt == expected


def test_multi_word_trigger_wins_over_single_word() -> None:
    result = run("long blue hair")
    assert result.prompt == "long <lora:blue-hair:1> blue hair"
    assert applied(result) == [("blue-hair", 1.0)]


def test_a_single_word_still_matches_where_the_multi_word_trigger_does_not() -> None:
    result = run("blue hair and red hair")
    assert result.prompt == "<lora:blue-hair:1> blue hair and red <lora:hair:1> hair"


def test_multi_word_trigger_matches_across_any_whitespace() -> None:
    assert run("Blue \t\nHair").prompt == "<lora:blue-hair:1> Blue \t\nHair"


def test_multi_word_trigger_wins_over_multi_word_cognate() -> None:
    trigger = lora("night", "night sky")
    cognate = lora("stars", cognates=[("night sky", "starry heavens")])
    result = run("a night sky", [cognate, trigger])
    assert result.prompt == "a <lora:night:1> night sky"
    assert applied(result) == [("night", 1.0)]


def test_multi_word_cognate_wins_over_single_word_trigger() -> None:
    sky = lora("sky", "sky")
    stars = lora("stars", cognates=[("night sky", "starry heavens")])
    result = run("a night sky", [sky, stars])
    assert result.prompt == "a <lora:stars:1> starry heavens"
    assert applied(result) == [("stars", 1.0)]


def test_a_multi_word_trigger_found_first_beats_a_cognate_that_would_overlap_it() -> None:
    trigger = lora("blue-sky", "blue sky")
    cognate = lora("night", cognates=[("sky tonight", "night sky")])
    assert run("blue sky tonight", [cognate, trigger]).prompt == "<lora:blue-sky:1> blue sky tonight"


def test_the_longest_multi_word_trigger_wins_at_one_place() -> None:
    dye = lora("dye", "blue hair dye")
    result = run("blue hair dye", [BLUE_HAIR, dye])
    assert result.prompt == "<lora:dye:1> blue hair dye"


def test_a_single_word_trigger_wins_over_the_same_word_as_a_cognate() -> None:
    trigger = lora("kitty", "kitty")
    result = run("kitty", [CAT, trigger])
    assert result.prompt == "<lora:kitty:1> kitty"


# --- weights written by the user -----------------------------------------------------------------


def test_user_weight_overrides_the_default_weight() -> None:
    result = run("a dog:0.5 runs")
    assert result.prompt == "a <lora:dog:0.5> dog runs"
    assert applied(result) == [("dog", 0.5)]


@pytest.mark.parametrize(("written", "weight"), [("+.25", 0.25), ("1.", 1.0), ("-0.5", -0.5), ("1.23456", 1.235)])
def test_user_weights_are_read_in_any_plain_decimal_form(written: str, weight: float) -> None:
    assert applied(run(f"cat:{written}")) == [("cat", weight)]


def test_a_user_weight_on_a_later_occurrence_applies_at_the_first() -> None:
    result = run("cat, sitting cat:0.6")
    assert result.prompt == "<lora:cat:0.6> cat, sitting cat"
    assert applied(result) == [("cat", 0.6)]


def test_the_first_user_weight_written_wins_and_the_others_are_dropped() -> None:
    result = run("cat:0.4 and cat:0.9")
    assert result.prompt == "<lora:cat:0.4> cat and cat"
    assert applied(result) == [("cat", 0.4)]


def test_a_weight_on_a_cognate_sets_the_weight_of_its_lora() -> None:
    assert run("kitty:0.3").prompt == "<lora:cat:0.3> small cat"


def test_weight_zero_disables_the_trigger_and_stays_as_written() -> None:
    result = run("a cat:0 and a dog")
    assert result.prompt == "a cat:0 and a <lora:dog:0.8> dog"
    assert applied(result) == [("dog", 0.8)]


def test_weight_zero_on_a_later_occurrence_disables_the_lora_everywhere() -> None:
    result = run("cat on cat:0")
    assert (result.prompt, result.applied) == ("cat on cat:0", ())


def test_weight_zero_on_a_cognate_keeps_the_cognate_word() -> None:
    assert run("kitty:0.0").prompt == "kitty:0.0"


def test_a_weight_glued_to_more_text_is_not_a_weight() -> None:
    assert run("cat:0.75x").prompt == "<lora:cat:1> cat:0.75x"


def test_a_weight_with_a_space_after_the_colon_is_not_a_weight() -> None:
    assert run("cat: 0.5").prompt == "<lora:cat:1> cat: 0.5"


# --- tags already in the prompt -------------------------------------------------------------------


def test_an_existing_tag_is_kept_and_counts_as_applied() -> None:
    result = run("<lora:dog:0.5> a photo")
    assert result.prompt == "<lora:dog:0.5> a photo"
    assert [(a.slug, a.weight, a.source) for a in result.applied] == [("dog", 0.5, AppliedSource.TAG)]
    assert result.warnings == ()


def test_an_existing_tag_without_a_weight_gets_the_default_weight() -> None:
    assert run("<lora:dog> x").prompt == "<lora:dog:0.8> x"


def test_an_existing_tag_is_normalised() -> None:
    assert run("<LoRA: DOG : 0.50 > x").prompt == "<lora:dog:0.5> x"


def test_the_trigger_of_a_tagged_lora_is_not_tagged_again_before_or_after_the_tag() -> None:
    result = run("dog:0.3 <lora:dog:0.5> dog")
    assert result.prompt == "dog <lora:dog:0.5> dog"
    assert applied(result) == [("dog", 0.5)]


def test_an_existing_tag_with_weight_zero_is_kept_but_not_applied() -> None:
    result = run("<lora:cat:0> a cat")
    assert (result.prompt, result.applied, result.warnings) == ("<lora:cat:0> a cat", (), ())


def test_a_tag_of_an_unknown_slug_is_removed_with_a_warning() -> None:
    result = run("a <lora:nope:1> cat")
    assert result.prompt == "a <lora:cat:1> cat"
    assert applied(result) == [("cat", 1.0)]
    assert result.warnings == ("Removed the tag of an unknown LoRA 'nope'.",)


def test_a_tag_of_someone_elses_private_lora_is_removed_as_if_unknown() -> None:
    secret = lora("secret", "secret", owner="acc-2", visibility=Visibility.PRIVATE)
    result = run("<lora:secret:1> x", [secret])
    assert result.prompt == "x"
    assert result.warnings == ("Removed the tag of an unknown LoRA 'secret'.",)


def test_a_tag_of_a_disabled_lora_is_removed_with_a_warning() -> None:
    result = run("<lora:cat:1> x", [lora("cat", "cat", enabled=False)])
    assert result.prompt == "x"
    assert result.warnings == ("Removed the tag of LoRA 'cat': it is switched off.",)


def test_a_tag_of_another_family_is_removed_with_a_warning() -> None:
    result = run("<lora:cat:1> x", [lora("cat", "cat", family=Family.FLUX)])
    assert result.prompt == "x"
    assert result.warnings == ("Removed the tag of LoRA 'cat': it is for FLUX models, this tool uses SDXL.",)


@pytest.mark.parametrize("tag", ["<lora:>", "<lora:cat:abc>", "<lora:cat:1:2>", "<lora::1>", "<lora:cat:1e3>"])
def test_a_malformed_tag_is_removed_with_a_warning(tag: str) -> None:
    result = run(f"a {tag} b")
    assert result.prompt == "a b"
    assert result.applied == ()
    assert result.warnings == (f"Removed the malformed LoRA tag {tag!r}; write <lora:name:0.8>.",)


def test_an_unfinished_tag_is_removed_with_a_warning_and_spares_the_words_after_it() -> None:
    result = run("a <lora:cat:1 b c")
    assert result.prompt == "a b c"
    assert result.warnings == ("Removed the unfinished LoRA tag '<lora:cat:1'.",)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a<lora:x:1>b", "a b"),
        ("a <lora:x:1>  b", "a b"),
        ("<lora:x:1> b", "b"),
        ("a, <lora:x:1>", "a,"),
        ("a <lora:x:1>\nb", "a\nb"),
        ("a\t<lora:x:1> <lora:y>", "a"),
    ],
)
def test_removing_a_tag_keeps_the_words_either_side_apart(prompt: str, expected: str) -> None:
    assert run(prompt).prompt == expected


def test_a_lora_tagged_twice_keeps_the_first_tag() -> None:
    result = run("<lora:cat:0.5> <lora:CAT:1> x")
    assert result.prompt == "<lora:cat:0.5> x"
    assert applied(result) == [("cat", 0.5)]
    assert result.warnings == ("LoRA 'cat' was given more than once; kept the first.",)


def test_a_trigger_inside_a_tag_is_not_matched() -> None:
    result = run("<lora:dog:1>", [DOG, lora("lora", "lora")])
    assert result.prompt == "<lora:dog:1>"


# --- each LoRA once -------------------------------------------------------------------------------


def test_each_lora_is_applied_once_at_its_first_occurrence() -> None:
    result = run("cat and cat and CAT")
    assert result.prompt == "<lora:cat:1> cat and cat and CAT"
    assert applied(result) == [("cat", 1.0)]


def test_two_triggers_of_one_lora_apply_it_once() -> None:
    result = run("puppy and dog")
    assert result.prompt == "<lora:dog:0.8> puppy and dog"
    assert [a.trigger for a in result.applied] == ["puppy"]


def test_applied_loras_are_listed_in_prompt_order_with_the_word_that_called_them() -> None:
    result = run("Kitty, <lora:hair:0.5> Dog")
    assert [(a.slug, a.trigger, a.source) for a in result.applied] == [
        ("cat", "Kitty", AppliedSource.COGNATE),
        ("hair", "hair", AppliedSource.TAG),
        ("dog", "Dog", AppliedSource.TRIGGER),
    ]


# --- cognates -------------------------------------------------------------------------------------


def test_a_cognate_is_replaced_by_its_replacement_text() -> None:
    result = run("a Kitty sleeps")
    assert result.prompt == "a <lora:cat:1> small cat sleeps"
    assert [(a.slug, a.trigger, a.source) for a in result.applied] == [("cat", "Kitty", AppliedSource.COGNATE)]


def test_later_occurrences_of_a_cognate_keep_their_word() -> None:
    assert run("kitty and kitty").prompt == "<lora:cat:1> small cat and kitty"


def test_a_trigger_in_a_cognates_replacement_calls_its_lora_too() -> None:
    pup = lora("pup", cognates=[("pupper", "fluffy dog")])
    result = run("a pupper", [pup, DOG])
    assert result.prompt == "a <lora:pup:1> fluffy <lora:dog:0.8> dog"
    assert [(a.slug, a.source) for a in result.applied] == [
        ("pup", AppliedSource.COGNATE),
        ("dog", AppliedSource.TRIGGER),
    ]


# --- family ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint", list(Family))
@pytest.mark.parametrize("family", list(Family))
def test_a_lora_applies_only_on_a_checkpoint_of_a_family_that_accepts_it(checkpoint: Family, family: Family) -> None:
    result = run("cat", [lora("cat", "cat", family=family)], base_model=checkpoint)
    assert bool(result.applied) == (family in ACCEPTS[checkpoint])


@pytest.mark.parametrize("checkpoint", [Family.SD15, Family.SDXL])
def test_an_sd15_xl_lora_loads_on_sd15_and_on_sdxl_checkpoints(checkpoint: Family) -> None:
    assert applied(run("cat", [lora("cat", "cat", family=Family.SD15_XL)], base_model=checkpoint)) == [("cat", 1.0)]


@pytest.mark.parametrize("family", [Family.SD15, Family.SDXL])
def test_sd15_and_sdxl_loras_do_not_cross(family: Family) -> None:
    other = Family.SDXL if family is Family.SD15 else Family.SD15
    assert run("cat", [lora("cat", "cat", family=family)], base_model=other).applied == ()


@pytest.mark.parametrize("spelling", ["sdxl", "SDXL 1.0", "sdxl10"])
def test_the_checkpoint_family_may_be_spelled_loosely(spelling: str) -> None:
    assert applied(run("cat", base_model=spelling)) == [("cat", 1.0)]


@pytest.mark.parametrize("checkpoint", [None, "", "mystery-model"])
def test_an_unknown_checkpoint_family_applies_no_lora(checkpoint: str | None) -> None:
    result = run("cat <lora:dog:1>", base_model=checkpoint)
    assert (result.prompt, result.applied) == ("cat", ())
    assert result.warnings[0].startswith("Removed the tag of LoRA 'dog': it is for SDXL models")


# --- visibility and the enabled flag --------------------------------------------------------------


@pytest.mark.parametrize("account", [None, "acc-1", "acc-9"])
def test_a_public_lora_is_usable_by_anyone_including_anonymous_callers(account: str | None) -> None:
    assert applied(run("cat", [lora("cat", "cat", owner="acc-2")], account_id=account)) == [("cat", 1.0)]


@pytest.mark.parametrize(("account", "usable"), [("acc-2", True), ("acc-1", False), ("acc-3", False), (None, False)])
def test_a_private_lora_is_usable_only_by_its_owner(account: str | None, usable: bool) -> None:
    private = lora("cat", "cat", owner="acc-2", visibility=Visibility.PRIVATE, allowed=frozenset({"acc-3"}))
    assert bool(run("cat", [private], account_id=account).applied) is usable


@pytest.mark.parametrize(("account", "usable"), [("acc-2", True), ("acc-3", True), ("acc-1", False), (None, False)])
def test_an_allowed_lora_is_usable_by_its_owner_and_the_listed_accounts(account: str | None, usable: bool) -> None:
    shared = lora("cat", "cat", owner="acc-2", visibility=Visibility.ALLOWED, allowed=frozenset({"acc-3"}))
    assert bool(run("cat", [shared], account_id=account).applied) is usable


def test_a_lora_the_caller_may_not_use_leaves_its_trigger_alone() -> None:
    private = lora("cat", "cat", cognates=[("kitty", "small cat")], owner="acc-2", visibility=Visibility.PRIVATE)
    result = run("a kitty cat", [private])
    assert (result.prompt, result.applied, result.warnings) == ("a kitty cat", (), ())


def test_a_disabled_lora_is_ignored() -> None:
    result = run("a cat", [lora("cat", "cat", enabled=False)])
    assert (result.prompt, result.applied, result.warnings) == ("a cat", (), ())


def test_a_disabled_lora_does_not_hide_the_next_lora_with_the_same_trigger() -> None:
    result = run("a cat", [lora("old-cat", "cat", enabled=False), lora("cat", "cat")])
    assert applied(result) == [("cat", 1.0)]


# --- the cap --------------------------------------------------------------------------------------


def many(count: int) -> list[Lora]:
    return [lora(f"l{i}", f"w{i}") for i in range(count)]


def test_at_most_five_loras_apply_by_default_and_the_rest_are_named_in_a_warning() -> None:
    result = run(" ".join(f"w{i}" for i in range(7)), many(7))
    assert [a.slug for a in result.applied] == ["l0", "l1", "l2", "l3", "l4"]
    assert result.prompt.endswith("<lora:l4:1> w4 w5 w6")
    assert result.warnings == ("At most 5 LoRAs per prompt; left out: l5, l6.",)


def test_the_cap_can_be_configured() -> None:
    result = run("w0 w1 w2", many(3), max_loras=2)
    assert [a.slug for a in result.applied] == ["l0", "l1"]
    assert result.warnings == ("At most 2 LoRAs per prompt; left out: l2.",)


def test_tags_over_the_cap_are_removed_and_the_first_by_position_stay() -> None:
    result = run("w0 <lora:l1:1> <lora:l2:1>", many(3), max_loras=2)
    assert result.prompt == "<lora:l0:1> w0 <lora:l1:1>"
    assert result.warnings == ("At most 2 LoRAs per prompt; left out: l2.",)


def test_switched_off_loras_do_not_count_against_the_cap() -> None:
    result = run("w0:0 <lora:l1:0> w2", many(3), max_loras=1)
    assert result.prompt == "w0:0 <lora:l1:0> <lora:l2:1> w2"
    assert result.warnings == ()


def test_a_cap_of_zero_applies_nothing() -> None:
    result = run("w0 <lora:l1:1>", many(2), max_loras=0)
    assert (result.prompt, result.applied) == ("w0", ())
    assert result.warnings == ("At most 0 LoRAs per prompt; left out: l0, l1.",)


def test_a_long_list_of_left_out_loras_is_shortened() -> None:
    result = run(" ".join(f"w{i}" for i in range(15)), many(15), max_loras=0)
    assert result.warnings == (
        "At most 0 LoRAs per prompt; left out: l0, l1, l2, l3, l4, l5, l6, l7, l8, l9 and 5 more.",
    )


# --- bounds ---------------------------------------------------------------------------------------


def test_a_user_weight_above_the_maximum_is_clamped_with_a_warning() -> None:
    result = run("cat:5")
    assert result.prompt == "<lora:cat:2> cat"
    assert result.warnings == ("Weight '5' for 'cat' is outside -1..2; used 2.",)


def test_a_user_weight_below_the_minimum_is_clamped_with_a_warning() -> None:
    result = run("cat:-3", bounds=WeightBounds(-0.5, 1.5))
    assert applied(result) == [("cat", -0.5)]
    assert result.warnings == ("Weight '-3' for 'cat' is outside -0.5..1.5; used -0.5.",)


def test_a_negative_weight_within_the_bounds_is_kept_for_slider_loras() -> None:
    assert run("cat:-0.7").prompt == "<lora:cat:-0.7> cat"


def test_a_tag_weight_outside_the_bounds_is_clamped_with_a_warning() -> None:
    result = run("<lora:cat:9>")
    assert result.prompt == "<lora:cat:2>"
    assert result.warnings == ("Weight '9' for 'cat' is outside -1..2; used 2.",)


def test_a_default_weight_outside_the_bounds_is_clamped_silently() -> None:
    result = run("cat", [lora("cat", "cat", weight=1.8)], bounds=WeightBounds(0.0, 1.2))
    assert (result.prompt, result.warnings) == ("<lora:cat:1.2> cat", ())


def test_weights_are_rounded_to_three_decimals() -> None:
    assert run("cat:0.12345").prompt == "<lora:cat:0.123> cat"


def test_bounds_finer_than_three_decimals_are_never_exceeded_by_rounding() -> None:
    result = run("cat:5 dog:-5", bounds=WeightBounds(-0.9996, 1.2346))
    assert applied(result) == [("cat", 1.234), ("dog", -0.999)]
    assert result.prompt == "<lora:cat:1.234> cat <lora:dog:-0.999> dog"


@pytest.mark.parametrize(("minimum", "maximum"), [(1.0, 1.0), (2.0, 1.0), (-1.0, 0.0), (0.5, 0.505)])
def test_weight_bounds_must_leave_room_for_a_positive_weight(minimum: float, maximum: float) -> None:
    with pytest.raises(InvalidInput):
        WeightBounds(minimum, maximum)


# --- limits and idempotence -----------------------------------------------------------------------


def test_an_overlong_prompt_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 10 characters"):
        run("a cat on a mat", max_prompt_chars=10)


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(InvalidInput):
        run("cat", max_loras=-1)


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat on a mat",
        "kitty:0.4, blue hair, Dog",
        "cat:0 <lora:dog:3> <lora:x:1> <lora:",
        "blue <lora:x:1> hair",
        "a<lora:nope>cat",
    ],
)
def test_resolving_the_result_again_changes_nothing(prompt: str) -> None:
    once = run(prompt)
    twice = run(once.prompt)
    assert (twice.prompt, applied(twice)) == (once.prompt, applied(once))
    assert all("outside" not in w for w in twice.warnings)
