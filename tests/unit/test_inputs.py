"""A request's inputs: checked, coerced and completed against the tool's schema, or refused clearly."""

from __future__ import annotations

import base64
import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noema.domain.errors import InvalidInput
from noema.domain.inputs import (
    describe_inputs,
    is_public_http_url,
    stands_for_a_file,
    uploaded_file_note,
    validate_inputs,
)
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput
from noema.services.media_inputs import data_uri, storable

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n0000").decode()


def make_tool(*inputs: ToolInput) -> Tool:
    return Tool(
        id="dep-1",
        command="t",
        display_name="t",
        description="",
        inputs=inputs,
        primary_input=PrimaryInput.TEXT,
        output_kind=None,
        deployment_id="dep-1",
        machine_id="m",
        gpu="A10G",
        rate_nanos_per_second=337_000,
    )


PROMPT = ToolInput("input_text", InputType.TEXT, required=True, display_name="Prompt", max_length=4000)
NEGATIVE = ToolInput("negative_prompt", InputType.TEXT, required=False, default="")
SEED = ToolInput("input_seed", InputType.SEED, required=False, default=-1)
WIDTH = ToolInput("width", InputType.SLIDER, required=False, default=512, minimum=256, maximum=1536, integer=True)
STEPS = ToolInput("steps", InputType.INTEGER, required=False, default=20)
STRENGTH = ToolInput("strength", InputType.SLIDER, required=False, default=0.6, minimum=0.0, maximum=1.0)
CFG = ToolInput("cfg", InputType.NUMBER, required=False)
RAW = ToolInput("raw", InputType.BOOLEAN, required=False, default=False)
SAMPLER = ToolInput("sampler", InputType.ENUM, required=False, default="euler", options=("euler", "DPM++ 2M", "ddim"))
IMAGE = ToolInput("input_image", InputType.IMAGE, required=True, display_name="Image")
TXT2IMG = make_tool(PROMPT, NEGATIVE, SEED, WIDTH, STEPS, SAMPLER)


def check(spec: ToolInput, value: Any, *, rng: random.Random | None = None) -> Any:
    return validate_inputs(make_tool(spec), {spec.name: value}, rng=rng or random.Random(0))[spec.name]


def refuse(spec: ToolInput, value: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(make_tool(spec), {spec.name: value}, rng=random.Random(0))
    assert caught.value.details == {"field": spec.name}
    return caught.value


# --- the whole request ------------------------------------------------------------------------


def test_defaults_are_filled_in_for_omitted_optional_inputs() -> None:
    values = validate_inputs(TXT2IMG, {"input_text": "a fox"}, rng=random.Random(7))
    assert values == {
        "input_text": "a fox",
        "negative_prompt": "",
        "input_seed": random.Random(7).randint(0, 2**32 - 1),
        "width": 512,
        "steps": 20,
        "sampler": "euler",
    }


def test_an_omitted_optional_input_without_a_default_is_left_out() -> None:
    assert validate_inputs(make_tool(PROMPT, CFG), {"input_text": "x"}, rng=random.Random(0)) == {"input_text": "x"}


def test_a_none_value_counts_as_omitted() -> None:
    values = validate_inputs(TXT2IMG, {"input_text": "x", "width": None}, rng=random.Random(0))
    assert values["width"] == 512


def test_an_unknown_input_is_refused_and_the_known_ones_are_listed() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(TXT2IMG, {"input_text": "x", "foo": 1}, rng=random.Random(0))
    assert caught.value.message == (
        "Unknown input 'foo'; this tool takes: input_text, negative_prompt, input_seed, width, steps, sampler."
    )
    assert caught.value.details == {"field": "foo"}


def test_a_missing_required_input_is_named_by_display_name_and_name() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(TXT2IMG, {"width": 512}, rng=random.Random(0))
    assert caught.value.message == "The input 'Prompt' (input_text) is required."
    assert caught.value.details == {"field": "input_text"}


@pytest.mark.parametrize("blank", ["", "   ", "\x00\x01", "\n\t "])
def test_a_required_text_that_is_blank_counts_as_missing(blank: str) -> None:
    assert refuse(PROMPT, blank).message == "The input 'Prompt' (input_text) is required."


def test_the_raw_inputs_are_never_mutated_and_a_new_dict_is_returned() -> None:
    raw = {"input_text": "  a fox  ", "width": "768", "input_seed": -1}
    before = copy.deepcopy(raw)
    values = validate_inputs(TXT2IMG, raw, rng=random.Random(0))
    assert raw == before
    assert values is not raw
    assert values["input_text"] == "a fox"


def test_inputs_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(InvalidInput, match="object"):
        validate_inputs(TXT2IMG, ["input_text"], rng=random.Random(0))  # type: ignore[arg-type]


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a red fox", "a red fox"),
        ("  padded  ", "padded"),
        ("two\nlines\tand tab", "two\nlines\tand tab"),
        ("bell\x07 and nul\x00 and del\x7f", "bell and nul and del"),
        ("crlf\r\nline", "crlf\nline"),
        (42, "42"),
        (1.5, "1.5"),
        ("ünïcödé ✨", "ünïcödé ✨"),
    ],
)
def test_text_is_accepted_stripped_and_cleaned_of_control_characters(value: Any, expected: str) -> None:
    assert check(PROMPT, value) == expected


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}, float("nan")])
def test_text_that_is_not_text_is_refused(value: Any) -> None:
    assert "must be text" in refuse(PROMPT, value).message


def test_a_huge_prompt_is_refused_with_the_limit() -> None:
    assert "at most 4000 characters (got 4001)" in refuse(PROMPT, "x" * 4001).message
    assert "at most 4000 characters" in refuse(PROMPT, "x" * 10_000_000).message
    assert check(PROMPT, "x" * 4000) == "x" * 4000


def test_a_text_without_its_own_limit_has_the_default_4000() -> None:
    assert "at most 4000" in refuse(NEGATIVE, "y" * 4001).message


def test_an_optional_text_may_be_empty() -> None:
    assert check(NEGATIVE, "  ") == ""


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (WIDTH, 768, 768),
        (WIDTH, "768", 768),
        (WIDTH, 768.0, 768),
        (WIDTH, " 1e3 ", 1000),
        (WIDTH, 256, 256),
        (WIDTH, 1536, 1536),
        (STEPS, -5, -5),
        (STEPS, "30", 30),
        (STRENGTH, "0.25", 0.25),
        (STRENGTH, 1, 1.0),
        (STRENGTH, 0, 0.0),
        (CFG, "7.5", 7.5),
        (CFG, -1e6, -1e6),
        (CFG, "1e-999999999", 0.0),
        (STEPS, "0e-999999999", 0),
    ],
)
def test_numbers_are_accepted_and_coerced(spec: ToolInput, value: Any, expected: float) -> None:
    result = check(spec, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "reason"),
    [
        (WIDTH, 255, "must be between 256 and 1536"),
        (WIDTH, "2000", "must be between 256 and 1536"),
        (WIDTH, 512.5, "must be a whole number"),
        (STEPS, "3.2", "must be a whole number"),
        (STEPS, 10**30, "too large"),
        (STEPS, "1e999999999", "too large"),
        (STRENGTH, 1.01, "must be between 0 and 1"),
        (STRENGTH, True, "not true/false"),
        (CFG, float("nan"), "finite number"),
        (CFG, float("inf"), "finite number"),
        (CFG, "NaN", "finite number"),
        (CFG, "-Infinity", "finite number"),
        (CFG, "abc", "must be a number"),
        (CFG, "", "finite number"),
        (CFG, [1], "finite number"),
        (CFG, "1e999999", "too large"),
        (CFG, "9" * 500, "finite number"),
        (SEED, "1e999999999", "too large"),
    ],
)
def test_bad_numbers_are_refused_with_a_clear_message(spec: ToolInput, value: Any, reason: str) -> None:
    assert reason in refuse(spec, value).message


def test_a_bound_is_compared_as_the_decimal_the_operator_wrote() -> None:
    low = ToolInput("x", InputType.NUMBER, required=True, minimum=0.1, maximum=0.3)
    assert check(low, "0.1") == 0.1
    assert check(low, "0.3") == 0.3


def test_a_number_with_only_a_minimum_says_at_least() -> None:
    spec = ToolInput("x", InputType.INTEGER, required=True, minimum=1)
    assert "must be at least 1" in refuse(spec, 0).message


# --- seeds ------------------------------------------------------------------------------------


def test_seed_minus_one_draws_from_the_given_rng() -> None:
    expected = random.Random(42).randint(0, 2**32 - 1)
    assert check(SEED, -1, rng=random.Random(42)) == expected
    assert check(SEED, "-1", rng=random.Random(42)) == expected


def test_a_missing_seed_with_no_default_is_random_not_required() -> None:
    no_default = ToolInput("seed", InputType.SEED, required=False)
    values = validate_inputs(make_tool(no_default), {}, rng=random.Random(3))
    assert values == {"seed": random.Random(3).randint(0, 2**32 - 1)}


def test_a_fixed_seed_default_is_kept() -> None:
    fixed = ToolInput("seed", InputType.SEED, required=False, default=1234)
    assert validate_inputs(make_tool(fixed), {}, rng=random.Random(0)) == {"seed": 1234}


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (2**64 - 1, 2**64 - 1), ("123", 123), (7.0, 7)])
def test_seeds_in_range_are_kept(value: Any, expected: int) -> None:
    assert check(SEED, value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-2, "-1 (random)"), (2**64, "-1 (random)"), (1.5, "whole"), ("x", "number"), (False, "true/false")],
)
def test_bad_seeds_are_refused(value: Any, reason: str) -> None:
    assert reason in refuse(SEED, value).message


# --- booleans and enums -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("Yes", True),
        ("no", False),
        (" on ", True),
        ("off", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_booleans_accept_the_usual_spellings(value: Any, expected: bool) -> None:
    assert check(RAW, value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, "", 0.5, [True]])
def test_other_booleans_are_refused(value: Any) -> None:
    assert "must be true or false" in refuse(RAW, value).message


@pytest.mark.parametrize(
    ("value", "expected"), [("ddim", "ddim"), ("DDIM", "ddim"), ("dpm++ 2m", "DPM++ 2M"), (" euler ", "euler")]
)
def test_an_enum_matches_exactly_then_case_insensitively(value: str, expected: str) -> None:
    assert check(SAMPLER, value) == expected


def test_an_enum_outside_its_options_lists_them() -> None:
    assert refuse(SAMPLER, "heun").message == "The input 'sampler' must be one of: euler, DPM++ 2M, ddim."


def test_an_enum_prefers_the_exact_match_when_options_differ_only_in_case() -> None:
    spec = ToolInput("mode", InputType.ENUM, required=True, options=("Fast", "fast"))
    assert check(spec, "fast") == "fast"
    assert "must be one of" in refuse(spec, "FAST").message


def test_an_enum_without_known_options_takes_any_non_empty_choice() -> None:
    spec = ToolInput("mode", InputType.ENUM, required=False)
    assert check(spec, "anything") == "anything"
    assert "must not be empty" in refuse(spec, " ").message


# --- media ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://cdn.example.com/a.png",
        "http://images.example.org:8080/x/y.jpg?size=2#frag",
        "https://8.8.8.8/x.png",
        "https://[2606:4700::1111]/x.png",
        "https://bücher.example/x.png",
        PNG,
        "data:image/webp;base64,UklGRg==",
    ],
)
def test_public_urls_and_image_data_uris_are_accepted_unchanged(value: str) -> None:
    assert check(IMAGE, value) == value


@pytest.mark.parametrize(
    "value",
    [
        "http://localhost/x.png",
        "http://LOCALHOST./x.png",
        "http://api.localhost/x.png",
        "http://127.0.0.1/x.png",
        "http://127.1/x.png",
        "http://2130706433/x.png",
        "http://0x7f.0.0.1/x.png",
        "http://0.0.0.0/x.png",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://10.0.0.5/x.png",
        "http://172.16.3.4/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/x.png",
        "http://[fe80::1]/x.png",
        "http://[fd00::1]/x.png",
        "http://224.0.0.1/x.png",
        "http://printer.local/x.png",
        "http://metadata.google.internal/x",
        "http://intranet/x.png",
        "http://user:pass@cdn.example.com/x.png",
        "http://user@cdn.example.com/x.png",
        "http://cdn.example.com\\@127.0.0.1/x.png",
        "ftp://cdn.example.com/x.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://cdn.example.com/a b.png",
        "https://cdn.example.com/\nx.png",
        "https://cdn.example.com:99999/x.png",
        "https://[::1/x.png",
        "https:///x.png",
        "https://a..b/x.png",
        "https://cdn.example.com/" + "x" * 2048,
        "cdn.example.com/x.png",
    ],
)
def test_local_private_and_malformed_urls_are_refused(value: str) -> None:
    assert "must be a public http(s) URL" in refuse(IMAGE, value).message
    assert not is_public_http_url(value)


@pytest.mark.parametrize("value", [42, True, ["https://cdn.example.com/x.png"], "", "   "])
def test_media_that_is_not_a_url_string_is_refused(value: Any) -> None:
    assert "must be a public http(s) URL" in refuse(IMAGE, value).message


@pytest.mark.parametrize(
    ("spec_type", "uri", "ok"),
    [
        (InputType.IMAGE, PNG, True),
        (InputType.IMAGE, "data:video/mp4;base64,AAAA", False),
        (InputType.VIDEO, "data:video/mp4;base64,AAAA", True),
        (InputType.VIDEO, "data:image/gif;base64,R0lGOD==", True),
        (InputType.VIDEO, "data:image/png;base64,AAAA", False),
        (InputType.AUDIO, "data:audio/mpeg;base64,AAAA", True),
        (InputType.AUDIO, "data:image/png;base64,AAAA", False),
        (InputType.FILE, "data:application/zip;base64,UEsDBA==", True),
        (InputType.LORA, "data:application/octet-stream;base64,AAAA", True),
        (InputType.CHECKPOINT, "https://models.example.com/sdxl.safetensors", True),
        (InputType.IMAGE, "data:image/png;name=a.png;base64,AAAA", True),
    ],
)
def test_a_data_uri_must_match_the_inputs_kind(spec_type: InputType, uri: str, ok: bool) -> None:
    spec = ToolInput("media", spec_type, required=True)
    if ok:
        assert check(spec, uri) == uri
    else:
        assert f"must be {spec_type.value} data" in refuse(spec, uri).message


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("data:image/png,rawbytes", "base64"),
        ("data:;base64,AAAA", "base64"),
        ("data:image/png;base64,", "base64"),
        ("data:image/png;base64,!!!!", "base64"),
        ("data:image/png;base64," + "A" * (30 * 1024 * 1024), "too large"),
    ],
)
def test_malformed_or_huge_data_uris_are_refused(uri: str, reason: str) -> None:
    assert reason in refuse(IMAGE, uri).message


def test_an_unusable_media_default_is_not_sent_so_the_backend_keeps_its_own() -> None:
    spec = ToolInput("input_image", InputType.IMAGE, required=False, default="example.png")
    assert validate_inputs(make_tool(spec), {}, rng=random.Random(0)) == {}


# --- help texts -------------------------------------------------------------------------------


def test_describe_inputs_gives_one_short_line_per_input() -> None:
    tool = make_tool(PROMPT, NEGATIVE, SEED, WIDTH, STRENGTH, CFG, RAW, SAMPLER, IMAGE)
    assert describe_inputs(tool).splitlines() == [
        "input_text (text, required) — Prompt",
        "negative_prompt (text, optional)",
        "input_seed (seed, default random)",
        "width (integer 256–1536, default 512)",
        "strength (number 0–1, default 0.6)",
        "cfg (number, optional)",
        "raw (yes/no, default no)",
        "sampler (one of euler/DPM++ 2M/ddim, default euler)",
        "input_image (image, required) — Image",
    ]


def test_a_tool_without_inputs_describes_nothing() -> None:
    assert describe_inputs(make_tool()) == ""


# --- the property -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)
interesting_strings = st.sampled_from(
    [
        "-1",
        "1e999999999",
        "1e-999999999",
        "NaN",
        "true",
        "euler",
        "https://cdn.example.com/x.png",
        "http://[::1]/",
        PNG,
        "data:x",
        " ",
    ]
)
EVERYTHING = make_tool(
    PROMPT,
    NEGATIVE,
    SEED,
    WIDTH,
    STEPS,
    STRENGTH,
    CFG,
    RAW,
    SAMPLER,
    IMAGE,
    ToolInput("clip", InputType.VIDEO, required=False),
    ToolInput("lora", InputType.LORA, required=False),
)
NAMES = [spec.name for spec in EVERYTHING.inputs] + ["unknown"]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), json_values | interesting_strings, max_size=8))
def test_validate_inputs_either_returns_or_raises_invalid_input(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    error: InvalidInput | None = None
    try:
        values = validate_inputs(EVERYTHING, raw, rng=random.Random(0))
    except InvalidInput as exc:
        error = exc
    if error is None:
        assert set(values) <= {spec.name for spec in EVERYTHING.inputs}
        assert values["input_text"]
    else:
        assert error.message
        assert error.details and "field" in error.details
    assert raw == before  # deepcopy shares float objects, so even NaN compares equal by identity


def test_a_stored_file_is_told_from_text_by_its_link_or_its_upload_note() -> None:
    note = storable({"image": data_uri("image/png", b"x" * 4096), "prompt": "a cat"})["image"]
    assert note == uploaded_file_note(4096) == "(uploaded file, 4 KB)"
    files = [note, "https://cdn.example/a.png", "http://host/a.png", data_uri("image/png", b"x")]
    assert all(stands_for_a_file(v) for v in files)
    texts = ["a cat", "httpd logo, flat", "(uploaded by me) a dog", "", 7, None]
    assert not any(stands_for_a_file(v) for v in texts)
