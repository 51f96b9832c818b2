"""Python SDK for Amaliy's room socket (tests, bots, load generators)."""

from amaliy_client.client import AmaliyClient, JoinRefused, join_code, now_stamp
from amaliy_client.lab import LabState

__all__ = ["AmaliyClient", "JoinRefused", "LabState", "join_code", "now_stamp"]
# Voice (amaliy_client.voice) imports aiortc; it is loaded only by those who call.
