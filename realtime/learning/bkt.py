"""Bayesian Knowledge Tracing: what the room believes a learner knows, one skill at a time.

Pure floats, sans-I/O, deterministic: the room calls ``update`` on each first attempt
at a step, inside its tick, so the whole update is a few multiplications and one
division, with no numpy, no clock and no randomness. The same inputs in the same order
give the same beliefs, so a replayed room log reproduces them.

The model (Corbett & Anderson 1995; the two-state hidden Markov model that pyBKT
fits). A learner either knows the skill (K = 1) or not (K = 0):

    P(K_1 = 1)                 = prior     (knew it before the first attempt)
    P(K_t+1 = 1 | K_t = 0)     = learn     (learnt it at attempt t)
    P(K_t+1 = 0 | K_t = 1)     = forget    (0 in standard BKT)
    P(correct | K = 0)         = guess
    P(correct | K = 1)         = 1 - slip

With p = P(K_t = 1) before the attempt, g = guess, s = slip:

    predict_correct(p) = p (1 - s) + (1 - p) g

    posterior, correct:    p' = p (1 - s) / (p (1 - s) + (1 - p) g)
    posterior, incorrect:  p' = p s / (p s + (1 - p) (1 - g))

    update(p) = p' (1 - forget) + (1 - p') learn          (belief before the next attempt)

(first the evidence of this attempt, then the chance of learning from it: the order
CTAT, OATutor and pyBKT all use). If an observation is impossible under the model
(a correct answer with p = 0 and g = 0, or a wrong one with p = 1 and s = 0) its
posterior is undefined; the belief is then left as it was before the transition.

Conventions followed
--------------------
* What counts: only a learner's *first attempt* at a step updates the belief; later
  attempts at the same step do not (CTAT updates pKnown "only on the 1st attempt at a
  step"). A hint asked before success makes that first attempt count as incorrect
  (CTAT records "1 for correct, 0 for hint or incorrect"; OATutor does the same):
  ``first_attempt_correct`` encodes this rule so every caller applies it alike.
* Identifiability: ``guess < 1 - slip`` (the same as guess + slip < 1), so that knowing
  a skill makes a correct answer more likely. Without it the two states could swap
  meaning (the "label switching" of mixture models) and a correct answer would lower
  the belief. The fit (``realtime.learning.bkt_fit``) keeps guess, slip <= 0.5.
* Mastery: ``MASTERY = 0.95``, Corbett & Anderson's criterion for the Cognitive Tutor
  (a skill is mastered once P(K) >= 0.95). OATutor sets its threshold per learning
  objective in the course plan (0.85 in its OpenStax College Algebra plan); a
  practical can pass its own threshold to ``mastered``.

Defaults (``SkillParams()``), used for a skill nobody has fitted yet:
prior 0.1, learn 0.1, guess 0.2, slip 0.1, forget 0.
* prior 0.1, learn 0.1, slip 0.1 are OATutor's defaults for a new skill
  (probMastery, probTransit, probSlip = 0.1 in its BKT model and content tools).
* guess 0.2 rather than OATutor's 0.1: a step in a 3D lab can be got right by trying
  things (moving an object until the condition holds) more often than a typed answer,
  and guess 0.2 with slip 0.1 is the usual starting pair of BKT implementations (CTAT
  keeps pKnown, pLearn, pGuess and pSlip per skill, set by the author). Every default
  lies inside the ranges pyBKT draws its random starting points from (prior [0, 1),
  learn and guess [0, 0.4), slip [0, 0.3), forget 0: pyBKT.generate.random_model_uni).
* forget 0: standard BKT has no forgetting; pyBKT fits it only with ``forgets=True``,
  and so does ``bkt_fit.fit`` only with ``fit_forget=True``.
With these defaults a learner who gets every first attempt right reaches 0.95 on the
fourth (0.1 -> 0.4 -> 0.775 -> 0.945 -> 0.989, see tests/unit/test_bkt.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: P(known) at or above which a skill counts as mastered (Corbett & Anderson 1995)
MASTERY = 0.95


@dataclass(frozen=True, slots=True)
class SkillParams:
    """The five BKT probabilities of one skill; validated when made, so ``update`` needs no checks."""

    prior: float = 0.1
    learn: float = 0.1
    guess: float = 0.2
    slip: float = 0.1
    forget: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prior", "learn", "guess", "slip", "forget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a probability (a number in [0, 1]), not {value!r}")
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], not {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.guess < 1.0 - self.slip:
            raise ValueError(
                f"guess ({self.guess}) must be below 1 - slip ({1.0 - self.slip}): otherwise knowing the skill "
                "would not make a correct answer more likely, and the model could not tell the states apart"
            )

    def as_dict(self) -> dict[str, float]:
        return {"prior": self.prior, "learn": self.learn, "guess": self.guess, "slip": self.slip, "forget": self.forget}


def predict_correct(p_known: float, params: SkillParams) -> float:
    """P(the next first attempt is correct) = p (1 - slip) + (1 - p) guess."""
    return p_known * (1.0 - params.slip) + (1.0 - p_known) * params.guess


def update(p_known: float, correct: bool, params: SkillParams) -> float:
    """P(known) before the next attempt, given P(known) before this one and whether it was correct.

    The posterior given the observation, then the learn/forget transition (formulas in
    the module docstring). ``p_known`` is a probability in [0, 1]; ``correct`` is the
    first-attempt outcome (see ``first_attempt_correct``).
    """
    if correct:
        known = p_known * (1.0 - params.slip)
        evidence = known + (1.0 - p_known) * params.guess
    else:
        known = p_known * params.slip
        evidence = known + (1.0 - p_known) * (1.0 - params.guess)
    posterior = known / evidence if evidence > 0.0 else p_known
    return posterior * (1.0 - params.forget) + (1.0 - posterior) * params.learn


def first_attempt_correct(correct: bool, hinted: bool) -> bool:
    """The observation BKT sees for a step: correct only if right first time with no hint before it."""
    return bool(correct) and not hinted


def mastered(p_known: float, threshold: float = MASTERY) -> bool:
    """Whether P(known) has reached the mastery threshold."""
    return p_known >= threshold
