"""The level curve: Level Up XP's default thresholds, the linear and flat shapes, progress."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.levels import LevelCurve


def test_the_default_curve_is_level_up_xps_relative_curve() -> None:
    curve = LevelCurve()
    assert curve.thresholds() == (0, 120, 276, 479, 742, 1085, 1531, 2110, 2863, 3842)
    assert [curve.level(xp) for xp in (0, 119, 120, 275, 276, 3841, 3842, 10**9)] == [1, 1, 2, 2, 3, 9, 10, 10]


def test_linear_gaps_grow_by_the_base_and_flat_gaps_stay_the_same() -> None:
    assert LevelCurve(kind="linear", levels=5, base=100).thresholds() == (0, 100, 300, 600, 1000)
    assert LevelCurve(kind="flat", levels=5, base=100).thresholds() == (0, 100, 200, 300, 400)


def test_progress_says_how_far_to_the_next_level_and_nothing_past_the_last() -> None:
    curve = LevelCurve(kind="flat", levels=3, base=50)
    assert curve.progress(70) == {"level": 2, "levels": 3, "xp": 70, "level_xp": 50, "next_level_xp": 100, "to_next": 30}
    assert curve.progress(500)["level"] == 3 and curve.progress(500)["to_next"] is None
    assert curve.level(-5) == 1


@pytest.mark.parametrize("bad", [{"levels": 1}, {"levels": 51}, {"coefficient": 1.0}, {"base": 0}, {"kind": "steep"}, {"levels": 50, "coefficient": 3.0, "base": 1_000_000}])
def test_curves_that_cannot_work_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        LevelCurve(**bad)
