"""The EM fit of BKT parameters: exact likelihoods, one EM step by brute force, recovery of
known parameters from simulated data, and pyBKT (the field's reference) on the same data.

pyBKT is not trusted: its multiprocessing fit has failed silently when imported as a
library, and the current release (1.4.3, pure Python) no longer runs on NumPy >= 2.4 as
shipped (see ``_pybkt_fit``). So it runs with ``parallel=False``, every E-step it makes
is recorded, and its answer is checked (finite, the likelihood rising, the likelihood
it reports equal to ours at its parameters, close to the truth) before it is compared
with ours. If any check fails the test fails; it never skips.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import pytest

from realtime.learning.bkt import SkillParams, update
from realtime.learning.bkt_fit import GUESS_SLIP_MAX, PROB_FLOOR, FitResult, fit, fit_skills, log_likelihood, simulate

LEARNERS, ATTEMPTS = 2_000, 30
#: how far each fitted parameter may be from the one the data were simulated with
TOLERANCE = 0.03
#: how far pyBKT's fit and ours may be apart (same data, same model: only where each stops differs)
AGREEMENT = 0.01
FOUR = ("prior", "learn", "guess", "slip")

CASES = {
    "typical": (SkillParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1), 11),
    "slow-guessy": (SkillParams(prior=0.4, learn=0.05, guess=0.3, slip=0.15), 12),
}


@cache
def data(case: str) -> list[list[int]]:
    truth, seed = CASES[case]
    return simulate(truth, LEARNERS, ATTEMPTS, seed=seed)


@cache
def ours(case: str) -> FitResult:
    return fit(data(case))


def far(a: SkillParams, b: SkillParams, names=FOUR) -> dict[str, float]:
    return {k: round(abs(getattr(a, k) - getattr(b, k)), 4) for k in names}


# ----------------------------------------------------------------------------- simulate


def test_simulate_is_deterministic_and_shaped() -> None:
    a = simulate(SkillParams(), 50, 7, seed=3)
    assert a == simulate(SkillParams(), 50, 7, seed=3)
    assert a != simulate(SkillParams(), 50, 7, seed=4)
    assert len(a) == 50 and all(len(s) == 7 for s in a)
    assert {x for s in a for x in s} <= {0, 1} and all(type(x) is int for s in a for x in s)
    assert simulate(SkillParams(), 0, 5, seed=0) == [] and simulate(SkillParams(), 3, 0, seed=0) == [[], [], []]


def test_simulate_follows_the_model_at_its_edges() -> None:
    always = SkillParams(prior=1.0, learn=0.0, guess=0.0, slip=0.0)
    never = SkillParams(prior=0.0, learn=0.0, guess=0.0, slip=0.0)
    assert all(x == 1 for s in simulate(always, 20, 10, seed=1) for x in s)
    assert all(x == 0 for s in simulate(never, 20, 10, seed=1) for x in s)
    # learn = 1: unknown on the first attempt (wrong, guess 0), known from the second on (right, slip 0)
    assert simulate(SkillParams(prior=0.0, learn=1.0, guess=0.0, slip=0.0), 5, 4, seed=1) == [[0, 1, 1, 1]] * 5


def test_simulated_first_attempts_match_the_predicted_rate() -> None:
    params = SkillParams(prior=0.3, learn=0.2, guess=0.25, slip=0.1)
    first = [s[0] for s in simulate(params, 20_000, 1, seed=5)]
    # P(correct) = 0.3 * 0.9 + 0.7 * 0.25 = 0.445; the standard error over 20,000 is 0.0035
    assert abs(sum(first) / len(first) - 0.445) < 0.015


# ----------------------------------------------------------------------------- the likelihood


def test_log_likelihood_by_hand() -> None:
    # one learner, [correct, incorrect], the defaults:
    #   P(o1 = 1) = 0.1 * 0.9 + 0.9 * 0.2 = 0.27;  then P(known) = 0.4 (test_bkt.py)
    #   P(o2 = 0 | o1) = 1 - (0.4 * 0.9 + 0.6 * 0.2) = 1 - 0.48 = 0.52
    #   log P = log(0.27 * 0.52) = log(0.1404)
    assert log_likelihood([[1, 0]], SkillParams()) == pytest.approx(math.log(0.1404), abs=1e-12)
    # learners add up; True/False are 1/0; empty sequences are left out
    assert log_likelihood([[True, False], [1, 0], []], SkillParams()) == pytest.approx(2 * math.log(0.1404), abs=1e-12)


def path_probabilities(seq: list[int], p: SkillParams) -> dict[tuple[int, ...], float]:
    """P(hidden path, o) for every hidden path of ``seq``: the model's definition, no recursion."""
    weights = {}
    for path in itertools.product((0, 1), repeat=len(seq)):
        prob = p.prior if path[0] else 1 - p.prior
        for t, (k, o) in enumerate(zip(path, seq)):
            if t:
                prev = path[t - 1]
                prob *= (p.forget if k == 0 else 1 - p.forget) if prev else (p.learn if k else 1 - p.learn)
            right = 1 - p.slip if k else p.guess
            prob *= right if o else 1 - right
        weights[path] = prob
    return weights


def brute_log_likelihood(seq: list[int], p: SkillParams) -> float:
    """P(o) summed over every hidden path: the definition, with no forward algorithm."""
    return math.log(sum(path_probabilities(seq, p).values()))


def test_log_likelihood_equals_the_sum_over_hidden_paths() -> None:
    rng = np.random.default_rng(7)
    params = SkillParams(prior=0.35, learn=0.2, guess=0.3, slip=0.15, forget=0.1)
    seqs = [list(map(int, rng.integers(0, 2, size=n))) for n in (1, 2, 3, 5, 6, 6, 4)]  # ragged: padding is exercised
    assert log_likelihood(seqs, params) == pytest.approx(sum(brute_log_likelihood(s, params) for s in seqs), rel=1e-12)


def test_the_forward_pass_agrees_with_the_online_update() -> None:
    # P(o) = prod_t predict_correct(p_t) or its complement, p_t from bkt.update: the same model twice
    params = SkillParams(prior=0.25, learn=0.12, guess=0.22, slip=0.08, forget=0.03)
    seq = simulate(params, 1, 40, seed=9)[0]
    p, total = params.prior, 0.0
    for o in seq:
        right = p * (1 - params.slip) + (1 - p) * params.guess
        total += math.log(right if o else 1 - right)
        p = update(p, bool(o), params)
    assert log_likelihood([seq], params) == pytest.approx(total, rel=1e-12)


# ----------------------------------------------------------------------------- EM


def brute_em_step(seqs: list[list[int]], p: SkillParams) -> dict[str, float]:
    """One EM step from expected counts over every hidden path (the definition of the M-step)."""
    n = {k: 0.0 for k in ("first", "learn", "from0", "forget", "from1", "guess", "seen0", "slip", "seen1")}
    for seq in seqs:
        weights = path_probabilities(seq, p)
        z = sum(weights.values())
        for path, w in weights.items():
            w /= z
            n["first"] += w * path[0]
            for t, (k, o) in enumerate(zip(path, seq)):
                if k:
                    n["seen1"] += w
                    n["slip"] += w * (1 - o)
                else:
                    n["seen0"] += w
                    n["guess"] += w * o
                if t + 1 < len(seq):
                    nxt = path[t + 1]
                    if k:
                        n["from1"] += w
                        n["forget"] += w * (1 - nxt)
                    else:
                        n["from0"] += w
                        n["learn"] += w * nxt
    return {
        "prior": n["first"] / len(seqs),
        "learn": n["learn"] / n["from0"],
        "guess": n["guess"] / n["seen0"],
        "slip": n["slip"] / n["seen1"],
        "forget": n["forget"] / n["from1"],
    }


def test_one_em_step_equals_the_expected_counts_over_hidden_paths() -> None:
    start = SkillParams(prior=0.3, learn=0.2, guess=0.25, slip=0.15, forget=0.1)
    seqs = simulate(SkillParams(prior=0.4, learn=0.3, guess=0.2, slip=0.1, forget=0.05), 30, 6, seed=2)
    seqs = [s[: 2 + i % 5] for i, s in enumerate(seqs)]  # ragged lengths 2..6
    step = fit(seqs, start=start, restarts=1, warmup=0, iterations=1, tolerance=0.0, fit_forget=True)
    assert step.iterations == 1 and not step.converged
    expected = brute_em_step(seqs, start)
    assert step.params.as_dict() == {k: pytest.approx(v, rel=1e-9) for k, v in expected.items()}


def test_em_never_lowers_the_likelihood() -> None:
    seqs = simulate(SkillParams(prior=0.3, learn=0.1, guess=0.25, slip=0.12), 300, 15, seed=4)
    start = SkillParams(prior=0.7, learn=0.3, guess=0.05, slip=0.3)
    lls = [fit(seqs, start=start, restarts=1, warmup=0, iterations=k, tolerance=0.0).log_likelihood for k in range(1, 25)]
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(lls, lls[1:])), lls


def test_the_fit_is_deterministic_and_reports_how_it_went() -> None:
    seqs = simulate(SkillParams(), 400, 12, seed=8)
    a, b = fit(seqs, seed=3), fit(seqs, seed=3)
    assert a == b
    assert a.converged and 1 <= a.iterations < 500
    assert a.log_likelihood == pytest.approx(log_likelihood(seqs, a.params), rel=1e-12)
    capped = fit(seqs, iterations=2, restarts=1, tolerance=0.0)
    assert capped.iterations == 2 and not capped.converged


def test_fits_stay_inside_the_bounds_even_when_the_data_say_nothing() -> None:
    rng = np.random.default_rng(1)
    coin_flips = rng.integers(0, 2, size=(500, 20)).tolist()  # no learning, no relation to knowing
    all_right = [[1] * 10 for _ in range(200)]
    all_wrong = [[0] * 10 for _ in range(200)]
    for seqs in (coin_flips, all_right, all_wrong):
        params = fit(seqs).params  # a SkillParams: valid by construction (guess < 1 - slip)
        for name in FOUR:
            assert PROB_FLOOR <= getattr(params, name) <= 1 - PROB_FLOOR, (name, params)
        assert params.guess <= GUESS_SLIP_MAX and params.slip <= GUESS_SLIP_MAX
        assert params.forget == 0.0


@pytest.mark.parametrize("bad", [[[0, 1, 2]], [[0, 0.5]], [[1, -1]], [[1, None]], [["yes"]], [[]], []])
def test_attempts_that_are_not_zero_or_one_are_refused(bad: list) -> None:
    with pytest.raises(ValueError):
        fit(bad)


def test_fit_skills_fits_each_skill_and_leaves_out_those_without_attempts() -> None:
    results = fit_skills({
        "pour": simulate(SkillParams(prior=0.2, learn=0.2), 300, 10, seed=1),
        "weigh": simulate(SkillParams(prior=0.5, learn=0.05), 300, 10, seed=2),
        "unused": [[], []],
    }, restarts=2)
    assert sorted(results) == ["pour", "weigh"]
    assert all(isinstance(r, FitResult) and r.converged for r in results.values())
    assert results["pour"].params.prior < results["weigh"].params.prior


# ----------------------------------------------------------------------------- recovery


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_fit_recovers_the_parameters_the_data_were_simulated_with(case: str) -> None:
    truth, _ = CASES[case]
    result = ours(case)
    assert result.converged
    assert max(far(result.params, truth).values()) <= TOLERANCE, (far(result.params, truth), result)
    assert result.params.forget == 0.0


def test_the_fit_recovers_forgetting_when_asked_to_fit_it() -> None:
    truth = SkillParams(prior=0.3, learn=0.2, guess=0.25, slip=0.08, forget=0.05)
    result = fit(simulate(truth, LEARNERS, ATTEMPTS, seed=13), fit_forget=True)
    assert result.converged
    names = FOUR + ("forget",)
    assert max(far(result.params, truth, names).values()) <= TOLERANCE, (far(result.params, truth, names), result)


# ----------------------------------------------------------------------------- pyBKT


def _pybkt_fit(sequences: list[list[int]], monkeypatch: pytest.MonkeyPatch, seed: int) -> tuple[SkillParams, list[float]]:
    """pyBKT's fit of the same sequences, and the log-likelihood of each E-step it ran.

    pyBKT's data format (pyBKT.util.data_helper): one row per attempt, columns
    ``order_id`` (sorted to order the attempts), ``user_id`` (one sequence per user),
    ``skill_name`` and ``correct`` (0/1). One random start (``num_fits=1``; pyBKT's
    default is 5) and ``parallel=False``.

    The E-step (``pyBKT.fit.EM_fit.run``) is wrapped to record its log-likelihood, and
    to hand it back as a float: pyBKT 1.4.3 returns it as a (1, 1) array and stores it
    into one element of another array, which NumPy >= 2.4 refuses ("setting an array
    element with a sequence"). The wrapper changes only that value's shape.
    """
    try:
        import pandas as pd
        from pyBKT.fit import EM_fit
        from pyBKT.models import Model
    except Exception as exc:  # pyBKT 1.4.3 fails at import with scikit-learn >= 1.8 (pyproject pins it below)
        pytest.fail(f"pyBKT, the reference this test checks against, cannot be imported: {exc!r}")

    lls: list[float] = []
    e_step = EM_fit.run

    def recorded(*args, **kwargs):
        result = e_step(*args, **kwargs)
        ll = np.asarray(result["total_loglike"], dtype=np.float64).reshape(-1)
        assert ll.size == 1, f"pyBKT's E-step returned a log-likelihood of shape {np.shape(result['total_loglike'])}"
        result["total_loglike"] = float(ll[0])
        lls.append(float(ll[0]))
        return result

    monkeypatch.setattr(EM_fit, "run", recorded)
    rows = [(u, c) for u, seq in enumerate(sequences) for c in seq]
    frame = pd.DataFrame({
        "order_id": np.arange(len(rows)),
        "user_id": [u for u, _ in rows],
        "skill_name": "skill",
        "correct": [c for _, c in rows],
    })
    model = Model(seed=seed, num_fits=1, parallel=False)
    model.fit(data=frame)
    coef = model.coef_
    assert set(coef) == {"skill"}, f"pyBKT fitted skills {sorted(coef)}, not the one it was given"
    got = coef["skill"]
    raw = {"prior": got["prior"], "learn": got["learns"], "guess": got["guesses"], "slip": got["slips"], "forget": got["forgets"]}
    values = {}
    for name, value in raw.items():
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        assert value.size == 1, f"pyBKT returned {value.size} values for {name}"
        assert np.isfinite(value[0]) and 0.0 <= value[0] <= 1.0, f"pyBKT's {name} is not a probability: {value[0]!r}"
        values[name] = float(value[0])
    return SkillParams(**values), lls


# pyBKT 1.4.3 uses pandas options and arguments that pandas 3 deprecates; they still work
@pytest.mark.filterwarnings("ignore:The 'mode.chained_assignment' option is deprecated")
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.sort_values is deprecated")
def test_pybkt_fits_the_same_data_to_the_same_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    case = "typical"
    truth, _ = CASES[case]
    seqs = data(case)
    theirs, lls = _pybkt_fit(seqs, monkeypatch, seed=0)

    # pyBKT really ran EM: several E-steps, finite, each likelihood no lower than the one before
    assert len(lls) >= 2, f"pyBKT ran {len(lls)} E-steps: its parameters are its starting point"
    assert all(math.isfinite(x) for x in lls), lls
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(lls, lls[1:])), f"pyBKT's likelihood fell: {lls}"
    assert theirs.forget == 0.0
    # it stops (|change| <= 0.005) before its last M-step, so its last E-step was at the parameters it returned:
    # the likelihood it computed there must be ours at those parameters (two implementations, one number)
    assert len(lls) < 100, "pyBKT hit its iteration cap"
    assert lls[-1] == pytest.approx(log_likelihood(seqs, theirs), rel=1e-9)

    mine = ours(case)
    assert max(far(theirs, truth).values()) <= TOLERANCE, ("pyBKT vs truth", far(theirs, truth), theirs)
    assert max(far(mine.params, truth).values()) <= TOLERANCE, ("ours vs truth", far(mine.params, truth), mine)
    assert max(far(theirs, mine.params).values()) <= AGREEMENT, ("pyBKT vs ours", far(theirs, mine.params), theirs, mine)
    # ours ran on to a tighter convergence, so its likelihood is at least pyBKT's
    assert mine.log_likelihood >= lls[-1] - 1e-6 * abs(lls[-1])
