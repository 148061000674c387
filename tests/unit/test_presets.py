"""Presets as the operator writes them: parsed strictly, routed by features, ordered by the selection rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from noema.config import ConfigError, load_settings
from noema.domain.errors import InvalidInput
from noema.domain.presets import Selection, order, parse_presets

GOOD = """
[presets.make]
tools = ["a", "b"]
selection = "least_busy"
user_inputs = ["input_text"]
defaults = { steps = 30, width = 1024 }
features = { style = "style_image", pose = "pose_image" }
variants = { style = ["s"], "pose+style" = ["sp"] }
"""


def test_a_preset_file_is_read_with_its_features_and_variants() -> None:
    (make,) = parse_presets(GOOD).values()
    assert make.tools == ("a", "b") and make.selection is Selection.LEAST_BUSY
    assert make.route([]) == ("a", "b") and make.route(["style"]) == ("s",) and make.route(["Style", "pose"]) == ("sp",)
    assert make.inputs({"input_text": "x"}, [], takes=["input_text", "steps"]) == {"steps": 30, "input_text": "x"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[presets.make\n", "not valid TOML"),
        ('[presets.Make]\ntools = ["a"]', "command name"),
        ("[presets.make]\ntools = []", "non-empty list"),
        ('[presets.make]\ntools = ["a"]\nselection = "random"', "first, round_robin or least_busy"),
        ('[presets.make]\ntools = ["a"]\ncolour = 1', "unknown setting 'colour'"),
        ('[presets.make]\ntools = ["a"]\nvariants = { canny = ["c"] }', "names a feature not in [features]"),
        ('[presets.make]\ntools = ["a"]\nuser_inputs = "input_text"', "user_inputs must be a list"),
        ("[other]\nx = 1", "only [presets.<command>] tables"),
    ],
)
def test_a_bad_preset_file_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_presets(text)


def test_a_bad_presets_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "presets.toml"
    bad.write_text("[presets.make]\ntools = 3\n")
    with pytest.raises(ConfigError, match="NOEMA_PRESETS_FILE: preset 'make': tools"):
        load_settings({"NOEMA_PRESETS_FILE": str(bad)})
    with pytest.raises(ConfigError, match="NOEMA_PRESETS_FILE: cannot read"):
        load_settings({"NOEMA_PRESETS_FILE": str(tmp_path / "missing.toml")})


def test_features_a_preset_lacks_and_inputs_it_keeps_closed_are_refused_by_name() -> None:
    (make,) = parse_presets(GOOD).values()
    with pytest.raises(InvalidInput, match="no feature 'canny'; it has: pose, style"):
        make.route(["canny"])
    with pytest.raises(InvalidInput, match="no variant for pose"):
        make.route(["pose"])
    with pytest.raises(InvalidInput, match="does not let you set 'steps'"):
        make.inputs({"steps": 3}, [])
    with pytest.raises(InvalidInput, match="needs an image in 'style_image'"):
        make.inputs({"input_text": "x"}, ["style"])
    assert make.inputs({"input_text": "x", "style_image": "data:"}, ["style"])["style_image"] == "data:"


def test_selection_orders_every_candidate_and_keeps_the_rest_as_fallbacks() -> None:
    tools = ("a", "b", "c")
    assert order(tools, Selection.FIRST, turn=5, busy={}) == ["a", "b", "c"]
    assert [order(tools, Selection.ROUND_ROBIN, turn=t, busy={})[0] for t in range(4)] == ["a", "b", "c", "a"]
    assert order(tools, Selection.LEAST_BUSY, turn=0, busy={"a": 2, "b": 0, "c": 1}) == ["b", "c", "a"]
    assert order(tools, Selection.LEAST_BUSY, turn=0, busy={}) == ["a", "b", "c"]  # ties keep the written order


def test_the_example_presets_file_in_the_repository_is_valid() -> None:
    from pathlib import Path

    example = Path(__file__).parents[2] / "examples" / "presets.toml"
    presets = parse_presets(example.read_text())
    assert set(presets) == {"make", "loop"}
    make = presets["make"]
    assert make.defaults["width"] == 1024 and make.defaults["steps"] == 30 and make.defaults["cfg"] == 7
    assert make.route(["style"]) == ("img2img",)
