"""One upload limit for every door: a file of MAX_UPLOAD_BYTES is taken, one byte more is refused."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from noema.domain.errors import InvalidInput
from noema.domain.inputs import MAX_UPLOAD_BYTES, validate_inputs
from noema.domain.runs import OutputKind
from noema.domain.tools import InputType, PrimaryInput, Tool, ToolInput
from noema.services import media_inputs
from tests.fakes.scripted_backend import ScriptedBackend

README = Path(__file__).resolve().parents[2] / "README.md"
IMAGE = ToolInput("input_image", InputType.IMAGE, required=True)
TOOL = Tool(
    id="dep-1",
    command="upscale",
    display_name="upscale",
    description="",
    inputs=(IMAGE,),
    primary_input=PrimaryInput.IMAGE,
    output_kind=OutputKind.IMAGE,
    deployment_id="dep-1",
    machine_id=None,
    gpu="A10G",
    rate_nanos_per_second=337_000,
)


def _png(size: int) -> str:
    return media_inputs.data_uri("image/png", b"\x89PNG\r\n\x1a\n" + bytes(size - 8))


async def test_a_file_at_the_limit_passes_validation_and_is_uploaded() -> None:
    inputs = validate_inputs(TOOL, {"input_image": _png(MAX_UPLOAD_BYTES)}, rng=random.Random(1))
    sent = await media_inputs.upload(ScriptedBackend([]), TOOL, inputs)
    assert sent == {"input_image": "https://files.test/input.png"}


async def test_a_file_one_byte_over_the_limit_is_refused_with_the_limit_in_words() -> None:
    inputs = validate_inputs(TOOL, {"input_image": _png(MAX_UPLOAD_BYTES + 1)}, rng=random.Random(1))
    with pytest.raises(InvalidInput, match="larger than 20 MB"):
        await media_inputs.upload(ScriptedBackend([]), TOOL, inputs)


def test_a_data_uri_far_over_the_limit_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(InvalidInput, match="a file may be at most 20 MB"):
        validate_inputs(TOOL, {"input_image": _png(MAX_UPLOAD_BYTES + 1024)}, rng=random.Random(1))


def test_the_readme_states_the_limit_the_code_keeps() -> None:
    stated = re.search(r"\*\*Upload limit:\*\* a file given to a run may be at most (\d+) MiB", README.read_text())
    assert stated is not None and int(stated.group(1)) * 2**20 == MAX_UPLOAD_BYTES
