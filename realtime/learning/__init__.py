"""The learner model: Bayesian Knowledge Tracing per learner and skill, and its fit (pure, sans-I/O)."""

from realtime.learning.bkt import MASTERY, SkillParams, first_attempt_correct, mastered, predict_correct, update

__all__ = ["MASTERY", "SkillParams", "first_attempt_correct", "mastered", "predict_correct", "update"]
