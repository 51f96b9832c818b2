"""The fan-out's slow-client policy: pose frames are replaceable, events are not.

Connections here are in-memory stand-ins whose send backlog the test sets, so
the policy can be checked exactly; tests/integration covers real sockets.
"""

from __future__ import annotations

import asyncio
import json

from realtime import protocol as p
from realtime.fanout import RoomRunner
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import Enter, Room
from tests.conftest import sample_scene


class MemoryConnection:
    def __init__(self) -> None:
        self.stale = False
        self.pending = 0
        self.frames: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    def backlog(self) -> int:
        return self.pending

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def tick_frames(conn: MemoryConnection) -> list[p.TickFrame]:
    out = []
    for frame in conn.frames:
        if frame[0] == 0x82:  # binary WebSocket frame: strip the 2- or 4-byte header
            payload = frame[2:] if frame[1] < 126 else frame[4:]
            out.append(p.decode_tick(payload))
    return out


def pose_at(x: float) -> list[float]:
    return [x, 1.6, 0, 0, 0, 0, 1, x, 1.1, 0, 0, 0, 0, 1, x, 1.1, 0, 0, 0, 0, 1]


def joined(*pids: str, **limits: int) -> tuple[Room, RoomRunner, dict[str, MemoryConnection]]:
    """A room whose runner has these participants joined over in-memory connections."""
    room = Room("s", sample_scene(), RoomLimits(**limits))
    runner = RoomRunner(room, asyncio.get_running_loop())
    conns = {pid: MemoryConnection() for pid in pids}
    for pid, conn in conns.items():
        runner.attach(pid, conn)
        runner.handle(pid, Enter(pid, Role.STUDENT))
    for conn in conns.values():
        conn.frames.clear()
    return room, runner, conns


async def test_encoded_once_same_bytes_to_everyone() -> None:
    room, runner, conns = joined("a", "b", "c")
    runner.handle("a", p.PoseFrame(p.encode_pose(pose_at(1.0))))
    runner._tick()
    sent = [conn.frames for conn in conns.values()]
    assert sent[0] == sent[1] == sent[2] and len(sent[0]) == 1
    frame = tick_frames(conns["b"])[0]
    mover = [rec for rec in frame.poses if rec["slot"] == room.participants["a"].slot]
    assert mover[0]["pose"][0] == 1.0
    runner.stop()


async def test_stalled_client_skips_poses_then_gets_a_full_refresh() -> None:
    room, runner, conns = joined("fast", "slow", pose_backlog_bytes=1000, event_backlog_bytes=5000)
    fast, slow = conns["fast"], conns["slow"]
    slow.pending = 2000  # over the pose bound, under the event bound
    for i in range(5):
        runner.handle("fast", p.PoseFrame(p.encode_pose(pose_at(float(i)))))
        runner._tick()
    assert len(tick_frames(fast)) == 5 and not any(f.full for f in tick_frames(fast))
    assert tick_frames(slow) == [] and slow.stale and slow.closed is None
    slow.pending = 0  # drained
    runner.handle("fast", p.PoseFrame(p.encode_pose(pose_at(9.0))))
    runner._tick()
    refresh = tick_frames(slow)
    assert len(refresh) == 1 and refresh[0].full
    assert len(refresh[0].poses) == 2 and len(refresh[0].objects) == len(room.scene.objects)
    assert not slow.stale
    runner.stop()


async def test_event_backlog_disconnects_with_resume_kept() -> None:
    room, runner, conns = joined("fast", "slow", pose_backlog_bytes=1000, event_backlog_bytes=5000)
    fast, slow = conns["fast"], conns["slow"]
    slow.pending = 6000
    runner.handle("fast", p.Grab(type="grab", object="beaker-water@1"))  # an event for everyone
    assert slow.closed is not None and slow.closed[0] == p.CloseCode.TOO_SLOW
    assert "slow" not in runner.conns
    assert room.participants["slow"].connected is False  # its place is kept for the resume window
    assert fast.closed is None
    runner.stop()


async def test_a_cut_off_client_never_reorders_events_for_the_others() -> None:
    room, runner, conns = joined("a", "slow", "z", pose_backlog_bytes=1000, event_backlog_bytes=5000)  # slow mid-iteration
    conns["slow"].pending = 6000
    runner.handle("a", p.Grab(type="grab", object="beaker-water@1"))
    for pid in ("a", "z"):
        seqs = [json.loads(f[2:])["seq"] for f in conns[pid].frames if f[0] == 0x81]
        kinds = [json.loads(f[2:])["type"] for f in conns[pid].frames if f[0] == 0x81]
        assert kinds == ["grabbed", "presence"] and seqs == sorted(seqs), (pid, kinds, seqs)
    runner.stop()
