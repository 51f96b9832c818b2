"""The online BKT update against values worked out by hand, mastery, the hint rule, validation.

Every expected number below was computed on paper from the formulas in
realtime/learning/bkt.py's docstring (posterior given the observation, then the
learn/forget transition), not by calling the code under test.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from realtime.learning import MASTERY, SkillParams, first_attempt_correct, mastered, predict_correct, update

DEFAULT = SkillParams()  # prior 0.1, learn 0.1, guess 0.2, slip 0.1, forget 0


def approx(value: float) -> object:
    return pytest.approx(value, rel=0, abs=1e-12)


def test_the_defaults_are_the_documented_ones() -> None:
    assert DEFAULT.as_dict() == {"prior": 0.1, "learn": 0.1, "guess": 0.2, "slip": 0.1, "forget": 0.0}
    assert MASTERY == 0.95


def test_a_correct_first_attempt() -> None:
    # p = 0.1, correct, guess 0.2, slip 0.1, learn 0.1:
    #   known and right   = 0.1 * 0.9 = 0.09
    #   unknown and right = 0.9 * 0.2 = 0.18
    #   posterior = 0.09 / (0.09 + 0.18) = 1/3
    #   next = 1/3 + (2/3) * 0.1 = 0.4
    assert update(0.1, True, DEFAULT) == approx(0.4)


def test_an_incorrect_first_attempt() -> None:
    # p = 0.4, incorrect:
    #   known and wrong   = 0.4 * 0.1 = 0.04
    #   unknown and wrong = 0.6 * 0.8 = 0.48
    #   posterior = 0.04 / 0.52 = 1/13
    #   next = 1/13 + (12/13) * 0.1 = 2.2/13 = 0.16923076923...
    assert update(0.4, False, DEFAULT) == approx(2.2 / 13)
    assert update(0.4, False, DEFAULT) < 0.4


def test_forgetting_is_applied_after_the_evidence() -> None:
    params = SkillParams(prior=0.1, learn=0.1, guess=0.2, slip=0.1, forget=0.2)
    # p = 0.9, correct:
    #   known and right = 0.9 * 0.9 = 0.81; unknown and right = 0.1 * 0.2 = 0.02
    #   posterior = 0.81 / 0.83
    #   next = (0.81 / 0.83) * (1 - 0.2) + (0.02 / 0.83) * 0.1 = (0.648 + 0.002) / 0.83 = 0.65 / 0.83
    assert update(0.9, True, params) == approx(0.65 / 0.83)
    # without forgetting the same attempt ends higher: (0.81 + 0.02 * 0.1) / 0.83 = 0.812 / 0.83
    assert update(0.9, True, DEFAULT) == approx(0.812 / 0.83)


def test_predict_correct() -> None:
    # 0.1 * (1 - 0.1) + 0.9 * 0.2 = 0.09 + 0.18 = 0.27
    assert predict_correct(0.1, DEFAULT) == approx(0.27)
    # 0.4 * 0.9 + 0.6 * 0.2 = 0.36 + 0.12 = 0.48
    assert predict_correct(0.4, DEFAULT) == approx(0.48)


def test_mastery_after_a_run_of_correct_answers() -> None:
    # From the defaults, every first attempt right:
    #   0.1 -> 0.4                                    (above)
    #   0.4: 0.36 / (0.36 + 0.12) = 0.75;   0.75 + 0.25 * 0.1 = 0.775
    #   0.775: 0.6975 / (0.6975 + 0.045) = 31/33;   31/33 + (2/33) * 0.1 = 31.2/33 = 52/55 = 0.94545...
    #   52/55: (46.8/55) / (47.4/55) = 78/79;   78/79 + (1/79) * 0.1 = 78.1/79 = 0.98861...
    expected = [0.4, 0.775, 52 / 55, 78.1 / 79]
    p, seen = DEFAULT.prior, []
    for _ in expected:
        p = update(p, True, DEFAULT)
        seen.append(p)
    assert seen == [approx(x) for x in expected]
    assert [mastered(x) for x in seen] == [False, False, False, True]


def test_the_mastery_threshold_is_inclusive_and_can_be_chosen() -> None:
    assert mastered(0.95) and not mastered(0.9499999)
    assert mastered(0.86, threshold=0.85) and not mastered(0.84, threshold=0.85)


def test_a_hint_before_success_counts_as_an_incorrect_first_attempt() -> None:
    assert first_attempt_correct(True, hinted=False) is True
    assert first_attempt_correct(True, hinted=True) is False
    assert first_attempt_correct(False, hinted=False) is False
    assert update(0.4, first_attempt_correct(True, hinted=True), DEFAULT) == update(0.4, False, DEFAULT)


def test_an_impossible_observation_keeps_the_belief_before_the_transition() -> None:
    # guess 0 and p = 0: a correct answer cannot happen; the belief stays 0, then may be learnt: 0 + 1 * 0.1
    never_guessed = SkillParams(guess=0.0)
    assert update(0.0, True, never_guessed) == approx(0.1)
    # slip 0 and p = 1: a wrong answer cannot happen; the belief stays 1
    never_slips = SkillParams(slip=0.0)
    assert update(1.0, False, never_slips) == approx(1.0)


def test_the_update_stays_a_probability() -> None:
    for params in (DEFAULT, SkillParams(0.5, 0.3, 0.45, 0.45, 0.1), SkillParams(0.0, 0.0, 0.0, 0.0, 0.0), SkillParams(1, 1, 0.9, 0.0, 1)):
        for p in (0.0, 1e-9, 0.1, 0.5, 0.999, 1.0):
            for correct in (True, False):
                value = update(p, correct, params)
                assert 0.0 <= value <= 1.0 and math.isfinite(value), (params, p, correct)
                assert update(p, correct, params) == value  # deterministic


@pytest.mark.parametrize(
    "values",
    [
        {"prior": -0.1},
        {"learn": 1.5},
        {"forget": float("nan")},
        {"guess": float("inf")},
        {"slip": "0.1"},
        {"prior": True},
        {"prior": None},
        {"guess": 0.5, "slip": 0.5},  # guess = 1 - slip: answers say nothing about knowing
        {"guess": 0.7, "slip": 0.4},  # guess > 1 - slip: the states would swap meaning
        {"guess": 1.0, "slip": 0.0},
    ],
)
def test_parameters_that_cannot_work_are_refused(values: dict) -> None:
    with pytest.raises(ValueError):
        SkillParams(**values)


def test_parameters_at_the_edges_are_allowed() -> None:
    assert SkillParams(prior=0.0, learn=1.0, guess=0.0, slip=0.0, forget=1.0).learn == 1.0
    assert SkillParams(guess=0.89, slip=0.1).guess == 0.89
    assert isinstance(SkillParams(prior=1, learn=0).prior, float)
    with pytest.raises(AttributeError):
        DEFAULT.prior = 0.5  # type: ignore[misc]  # frozen


def test_the_online_model_does_not_import_numpy() -> None:
    # it runs in the room's tick; the fit (bkt_fit) is what needs numpy
    code = "import sys, realtime.learning, realtime.learning.bkt; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
