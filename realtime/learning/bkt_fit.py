"""Fitting a skill's BKT parameters from recorded first attempts: EM (Baum-Welch), numpy.

``amaliy skills fit`` calls ``fit_skills`` with each skill's recorded first attempts,
one sequence per learner in the order they were made (1 correct, 0 incorrect or hinted,
as ``bkt.first_attempt_correct`` decides). Pure and deterministic like the rest of
``realtime.learning``: no I/O, no clock, randomness only from the ``seed`` given.

The model is the two-state hidden Markov model of ``realtime.learning.bkt``: state
K_t in {0 unknown, 1 known}, observation o_t in {0, 1},

    pi = (1 - prior, prior)        A = [[1 - learn, learn],       B(k, o) = [[1 - guess, guess],
                                        [forget,    1 - forget]]             [slip,      1 - slip]]

The E-step is the scaled forward-backward of Rabiner (1989), run for every learner at
once: the sequences are padded into a (T, N) matrix with a mask, and the loops go over
the time axis only, each step a handful of numpy operations on N learners. A padded
cell has B = 1 (no observation) and contributes no transition, so padding changes
nothing. With alpha-hat and beta-hat the scaled messages and c_t the scale factors,

    c_t alpha-hat_t(j) = sum_i alpha-hat_t-1(i) A(i, j) B(j, o_t)       (c_t makes it sum to 1)
    beta-hat_t(i)      = sum_j A(i, j) B(j, o_t+1) beta-hat_t+1(j) / c_t+1
    gamma_t(i)         = alpha-hat_t(i) beta-hat_t(i)                  = P(K_t = i | o)
    xi_t(i, j)         = alpha-hat_t(i) A(i, j) B(j, o_t+1) beta-hat_t+1(j) / c_t+1
    log P(o)           = sum_t log c_t

and the M-step sets each parameter to its expected frequency (sums over learners, and
over the observed t, or the observed transitions t -> t+1):

    prior  = mean gamma_1(1)
    learn  = sum xi_t(0, 1) / sum gamma_t(0)        forget = sum xi_t(1, 0) / sum gamma_t(1)
    guess  = sum gamma_t(0) o_t / sum gamma_t(0)    slip   = sum gamma_t(1) (1 - o_t) / sum gamma_t(1)

Bounds. Each expected complete-data log-likelihood term is concave in its own
parameter alone, so clipping the M-step to a box still maximises it over the box (a
generalised EM step: the likelihood still never decreases). The box:
* every parameter stays in [PROB_FLOOR, 1 - PROB_FLOOR], so no likelihood is ever 0
  and ``bkt.update`` never meets an impossible observation;
* guess and slip stay <= GUESS_SLIP_MAX (0.5, less the floor so that guess + slip < 1
  strictly, as ``SkillParams`` requires). This rules out the mirror solution (the
  "known" state answering worse than the "unknown" one) and the degenerate fits
  Baker, Corbett & Aleven (2008) warn of. pyBKT bounds nothing in its M-step; it
  only starts from guess < 0.4 and slip < 0.3 (``random_model_uni``).
* forget is 0 and stays 0 unless ``fit_forget`` (standard BKT, pyBKT's default).

Restarts. EM finds a local maximum. ``restarts`` runs start from seeded random points
(drawn like pyBKT's: prior in [0.05, 0.95), learn and guess in [0.01, 0.4), slip in
[0.01, 0.3), forget in [0.01, 0.1) when fitted), the first from the middle of those
ranges or from ``start``; each runs ``warmup`` iterations, and only the one with the highest
likelihood then runs on to convergence (the short-runs strategy of Biernacki, Celeux
& Govaert 2003). The same data and seed give the same fit.

Convergence: the largest change of any parameter in one iteration is below
``tolerance``. Cost per iteration: about 15 numpy operations on N-vectors per
attempt index, and a dozen on the whole (T, N) matrix: for 5,000 learners x 50
attempts about 10 ms, and a fit (4 restarts x 8 warm-up iterations, then 10 to 40
more) a few tenths of a second (bench/learner.py). Memory: about ten (T, N)
float64 arrays.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from realtime.learning.bkt import SkillParams

#: no fitted probability is closer than this to 0 or 1
PROB_FLOOR = 1e-4
#: the largest fitted guess or slip: 0.5, less the floor so that guess + slip < 1 strictly
GUESS_SLIP_MAX = 0.5 - PROB_FLOOR
#: where restarts draw their starting points: (low, high) per parameter
START_RANGES = {"prior": (0.05, 0.95), "learn": (0.01, 0.4), "guess": (0.01, 0.4), "slip": (0.01, 0.3), "forget": (0.01, 0.1)}


@dataclass(frozen=True)
class FitResult:
    """A skill's fitted parameters, the log-likelihood of the data under them, and how EM got there."""

    params: SkillParams
    log_likelihood: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class _Packed:
    """Learners' sequences as (T, N) matrices, time first so that each attempt index is one contiguous row."""

    code: np.ndarray  # intp: 0 incorrect, 1 correct, 2 no attempt (padding)
    observed: np.ndarray  # float64: 1 where the learner made that attempt
    correct: np.ndarray  # float64: 1 where the attempt was correct
    learners: int
    attempts: int


def _pack(sequences: Iterable[Sequence[bool | int]]) -> _Packed:
    """Pad the learners' sequences into a (time, learner) matrix; empty sequences are dropped."""
    seqs = [s for s in sequences if len(s)]
    if not seqs:
        raise ValueError("no attempts to fit: every sequence is empty")
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    total = int(lengths.sum())
    try:
        flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.float64, count=total)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attempts must be 0/1 or False/True: {exc}") from None
    binary = (flat == 0.0) | (flat == 1.0)
    if not binary.all():
        raise ValueError(f"attempts must be 0/1 or False/True, not {flat[~binary][0]!r}")
    n, t = len(seqs), int(lengths.max())
    starts = np.cumsum(lengths) - lengths
    learner = np.repeat(np.arange(n), lengths)
    step = np.arange(total) - np.repeat(starts, lengths)
    code = np.full((t, n), 2, dtype=np.intp)
    code[step, learner] = flat.astype(np.intp)
    return _Packed(code, (code < 2).astype(np.float64), (code == 1).astype(np.float64), n, total)


def _clip(value: float, high: float = 1.0 - PROB_FLOOR) -> float:
    return min(max(value, PROB_FLOOR), high)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum, not np.dot: BLAS may split a dot product over threads, and then the sum (so the
    # fit) would depend on the machine's thread count; einsum sums in one fixed order
    return float(np.einsum("ij,ij->", a, b))


def _forward(data: _Packed, prior: float, learn: float, guess: float, slip: float, forget: float):
    """Scaled forward pass: alpha-hat_t(1) and c_t for every (t, learner), and the emissions B(k, o_t)."""
    # B(0, o) and B(1, o) per cell, by its code (incorrect, correct, no attempt)
    b0 = np.array([1.0 - guess, guess, 1.0]).take(data.code)
    b1 = np.array([slip, 1.0 - slip, 1.0]).take(data.code)
    t_len, n = data.code.shape
    a1 = np.empty((t_len, n))
    scale = np.empty((t_len, n))
    stay = 1.0 - forget - learn
    pred = np.full(n, prior)
    u1 = np.empty(n)
    for t in range(t_len):
        if t:
            # P(K_t = 1 | o_1..t-1) = learn + alpha-hat_t-1(1) (1 - forget - learn)
            np.multiply(a1[t - 1], stay, out=pred)
            pred += learn
        np.multiply(pred, b1[t], out=u1)
        c = scale[t]
        np.subtract(1.0, pred, out=c)
        c *= b0[t]
        c += u1
        np.divide(u1, c, out=a1[t])
    return a1, scale, b0, b1


def log_likelihood(sequences: Iterable[Sequence[bool | int]], params: SkillParams) -> float:
    """log P(sequences | params), natural log, summed over learners (the quantity EM maximises)."""
    return _log_likelihood_of(_pack(sequences), (params.prior, params.learn, params.guess, params.slip, params.forget))


def _log_likelihood_of(data: _Packed, p: tuple[float, float, float, float, float]) -> float:
    _, scale, _, _ = _forward(data, *p)
    return float(np.log(scale).sum())


def _em_step(data: _Packed, p: tuple[float, float, float, float, float], fit_forget: bool):
    """One E-step at ``p`` and the (clipped) M-step: returns (new p, the scale factors c_t at p).

    log P(o | p) = sum log c_t; the caller takes the log only when it needs the likelihood.
    """
    prior, learn, guess, slip, forget = p
    a1, scale, b0, b1 = _forward(data, prior, learn, guess, slip, forget)
    t_len, n = a1.shape
    beta0 = np.ones((t_len, n))
    beta1 = np.ones((t_len, n))
    w0 = np.empty((t_len - 1, n))
    w1 = np.empty((t_len - 1, n))
    # w_j(t) = B(j, o_t+1) beta-hat_t+1(j) / c_t+1, for all t at once where beta-hat_t+1 is known
    np.divide(b0[1:], scale[1:], out=w0)
    np.divide(b1[1:], scale[1:], out=w1)
    diff = np.empty(n)
    for t in range(t_len - 2, -1, -1):
        if t < t_len - 2:  # beta-hat_t+1 = 1 at the last step
            w0[t] *= beta0[t + 1]
            w1[t] *= beta1[t + 1]
        # beta-hat_t(0) = w0 + learn (w1 - w0);  beta-hat_t(1) = w1 + forget (w0 - w1)
        np.subtract(w1[t], w0[t], out=diff)
        np.multiply(diff, learn, out=beta0[t])
        beta0[t] += w0[t]
        if forget:
            np.multiply(diff, -forget, out=beta1[t])
            beta1[t] += w1[t]
        else:
            beta1[t] = w1[t]
    gamma1 = a1 * beta1
    gamma0 = (1.0 - a1) * beta0
    observed, correct = data.observed, data.correct
    moved = observed[1:]  # the transitions t -> t+1 that were observed
    g0_seen = _dot(gamma0, observed)
    g1_seen = _dot(gamma1, observed)
    new_prior = float(gamma1[0].mean())
    new_guess = _dot(gamma0, correct) / g0_seen if g0_seen > 0 else guess
    new_slip = (g1_seen - _dot(gamma1, correct)) / g1_seen if g1_seen > 0 else slip
    learn_den = _dot(gamma0[:-1], moved)
    # sum xi_t(0, 1) = learn sum alpha-hat_t(0) w1(t)
    new_learn = learn * _dot((1.0 - a1[:-1]) * w1, moved) / learn_den if learn_den > 0 else learn
    new_forget = 0.0
    if fit_forget:
        forget_den = _dot(gamma1[:-1], moved)
        new_forget = _clip(forget * _dot(a1[:-1] * w0, moved) / forget_den if forget_den > 0 else forget)
    new = (
        _clip(new_prior),
        _clip(new_learn),
        _clip(new_guess, GUESS_SLIP_MAX),
        _clip(new_slip, GUESS_SLIP_MAX),
        new_forget,
    )
    return new, scale


def _starts(restarts: int, fit_forget: bool, seed: int, start: SkillParams | None) -> list[tuple[float, float, float, float, float]]:
    rng = np.random.default_rng(seed)
    names = ("prior", "learn", "guess", "slip", "forget")
    if start is None:
        first = tuple((lo + hi) / 2 for lo, hi in (START_RANGES[k] for k in names))
    else:
        first = (start.prior, start.learn, start.guess, start.slip, start.forget)
    out = [first]
    for _ in range(restarts - 1):
        out.append(tuple(float(rng.uniform(*START_RANGES[k])) for k in names))
    if not fit_forget:
        out = [s[:4] + (0.0,) for s in out]
    else:  # a start (given) with forget 0: EM could never move it (every xi_t(1, 0) would be 0)
        out = [s[:4] + (max(s[4], 0.01),) for s in out]
    return out


def fit(
    sequences: Iterable[Sequence[bool | int]],
    *,
    iterations: int = 500,
    tolerance: float = 1e-6,
    fit_forget: bool = False,
    seed: int = 0,
    restarts: int = 4,
    warmup: int = 8,
    start: SkillParams | None = None,
) -> FitResult:
    """Fit one skill's parameters to learners' first-attempt sequences (one list per learner).

    ``iterations`` caps the EM iterations of the run that goes on to convergence
    (``warmup`` included); ``tolerance`` is on the largest parameter change per
    iteration. ``start`` replaces the first starting point (a previous fit, say).
    See the module docstring for the model, bounds and restarts.
    """
    if iterations < 1 or restarts < 1 or warmup < 0:
        raise ValueError("iterations and restarts must be at least 1, warmup at least 0")
    data = _pack(sequences)

    def run(p: tuple, used: int, until: int) -> tuple[tuple, int, bool, np.ndarray | None]:
        scale, done = None, False
        while used < until and not done:
            new, scale = _em_step(data, p, fit_forget)
            used += 1
            done = max(abs(x - y) for x, y in zip(new, p)) < tolerance
            p = new
        return p, used, done, scale

    runs = []
    for first in _starts(restarts, fit_forget, seed, start):
        p, used, done, scale = run(first, 0, min(warmup, iterations))
        # the likelihood at each run's last E-step ranks the runs (EM: the next is no lower)
        ll = float(np.log(scale).sum()) if scale is not None else _log_likelihood_of(data, p)
        runs.append((ll, p, used, done))
    _, p, used, done = max(runs, key=lambda r: r[0])  # the first of equals: deterministic
    if not done:
        p, used, done, _ = run(p, used, iterations)
    return FitResult(SkillParams(*p), _log_likelihood_of(data, p), used, done)


def fit_skills(attempts: Mapping[str, Sequence[Sequence[bool | int]]], **options) -> dict[str, FitResult]:
    """``fit`` for each skill: {skill: one sequence per learner} -> {skill: FitResult}; skills without attempts are left out."""
    out: dict[str, FitResult] = {}
    for skill, sequences in attempts.items():
        if any(len(s) for s in sequences):
            out[skill] = fit(sequences, **options)
    return out


def simulate(params: SkillParams, learners: int, attempts: int, seed: int) -> list[list[int]]:
    """First-attempt sequences drawn from the model: ``learners`` lists of ``attempts`` 0/1 values.

    Each learner knows the skill at the start with P(prior); each attempt is correct
    with P(1 - slip) if known, P(guess) if not; after it, an unknown skill is learnt
    with P(learn) and a known one forgotten with P(forget) (the order of ``bkt.update``).
    """
    if learners < 0 or attempts < 0:
        raise ValueError("learners and attempts must be at least 0")
    rng = np.random.default_rng(seed)
    known = rng.random(learners) < params.prior
    out = np.empty((attempts, learners), dtype=np.int8)
    for t in range(attempts):
        draw = rng.random(learners)
        out[t] = np.where(known, draw >= params.slip, draw < params.guess)
        move = rng.random(learners)
        known = np.where(known, move >= params.forget, move < params.learn)
    return out.T.tolist()
