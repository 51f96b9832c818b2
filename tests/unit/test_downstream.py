"""Judging a client's link from its backlog and acknowledgements (realtime.downstream)."""

from __future__ import annotations

from realtime.downstream import ACK_STALE, CLEAR_BACKLOG, LOWEST, STEP_UP_AFTER, WEAK_BACKLOG, Link

PERIOD = 1 / 30


_written: dict[int, list[tuple[int, float]]] = {}


def run(link: Link, seconds: float, start: float, backlog: int = 0, ack_lag: float | None = None, frame: int = 600) -> float:
    """Send a tick frame every period for ``seconds``; the client acks what was written ``ack_lag``
    seconds ago (None: never acks). Returns the time reached."""
    now, tick = start, round(start / PERIOD)
    written = _written.setdefault(id(link), [])
    while now < start + seconds:
        tick += 1
        now += PERIOD
        link.wrote(frame, tick, now)
        written.append((tick, now))
        if ack_lag is not None:
            done = [t for t, at in written if at <= now - ack_lag]
            if done:
                link.ack(done[-1], now)
        link.judge(backlog, now)
    return now


def test_a_clear_link_stays_at_full_quality() -> None:
    link = Link(0.0)
    run(link, 10, 0.0, backlog=0, ack_lag=0.05)
    assert link.level == 0
    assert link.throughput is not None and 15_000 < link.throughput < 21_000  # 600 bytes x 30 a second


def test_acks_that_lag_step_the_level_down_one_step_a_second_to_the_lowest() -> None:
    link = Link(0.0)
    now = run(link, 1.5, 0.0, ack_lag=1.5 + 1.2)
    assert link.level == 0  # nothing acked yet: the backlog alone is judged, and it is empty
    now = run(link, 1.0, now, ack_lag=1.2)
    assert link.level == 1
    run(link, 3.0, now, ack_lag=1.2)
    assert link.level == LOWEST


def test_a_growing_backlog_steps_down_a_client_that_never_acks() -> None:
    link = Link(0.0)
    run(link, 1.2, 0.0, backlog=WEAK_BACKLOG + 1)
    assert link.level == 1


def test_a_recovered_link_steps_back_up_only_after_staying_clear() -> None:
    link = Link(0.0)
    now = run(link, 3.5, 0.0, backlog=WEAK_BACKLOG + 1)
    assert link.level == LOWEST
    now = run(link, STEP_UP_AFTER - 1, now, backlog=CLEAR_BACKLOG - 1, ack_lag=0.05)
    assert link.level == LOWEST
    now = run(link, 1.5, now, backlog=0, ack_lag=0.05)
    assert link.level == LOWEST - 1


def test_a_client_that_stops_acking_is_judged_on_its_backlog_alone() -> None:
    link = Link(0.0)
    now = run(link, 2.0, 0.0, ack_lag=0.05)
    now = run(link, ACK_STALE + 0.5, now, backlog=0, ack_lag=None)
    # while its last ack is fresh, silence looks like a stalled link; then acks no longer count
    assert link.waiting(now) is None
    run(link, LOWEST * STEP_UP_AFTER + 1, now, backlog=0)
    assert link.level == 0


def test_unknown_and_repeated_acks_are_ignored() -> None:
    link = Link(0.0)
    link.wrote(100, 5, 0.1)
    link.ack(99, 0.2)  # never sent
    link.ack(5, 0.2)
    link.ack(5, 0.3)  # again
    link.ack(2, 0.4)  # older
    assert link.waiting(0.5) == 0.0
