"""Interest management in the sans-I/O room: who receives whom, at what rate, in which bytes."""

from __future__ import annotations

import numpy as np
import pytest

from realtime import codec_v2 as v2
from realtime import protocol as p
from realtime.interest import LEVELS, PoseTick
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import SYSTEM, Enter, Room, Send
from scenes.model import Scene, SceneObject
from tests.conftest import sample_scene

IDENTITY = (0.0, 0.0, 0.0, 1.0)
BARE = Scene("bare", 1, "Bare lab", (SceneObject("cup", "Cup", (0.0, 1.0, 0.0, *IDENTITY)),), ((0.0, 0.0, 0.0, 0.0),))
PERIOD = 1 / 30


def pose_at(x: float, z: float = 0.0, hands: bool = True) -> bytes:
    floats = [x, 1.6, z, *IDENTITY, x - 0.2, 1.1, z, *IDENTITY, x + 0.2, 1.1, z, *IDENTITY]
    return p.encode_pose(floats, stamp=int(x * 1000) & 0xFFFF, flags=3 if hands else 0)


class Class:
    """A room of named participants standing where the test puts them, ticked at 30 Hz."""

    def __init__(self, scene: Scene = BARE, **limits: object) -> None:
        self.room = Room("s", scene, RoomLimits(**limits))  # type: ignore[arg-type]
        self.now = 0.0
        self.where: dict[str, tuple[float, float]] = {}

    def enter(self, pid: str, x: float, z: float = 0.0, role: Role = Role.STUDENT, protocol: int = 1) -> None:
        self.room.handle(pid, Enter(pid, role, protocol=protocol), self.now)
        self.where[pid] = (x, z)
        if role != Role.OBSERVER:
            self.room.handle(pid, p.PoseFrame(pose_at(x, z)), self.now)

    def tick(self, moving: tuple[str, ...] = ()) -> PoseTick | None:
        """Everyone in ``moving`` moves a little, then the room ticks; the tick's PoseTick, if any."""
        for pid in moving:
            x, z = self.where[pid]
            self.where[pid] = (x + 0.001, z)
            self.room.handle(pid, p.PoseFrame(pose_at(x + 0.001, z)), self.now)
        self.now += PERIOD
        ticks = [item.data for item in self.room.tick(self.now) if isinstance(item, Send) and isinstance(item.data, PoseTick)]
        return ticks[0] if ticks else None

    def slot(self, pid: str) -> int:
        return self.room.participants[pid].slot

    def received(self, tick: PoseTick | None, to: str, level: int = 0) -> set[str]:
        """Whose poses ``to`` gets in this tick, at link ``level``."""
        data = tick.frame_for(self.slot(to), 1, level) if tick is not None else None
        if data is None:
            return set()
        owners = {part.slot: pid for pid, part in self.room.participants.items()}
        return {owners[int(s)] for s in p.decode_tick(data).poses["slot"]}


def settle(lab: Class) -> None:
    """Tick until the entries' first poses have gone out on every period."""
    for _ in range(40):
        lab.tick()


def test_near_people_come_every_tick_and_far_people_at_the_far_rate() -> None:
    lab = Class()
    lab.enter("me", 0.0)
    lab.enter("near", 1.0)
    lab.enter("far", 20.0)
    settle(lab)
    got = [lab.received(lab.tick(("near", "far")), "me") for _ in range(12)]
    ticks = [lab.room.tick_no - 11 + i for i in range(12)]
    every = lab.room.interest.far_every
    assert every == 6  # 30 Hz ticks, 5 Hz far rate
    for tick, who in zip(ticks, got):
        assert "near" in who
        assert ("far" in who) == (tick % every == 0)


def test_the_same_station_a_teacher_and_a_speaker_are_near_at_any_distance() -> None:
    lab = Class()
    lab.enter("me", 0.0)
    lab.enter("teacher", 30.0, role=Role.TEACHER)
    lab.enter("talker", -30.0)
    lab.enter("quiet", 25.0, 25.0)
    settle(lab)
    lab.room.voice_levels({"talker": 0.4, "quiet": 0.0})
    moving = ("teacher", "talker", "quiet")
    got = [lab.received(lab.tick(moving), "me") for _ in range(5)]
    first = lab.room.tick_no - 4
    for tick, who in zip(range(first, first + 5), got):
        assert {"teacher", "talker"} <= who
        assert ("quiet" in who) == (tick % 6 == 0)
    # a teacher watches the whole class at the full rate
    assert all({"me", "talker", "quiet"} <= lab.received(lab.tick(("me", *moving)), "teacher") for _ in range(5))


def test_stations_make_people_near_across_the_room() -> None:
    scene = sample_scene()
    lab = Class(scene)
    lab.enter("a", 0.0)
    lab.enter("b", 0.0)
    lab.enter("c", 0.0)
    station = lab.room.challenges.station_of("a")
    lab.room.handle(SYSTEM, p.AssignStation(type="assign_station", participant="b", station=station), lab.now)
    assert station is not None and lab.room.challenges.station_of("b") == station
    assert lab.room.challenges.station_of("c") != station
    lab.room.handle("c", p.PoseFrame(pose_at(15.0)), lab.now)
    lab.where["c"] = (15.0, 0.0)
    lab.room.handle("b", p.PoseFrame(pose_at(15.0)), lab.now)
    lab.where["b"] = (15.0, 0.0)
    settle(lab)
    got = [lab.received(lab.tick(("b", "c")), "a") for _ in range(5)]
    assert all("b" in who for who in got)
    assert not all("c" in who for who in got)  # 15 m away at another station: far


def test_recipients_in_one_group_share_one_bytes_object_and_v2_is_smaller() -> None:
    lab = Class()
    for i in range(10):
        lab.enter(f"s{i}", 0.1 * i)
    lab.enter("v2", 0.05, protocol=2)
    settle(lab)
    tick = lab.tick(tuple(f"s{i}" for i in range(10)))
    assert tick is not None
    frames = {id(tick.frame_for(lab.slot(f"s{i}"))) for i in range(10)}
    assert len(frames) == 1
    v1 = tick.frame_for(lab.slot("s0"), 1)
    v2_frame = tick.frame_for(lab.slot("v2"), 2)
    assert v1 is not None and v2_frame is not None
    assert len(v2_frame) * 2 < len(v1)
    decoded = v2.decode_tick_v2(v2_frame, lab.room.grid)
    exact = p.decode_tick(v1)
    assert decoded.poses["slot"].tolist() == exact.poses["slot"].tolist()
    assert np.abs(decoded.poses["pose"] - exact.poses["pose"])[:, [0, 1, 2, 7, 8, 9, 14, 15, 16]].max() <= 0.0005 + 1e-6


def test_a_weaker_level_gets_fewer_frames_with_every_change_and_the_lowest_no_hands() -> None:
    lab = Class()
    lab.enter("me", 0.0)
    lab.enter("near", 1.0)
    settle(lab)
    for level, spec in enumerate(LEVELS):
        frames, at = [], {}
        for _ in range(12):
            tick = lab.tick(("near",))
            at[lab.room.tick_no] = lab.where["near"][0]
            data = tick.frame_for(lab.slot("me"), 1, level) if tick is not None else None
            frames.append(data)
        sent = [f for f in frames if f is not None]
        assert len(sent) == 12 // spec.near_every
        for data in sent:
            frame = p.decode_tick(data)
            near = [rec for rec in frame.poses if rec["slot"] == lab.slot("near")]
            assert near and near[0]["pose"][0] == pytest.approx(at[frame.tick], abs=1e-5)  # the newest pose at that tick
            assert bool(near[0]["flags"]) == spec.hands


def test_nobody_moving_means_no_frame_for_anyone_at_the_full_rate() -> None:
    lab = Class()
    lab.enter("a", 0.0)
    lab.enter("b", 10.0)
    settle(lab)
    for _ in range(12):
        tick = lab.tick()
        assert tick is None or tick.frame_for(lab.slot("a")) is None


def test_walking_over_to_someone_makes_them_near_on_the_next_tick() -> None:
    lab = Class()
    lab.enter("me", 0.0)
    lab.enter("walker", 20.0)
    settle(lab)
    far_ticks = [lab.room.tick_no + 1 + i for i in range(6) if "walker" in lab.received(lab.tick(("walker",)), "me")]
    assert len(far_ticks) == 1  # far: one tick in six, while the grouping is reused tick after tick
    lab.where["walker"] = (0.5, 0.0)  # steps next to me
    got = [lab.received(lab.tick(("walker",)), "me") for _ in range(6)]
    assert all("walker" in who for who in got)
    lab.where["walker"] = (20.0, 0.0)  # and away again
    lab.tick(("walker",))
    assert sum("walker" in lab.received(lab.tick(("walker",)), "me") for _ in range(6)) == 1
