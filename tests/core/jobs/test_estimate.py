"""The wait a status message shows (core/jobs/estimate.py): the later of fal's time and the
sends ahead, and the rule that skips a status message that would come too late to matter."""

from __future__ import annotations

import pytest

from core.jobs.estimate import Figures, eta, median, rounded, send_rate, worth_a_status


def figures(**changes: object) -> Figures:
    values: dict[str, object] = {
        "in_queue": 0,
        "at_fal": 0,
        "results": 0,
        "fal_median": 8.0,
        "at_fal_for": 0.0,
        "send_rate": 29.0,
    }
    values.update(changes)
    return Figures(**values)  # type: ignore[arg-type]


def test_with_nothing_ahead_the_result_comes_when_fal_is_done() -> None:
    assert eta(figures()) == 8.0


def test_time_already_spent_at_fal_counts() -> None:
    assert eta(figures(at_fal_for=5.0)) == 3.0
    assert eta(figures(at_fal_for=20.0)) == pytest.approx(1 / 29)


def test_a_long_line_of_sends_outweighs_fal() -> None:
    """290 results waiting and 10 jobs in kadr's queue: 301 sends at 29/s, past fal's 8 s."""
    ahead = figures(results=290, in_queue=10)
    assert ahead.ahead == 300
    assert eta(ahead) == pytest.approx(301 / 29)


def test_the_pace_of_results_now_sets_the_wait() -> None:
    assert eta(figures(results=300, send_rate=10.0)) == pytest.approx(30.1)


def test_no_estimate_before_a_first_fal_time() -> None:
    assert eta(figures(fal_median=None)) is None


def test_median_of_recent_fal_times() -> None:
    assert median([4.0, 30.0, 5.0]) == 5.0
    assert median([]) is None


def test_send_rate_is_measured_and_capped_by_the_configured_pace() -> None:
    assert send_rate([10] * 10, 10, 29.0) == 10.0
    assert send_rate([40] * 10, 10, 29.0) == 29.0
    assert send_rate([0] * 10, 10, 29.0) == 29.0  # nothing sent: nothing waited


def test_estimates_are_said_in_round_figures() -> None:
    assert rounded(0.2) == (5, "s")
    assert rounded(41.0) == (45, "s")
    assert rounded(61.0) == (2, "min")


def test_a_status_message_goes_only_when_it_arrives_well_before_the_result() -> None:
    assert worth_a_status(0.0, 8.0)
    assert worth_a_status(0.0, None)
    assert worth_a_status(1.5, 8.0)
    assert not worth_a_status(3.0, 8.0), "the handler would wait seconds for its moment"
    assert not worth_a_status(1.5, 2.0), "it would come just before the picture"
    assert not worth_a_status(80.0, 86.0), "the peak measured in issue 22"
