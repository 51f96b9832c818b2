"""Lab challenges in the live room: conditions, the event-driven evaluator, stations and scoring (pure, sans-I/O)."""

from realtime.challenges.engine import Challenges, Event, Refused

__all__ = ["Challenges", "Event", "Refused"]
