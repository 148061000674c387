"""Progress speaks to people: node class names become words, and the words end with the run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from noema.adapters.backends.sandbox.catalog_data import CATALOG
from noema.domain.generation import GenerationStatus as S
from noema.domain.progress_words import humane, node_words, progress_text
from noema.domain.runs import OutputKind, RunOutput, RunStatus, RunUpdate
from tests.fakes.generations import T0, make_generation


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Executing KSampler", "Sampling"),
        ("Executing KSamplerAdvanced 12/30", "Sampling 12/30"),
        ("Executing SaveImage", "Saving the image"),
        ("Executing CheckpointLoaderSimple", "Loading the model"),
        ("Executing ComfyUIDeployExternalNumberInt", "Reading your inputs"),
        ("Executing CLIPTextEncode", "Reading the prompt"),
        ("Executing VAEDecode", "Decoding the image"),
        ("Executing SomeCustomNodeXYZ", "Working"),
        ("Error: CUDA out of memory", "Error: CUDA out of memory"),
        ("queued on the GPU server: 2 ahead of you", "queued on the GPU server: 2 ahead of you"),
    ],
)
def test_a_backend_live_status_is_put_into_words(raw: str, shown: str) -> None:
    assert humane(raw) == shown


def test_sampler_steps_are_counted_and_no_node_means_no_text() -> None:
    assert progress_text("KSampler", (12, 30)) == "Sampling 12/30"
    assert progress_text("SaveImage", None) == "Saving the image"
    assert progress_text(None, (1, 2)) is None


def test_no_node_of_a_sandbox_tool_shows_its_class_name() -> None:
    classes = {c for d in CATALOG.deployments for c in d.execution_order()}
    assert "ComfyUIDeployExternalNumberInt" in classes
    for class_type in classes:
        words = node_words(class_type)
        assert class_type not in words and not any(c.isupper() for c in words[1:]), (class_type, words)


def test_the_generation_keeps_words_while_running_and_clears_them_when_the_run_ends() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    g.apply(RunUpdate(run_id="run-1", progress=0.2, live_status="Executing ComfyUIDeployExternalNumberInt"), T0)
    assert g.live_status == "Reading your inputs"
    g.apply(RunUpdate(run_id="run-1", progress=0.6, live_status="Executing KSampler"), T0)
    assert g.live_status == "Sampling"
    out = (RunOutput(kind=OutputKind.IMAGE, url="https://x/a.png"),)
    g.apply(RunUpdate(run_id="run-1", status=RunStatus.SUCCESS, outputs=out), T0 + timedelta(seconds=3))
    assert g.status is S.SUCCEEDED and g.live_status is None
    g.apply(RunUpdate(run_id="run-1", live_status="Executing SaveImage"), T0 + timedelta(seconds=4))
    assert g.live_status is None  # a late webhook does not bring it back


def test_a_failed_run_says_why_not_what_node_was_running() -> None:
    g = make_generation(S.RUNNING, started_at=T0)
    g.apply(RunUpdate(run_id="run-1", live_status="Executing KSampler"), T0)
    g.apply(RunUpdate(run_id="run-1", status=RunStatus.FAILED), T0 + timedelta(seconds=1))
    assert g.failure_reason == "The workflow failed on the GPU backend." and g.live_status is None
    h = make_generation(S.RUNNING, started_at=T0)
    h.apply(RunUpdate(run_id="run-1", status=RunStatus.FAILED, live_status="Error: CUDA out of memory"), T0)
    assert h.failure_reason == "Error: CUDA out of memory"
