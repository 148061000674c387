"""Which ComfyUI server gets the next run: able and up, a free slot, fewest queued, ties in turn."""

from __future__ import annotations

from noema.adapters.backends.comfyui.pool import Candidate, choose_server


def up(queued: int = 0, ours: int = 0, *, able: bool = True) -> Candidate:
    return Candidate(up=True, able=able, ours=ours, queued=queued)


def test_the_server_with_the_fewest_prompts_queued_or_running_wins_its_own_queue_counted() -> None:
    # Server 0 has none of Noema's prompts but three of someone else's: it is the busier one.
    assert choose_server([up(queued=3), up(queued=1, ours=1)], slots=2, turn=0) == 1


def test_equal_servers_take_turns() -> None:
    servers = [up(), up(), up()]
    assert choose_server(servers, slots=2, turn=0) == 0
    assert choose_server(servers, slots=2, turn=1) == 1
    assert choose_server(servers, slots=2, turn=2) == 2
    assert choose_server(servers, slots=2, turn=3 % 3) == 0


def test_a_down_server_is_skipped_even_when_it_is_idle() -> None:
    down = Candidate(up=False, able=True, ours=0, queued=0)
    assert choose_server([down, up(queued=5)], slots=2, turn=0) == 1


def test_a_server_that_cannot_run_the_workflow_is_skipped() -> None:
    assert choose_server([up(able=False), up(queued=4)], slots=2, turn=0) == 1


def test_a_server_whose_slots_noema_fills_gets_no_more_and_none_is_chosen_when_all_are_full() -> None:
    assert choose_server([up(queued=2, ours=2), up(queued=3, ours=1)], slots=2, turn=0) == 1
    assert choose_server([up(queued=2, ours=2), up(queued=2, ours=2)], slots=2, turn=0) is None
    assert choose_server([], slots=2, turn=0) is None
