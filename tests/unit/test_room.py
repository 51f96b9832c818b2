"""The room engine with no sockets: inputs in, outputs out, clock passed in."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from realtime import protocol as p
from realtime.interest import PoseTick
from realtime.limits import RoomLimits
from realtime.roles import Role
from realtime.room import SYSTEM, Close, Disconnect, Enter, Room, Send, replay
from tests.conftest import sample_scene

SCENE = sample_scene()
#: station 1's equipment: the first student to join works there
BEAKER, OTHER_BEAKER, BURNER = "beaker-water@1", "beaker-cuso4@1", "burner@1"


def make_room(**limits: object) -> Room:
    return Room("s_test", SCENE, RoomLimits(**limits))  # type: ignore[arg-type]


def messages(out: list, to: str | None = "*") -> list[dict]:
    """JSON messages among outputs (optionally only those addressed to ``to``)."""
    return [
        json.loads(item.data)
        for item in out
        if isinstance(item, Send) and isinstance(item.data, str) and (to == "*" or item.to == to)
    ]


def of_type(out: list, kind: str) -> list[dict]:
    return [m for m in messages(out) if m["type"] == kind]


def frames(out: list) -> list[p.TickFrame]:
    """Tick frames among a room's outputs: a recipient's full frame, or a tick's changes as a
    teacher (who gets everyone at the full rate) receives them."""
    out = [item.data.whole() if isinstance(item, Send) and isinstance(item.data, PoseTick) else getattr(item, "data", None) for item in out]
    return [p.decode_tick(data) for data in out if isinstance(data, bytes)]


def pose_at(x: float, y: float = 1.6, z: float = 0.0) -> list[float]:
    return [x, y, z, 0, 0, 0, 1, x - 0.2, 1.1, z, 0, 0, 0, 1, x + 0.2, 1.1, z, 0, 0, 0, 1]


def enter(room: Room, pid: str, role: Role = Role.STUDENT, now: float = 0.0, name: str | None = None) -> list:
    return room.handle(pid, Enter(name or pid, role), now)


def test_join_gets_welcome_snapshot_and_full_frame_and_others_see_joined() -> None:
    room = make_room()
    enter(room, "a")
    out = enter(room, "b")
    welcome = of_type(out, "welcome")[0]
    assert welcome["participant"]["id"] == "b"
    assert {q["id"] for q in welcome["snapshot"]["participants"]} == {"a", "b"}
    assert {o["id"] for o in welcome["snapshot"]["objects"]} >= {BEAKER, BURNER}
    joined = [item for item in out if isinstance(item, Send) and item.to is None]
    assert json.loads(joined[0].data)["type"] == "joined"
    full = [f for f in frames(out) if f.full]
    assert len(full) == 1 and len(full[0].poses) == 2 and len(full[0].objects) == len(SCENE.objects)


def test_pose_is_broadcast_once_per_tick_as_the_same_bytes() -> None:
    room = make_room()
    enter(room, "a")
    enter(room, "b")
    room.tick(0.0)
    room.handle("a", p.PoseFrame(p.encode_pose(pose_at(1.0), stamp=1)), 0.01)
    room.handle("a", p.PoseFrame(p.encode_pose(pose_at(2.0), stamp=2)), 0.02)  # newer replaces older
    out = room.tick(0.033)
    sends = [item for item in out if isinstance(item, Send)]
    assert len(sends) == 1 and sends[0].to is None and sends[0].replaceable
    frame = p.decode_tick(sends[0].data.whole())
    assert len(frame.poses) == 1
    assert frame.poses[0]["slot"] == room.participants["a"].slot
    assert frame.poses[0]["stamp"] == 2
    assert frame.poses[0]["pose"][0] == pytest.approx(2.0)
    # nothing changed: nothing for anyone at the full rate (a slower period may still be due)
    assert all(isinstance(item, Send) and isinstance(item.data, PoseTick) and item.data.whole() is None for item in room.tick(0.066))


def test_bad_pose_is_refused_and_room_state_unchanged() -> None:
    room = make_room()
    enter(room, "a")
    room.tick(0.0)
    before = room.pose_of("a")
    bad = pose_at(1.0)
    bad[0] = math.nan
    room.handle("a", p.PoseFrame(p.encode_pose(bad)), 0.01)
    out = room.tick(0.033)
    assert [m["code"] for m in messages(out, "a")] == ["bad_pose"]
    assert not frames(out)
    np.testing.assert_array_equal(room.pose_of("a"), before)
    unnormalised = pose_at(1.0)
    unnormalised[6] = 5.0
    room.handle("a", p.PoseFrame(p.encode_pose(unnormalised)), 0.04)
    assert [m["code"] for m in messages(room.tick(0.066), "a")] == ["bad_pose"]


def test_observer_cannot_send_poses_or_grab() -> None:
    room = make_room()
    enter(room, "obs", Role.OBSERVER)
    out = room.handle("obs", p.PoseFrame(p.encode_pose(pose_at(1.0))), 0.0)
    assert [m["code"] for m in messages(out)] == ["forbidden"]
    out = room.handle("obs", p.Grab(type="grab", object=BEAKER), 0.0)
    assert [m["code"] for m in messages(out)] == ["forbidden"]
    assert room.holder_of(BEAKER) is None


def test_one_holder_and_moves_from_non_holders_refused() -> None:
    room = make_room()
    enter(room, "a")
    enter(room, "b")
    room.handle(SYSTEM, p.AssignStation(type="assign_station", participant="b", station=1), 0.5)  # a's bench partner
    out = room.handle("a", p.Grab(type="grab", object=BEAKER), 1.0)
    assert of_type(out, "grabbed")[0]["participant"] == "a"
    out = room.handle("b", p.Grab(type="grab", object=BEAKER, id=7), 1.1)
    err = messages(out, "b")[0]
    assert err["code"] == "object_held" and err["re"] == 7
    index = room.scene.object_index()[BEAKER]
    before = room.transform_of(BEAKER)
    out = room.handle("b", p.ObjectMove(index, (0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0)), 1.2)
    assert messages(out, "b")[0]["code"] == "not_holder"
    np.testing.assert_array_equal(room.transform_of(BEAKER), before)
    room.handle("a", p.ObjectMove(index, (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)), 1.3)
    frame = frames(room.tick(1.33))[0]
    assert frame.objects[0]["transform"][1] == pytest.approx(1.0)
    assert frame.objects[0]["holder"] == room.participants["a"].slot
    out = room.handle("b", p.Release(type="release", object=BEAKER), 1.4)
    assert messages(out, "b")[0]["code"] == "not_holder"
    out = room.handle("a", p.Release(type="release", object=BEAKER), 1.5)
    assert of_type(out, "released")[0]["transform"][1] == pytest.approx(1.0)
    out = room.handle("b", p.Grab(type="grab", object=BEAKER), 1.6)
    assert of_type(out, "grabbed")[0]["participant"] == "b"


def test_unknown_object_errors() -> None:
    room = make_room()
    enter(room, "a")
    out = room.handle("a", p.Grab(type="grab", object="unicorn"), 0.0)
    assert messages(out)[0]["code"] == "unknown_object"
    out = room.handle("a", p.ObjectMove(999, (0.0,) * 6 + (1.0,)), 0.0)
    assert messages(out)[0]["code"] == "unknown_object"


def test_lease_times_out_only_for_a_silent_connected_holder() -> None:
    room = make_room(grab_lease=2.0)
    enter(room, "a")
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.0)
    index = room.scene.object_index()[BEAKER]
    room.handle("a", p.ObjectMove(index, (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)), 1.5)
    assert not of_type(room.tick(3.0), "released")  # the move renewed the lease
    out = room.tick(3.6)
    assert of_type(out, "released")[0]["reason"] == "lease"
    assert room.holder_of(BEAKER) is None


def test_leave_releases_holds_and_frees_the_slot() -> None:
    room = make_room()
    enter(room, "a")
    enter(room, "b")
    room.handle("a", p.Grab(type="grab", object=BURNER), 0.0)
    out = room.handle("a", p.Leave(type="leave"), 1.0)
    assert of_type(out, "released")[0]["object"] == BURNER
    assert of_type(out, "left")[0]["reason"] == "left"
    assert any(isinstance(item, Close) and item.to == "a" for item in out)
    slot = room.participants["b"].slot
    enter(room, "c")
    assert room.participants["c"].slot != slot  # reuses a's slot, not b's
    assert room.participants["c"].slot == 0


def test_disconnect_keeps_identity_and_holds_within_resume_window() -> None:
    room = make_room(resume_window=30.0)
    enter(room, "a")
    enter(room, "b")
    room.handle("a", p.Grab(type="grab", object=OTHER_BEAKER), 0.0)
    seen = room.seq
    out = room.handle("a", Disconnect(), 1.0)
    assert of_type(out, "presence")[0] == {"type": "presence", "seq": seen + 1, "participant": "a", "connected": False}
    room.tick(20.0)  # lease (15 s) does not run out while disconnected
    assert room.holder_of(OTHER_BEAKER) == "a"
    out = room.handle("a", Enter("a", Role.STUDENT, last_seq=seen), 25.0)
    welcome = of_type(out, "welcome")[0]
    assert welcome["resumed"] is True and welcome["replayed"] == 1 and welcome["held"] == [OTHER_BEAKER]
    replayed = [m for m in messages(out, "a") if m["type"] == "presence"]
    assert replayed and replayed[0]["seq"] == seen + 1
    assert room.participants["a"].slot == 0 and room.holder_of(OTHER_BEAKER) == "a"


def test_resume_too_old_gets_a_fresh_snapshot() -> None:
    room = make_room(resume_log_events=4)
    enter(room, "a")
    room.handle("a", Disconnect(), 0.0)
    for i in range(10):
        enter(room, f"x{i}")
    welcome = of_type(room.handle("a", Enter("a", Role.STUDENT, last_seq=1), 1.0), "welcome")[0]
    assert "snapshot" in welcome and len(welcome["snapshot"]["participants"]) == 11


def test_resume_window_expiry_removes_participant_and_releases() -> None:
    room = make_room(resume_window=5.0)
    enter(room, "a")
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.0)
    room.handle("a", Disconnect(), 1.0)
    assert not of_type(room.tick(5.9), "left")
    out = room.tick(6.1)
    assert of_type(out, "released")[0]["reason"] == "timeout"
    assert of_type(out, "left")[0]["reason"] == "timeout"
    assert "a" not in room.participants


def test_room_cap_counts_students_not_teachers() -> None:
    room = make_room(room_cap=2)
    enter(room, "s1")
    enter(room, "s2")
    out = enter(room, "s3")
    assert messages(out)[0]["code"] == "room_full"
    assert [c.code for c in out if isinstance(c, Close)] == [p.CloseCode.ROOM_FULL]
    assert "s3" not in room.participants
    assert of_type(enter(room, "t", Role.TEACHER), "welcome")


def test_lock_refuses_newcomers_but_not_resumers() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    room.handle("a", Disconnect(), 0.0)
    out = room.handle("t", p.Lock(type="lock", locked=True), 0.0)
    assert of_type(out, "locked")[0]["locked"] is True
    out = enter(room, "new")
    assert messages(out)[0]["code"] == "room_locked"
    assert of_type(room.handle("a", Enter("a", Role.STUDENT), 1.0), "welcome")[0]["resumed"] is True
    room.handle("t", p.Lock(type="lock", locked=False), 2.0)
    assert of_type(enter(room, "new"), "welcome")


def test_kick_removes_and_bans_the_participant() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.0)
    out = room.handle("t", p.Kick(type="kick", participant="a"), 1.0)
    assert of_type(out, "left")[0]["reason"] == "kicked"
    assert [(c.to, c.code) for c in out if isinstance(c, Close)] == [("a", p.CloseCode.KICKED)]
    assert room.holder_of(BEAKER) is None
    out = enter(room, "a")
    assert messages(out)[0]["code"] == "forbidden" and "a" not in room.participants
    out = room.handle("t", p.Kick(type="kick", participant="t"), 2.0)
    assert messages(out)[0]["code"] == "forbidden"


def test_a_kick_keeps_the_device_out_until_unkick() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    room.handle("a", Enter("Aziz", Role.STUDENT, device="dev-1"), 0.0)
    room.handle("t", p.Kick(type="kick", participant="a"), 1.0)
    assert room.snapshot()["removed"] == [{"id": "a", "name": "Aziz", "role": "student"}]
    assert room.refusal(None, "dev-1") and room.refusal("a", None) and room.refusal("b", "dev-2") is None
    out = room.handle("b", Enter("Someone else", Role.STUDENT, device="dev-1"), 2.0)  # same device, new id
    assert messages(out)[0]["code"] == "forbidden" and "let you back in" in messages(out)[0]["message"]
    assert "b" not in room.participants
    enter(room, "c", name="Classmate")
    out = room.handle("c", p.Unkick(type="unkick", participant="a"), 3.0)
    assert messages(out)[0]["code"] == "forbidden"  # only teachers let people back in
    out = room.handle("t", p.Unkick(type="unkick", participant="a"), 3.0)
    assert of_type(out, "unkicked")[0] == {"type": "unkicked", "seq": room.seq, "participant": "a", "name": "Aziz", "by": "t"}
    assert room.snapshot()["removed"] == [] and room.refusal(None, "dev-1") is None
    assert of_type(room.handle("a", Enter("Aziz", Role.STUDENT, device="dev-1"), 4.0), "welcome")
    out = room.handle("t", p.Unkick(type="unkick", participant="a"), 5.0)
    assert messages(out)[0]["code"] == "unknown_participant"


def test_names_compare_by_key() -> None:
    room = make_room()
    enter(room, "a", name="Aziz")
    assert room.named("AZÍZ") is room.participants["a"] and room.named("Aziza") is None


def test_the_server_lets_someone_back_in_for_a_teacher_over_rest() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a", name="Aziz")
    room.handle("t", p.Kick(type="kick", participant="a"), 1.0)
    out = room.handle(SYSTEM, p.Unkick(type="unkick", participant="a"), 2.0)
    assert of_type(out, "unkicked")[0]["by"] == SYSTEM and room.removed == {}


def test_a_guest_token_does_not_enter_under_a_name_someone_has_now() -> None:
    room = make_room()
    room.handle("a", Enter("Aziz", Role.STUDENT, device="dev-a"), 0.0)
    # "b"'s token was issued for the name before "a" took it (the join edge's hold had lapsed)
    out = room.handle("b", Enter("AZÍZ", Role.STUDENT, device="dev-b"), 1.0)
    [error] = messages(out)
    assert error["code"] == "unauthorized" and error["message"].startswith("Someone in this practical is already called “Aziz”;")
    assert error["message"].endswith("Join again with the join code and the new name.")
    assert [(c.to, c.code) for c in out if isinstance(c, Close)] == [("b", p.CloseCode.UNAUTHORIZED)] and "b" not in room.participants
    room.handle("a", Disconnect(), 2.0)  # within the resume window the name is still "a"'s ...
    assert messages(room.handle("b", Enter("Aziz", Role.STUDENT, device="dev-b"), 2.5))[0]["code"] == "unauthorized"
    assert of_type(room.handle("a", Enter("Aziz", Role.STUDENT, device="dev-a"), 3.0), "welcome")[0]["resumed"] is True  # ... who resumes
    # a name no guest chose (a roster student's, a teacher's: their tokens carry no device) is not the join edge's to refuse
    assert of_type(room.handle("r", Enter("Aziz", Role.STUDENT), 4.0), "welcome")
    room.handle("a", p.Leave(type="leave"), 5.0)
    room.handle("r", p.Leave(type="leave"), 5.0)
    assert of_type(room.handle("b", Enter("AZÍZ", Role.STUDENT, device="dev-b"), 6.0), "welcome")  # free again: the token enters


def test_freeze_releases_student_holds_and_blocks_grabs() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.0)
    out = room.handle("t", p.Freeze(type="freeze", frozen=True), 1.0)
    assert of_type(out, "released")[0]["reason"] == "frozen"
    assert of_type(out, "frozen")[0]["frozen"] is True
    assert messages(room.handle("a", p.Grab(type="grab", object=BEAKER), 1.1))[0]["code"] == "frozen"
    assert of_type(room.handle("t", p.Grab(type="grab", object=BEAKER), 1.2), "grabbed")
    room.handle("t", p.Freeze(type="freeze", frozen=False), 2.0)
    assert of_type(room.handle("a", p.Grab(type="grab", object=OTHER_BEAKER), 2.1), "grabbed")


def test_reset_restores_objects_and_releases_holds() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.0)
    index = room.scene.object_index()[BEAKER]
    room.handle("a", p.ObjectMove(index, (3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)), 0.1)
    out = room.handle("t", p.Reset(type="reset"), 1.0)
    event = of_type(out, "reset")[0]
    beaker = next(o for o in event["objects"] if o["id"] == BEAKER)
    assert beaker["holder"] is None and beaker["transform"][0] == pytest.approx(SCENE.objects[index].transform[0])
    assert room.holder_of(BEAKER) is None
    assert len(frames(room.tick(1.1))[0].objects) == len(SCENE.objects)


def test_summon_broadcasts_the_point() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    out = room.handle("t", p.Summon(type="summon", position=[1.0, 0.0, 2.0]), 0.0)
    assert of_type(out, "summoned")[0]["position"] == [1.0, 0.0, 2.0]


def test_end_closes_everyone_and_refuses_further_input() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    out = room.handle(SYSTEM, p.End(type="end"), 0.0)
    assert of_type(out, "ended")
    assert {c.to for c in out if isinstance(c, Close)} == {"t", "a"}
    assert messages(room.handle("a", p.Grab(type="grab", object=BURNER), 1.0))[0]["code"] == "session_ended"
    assert messages(enter(room, "late"))[0]["code"] == "session_ended"


def test_event_sequence_numbers_increase_by_one() -> None:
    room = make_room()
    out = enter(room, "t", Role.TEACHER) + enter(room, "a")
    out += room.handle("t", p.Lock(type="lock", locked=True), 0.0)
    out += room.handle("a", p.Grab(type="grab", object=BURNER), 0.0)
    seqs = [m["seq"] for m in messages(out) if "seq" in m and m["type"] != "welcome"]
    assert seqs == list(range(1, len(seqs) + 1))


def test_room_grows_past_its_initial_table() -> None:
    room = make_room(room_cap=500)
    for i in range(150):
        enter(room, f"p{i}")
    room.handle("p149", p.PoseFrame(p.encode_pose(pose_at(4.0))), 0.0)
    frame = frames(room.tick(0.0))[0]
    assert len(frame.poses) == 150
    assert room.pose_of("p149")[0] == pytest.approx(4.0)


def test_recorded_inputs_replay_to_the_same_state() -> None:
    room = Room("s_rec", SCENE, RoomLimits(), record=True)
    enter(room, "t", Role.TEACHER)
    enter(room, "a", now=0.1)
    enter(room, "b", now=0.2)
    room.handle("a", p.PoseFrame(p.encode_pose(pose_at(1.5), stamp=9)), 0.3)
    room.tick(0.33)
    room.handle("a", p.Grab(type="grab", object=BEAKER), 0.4)
    room.handle("a", p.ObjectMove(SCENE.object_index()[BEAKER], (0.5, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0)), 0.5)
    room.handle("b", Disconnect(), 0.6)
    room.handle("c", Enter("c", Role.STUDENT, skills={"pouring": (0.5, 3)}), 0.65)
    room.handle("t", p.PushHint(type="push_hint", to=p.ToAll(all=True), text="Mind the flame"), 0.66)
    room.handle("a", p.Hint(type="hint", step="fill-flask"), 0.67)
    room.tick(61.0)  # idle long enough to be flagged
    room.handle("t", p.Freeze(type="freeze", frozen=True), 61.5)
    room.tick(61.6)
    assert room.inputs is not None
    copy = replay("s_rec", SCENE, RoomLimits(), room.inputs)
    assert copy.snapshot() == room.snapshot()
    assert copy.full_frame() == room.full_frame()


def test_spawn_points_place_and_turn_newcomers() -> None:
    from dataclasses import replace

    scene = replace(SCENE, spawn_points=((2.0, 0.0, 3.0, 90.0),))
    room = Room("s", scene, RoomLimits())
    enter(room, "a", Role.TEACHER)  # the scene's own spawn points: for whoever is at no station
    pose = room.pose_of("a")
    assert pose[0:3].tolist() == pytest.approx([2.0, 1.6, 3.0])
    assert pose[3:7].tolist() == pytest.approx([0, math.sin(math.pi / 4), 0, math.cos(math.pi / 4)], abs=1e-6)
    # facing +90° (left turn) the hands are ahead along -x
    assert pose[7] < 2.0 and pose[14] < 2.0 and pose[9] > pose[16]
    # a student appears at the spawn point of the station they are put at
    enter(room, "s")
    x, y, z = scene.stations[0]["spawn_points"][0]["position"]
    assert room.pose_of("s")[0:3].tolist() == pytest.approx([x, y + 1.6, z])


def test_hints_follow_the_role_table_and_stop_at_the_steps_last_rung() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "a")
    enter(room, "obs", Role.OBSERVER)
    ask = p.Hint(type="hint", step="fill-flask", id=1)
    assert [m["code"] for m in messages(room.handle("obs", ask, 1.0), "obs")] == ["forbidden"]
    assert [m["code"] for m in messages(room.handle("t", ask, 1.0), "t")] == ["forbidden"]
    [nudge] = of_type(room.handle("a", ask, 1.0), "hint")
    assert (nudge["step"], nudge["level"], nudge["to"]) == ("fill-flask", 1, ["a"]) and "pour" in nudge["text"]
    free = p.PushHint(type="push_hint", to=p.ToParticipant(participant="a"), text="Check the burner")
    assert [m["code"] for m in messages(room.handle("a", free, 1.0), "a")] == ["forbidden"]
    [hint] = of_type(room.handle("t", free, 1.0), "hint")
    assert (hint["to"], hint["level"], hint["text"], hint["cost"], hint["by"]) == (["a"], 0, "Check the burner", 0, "t")
    ladder = p.PushHint(type="push_hint", to=p.ToStation(station=1), level=3)
    assert [m["code"] for m in messages(room.handle("t", ladder, 1.0), "t")] == ["no_hint"]  # the step's hints end at 'specific'
    assert room.snapshot()["hints"]["stations"][0]["last"]["text"] == "Check the burner"


def test_a_snapshot_from_before_protocol_2_restores_and_ticks() -> None:
    """A rolling upgrade restores rooms pickled by the code before interest management."""
    import pickle

    room = make_room()
    enter(room, "a")
    room.tick(0.033)
    old = pickle.loads(pickle.dumps(room))
    state = old.__getstate__()
    for added in ("interest", "grid", "_staged_v2", "_roles_cache"):
        del state[added]
    for part in state["participants"].values():
        del part.protocol
    restored = Room.__new__(Room)
    restored.__setstate__(state)
    restored.handle("a", p.PoseFrame(p.encode_pose(pose_at(0.5), stamp=9)), 0.05)
    (frame,) = frames(restored.tick(0.066))
    assert frame.poses[0]["stamp"] == 9 and restored.participants["a"].protocol == 1
