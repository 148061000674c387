"""The line of webhooks deferred while Noema was busy: one per generation, bounded, an end kept over progress."""

from __future__ import annotations

from noema.domain.runs import RunStatus, RunUpdate
from noema.services.deferred_webhooks import DeferredWebhooks


def test_one_per_generation_and_an_end_is_never_replaced_by_progress() -> None:
    line = DeferredWebhooks(limit=10)
    assert line.defer("g1", RunUpdate("r", status=RunStatus.RUNNING, progress=0.2), "t")
    assert line.defer("g1", RunUpdate("r", status=RunStatus.SUCCESS, progress=1.0), "t")
    assert line.defer("g1", RunUpdate("r", status=RunStatus.RUNNING, progress=0.9), "t")
    assert len(line) == 1
    kept, _ = line._waiting["g1"]
    assert kept.status is RunStatus.SUCCESS


def test_a_full_line_leaves_new_generations_to_the_poll_but_still_updates_waiting_ones() -> None:
    line = DeferredWebhooks(limit=2)
    assert line.defer("g1", RunUpdate("r", status=RunStatus.RUNNING), "t")
    assert line.defer("g2", RunUpdate("r", status=RunStatus.RUNNING), "t")
    assert not line.defer("g3", RunUpdate("r", status=RunStatus.SUCCESS), "t")
    assert line.defer("g2", RunUpdate("r", status=RunStatus.SUCCESS), "t")
    assert len(line) == 2
