"""Voice state in the room engine, with no sockets: mute, broadcast, offers and their hand-off."""

from __future__ import annotations

import numpy as np

from realtime import protocol as p
from realtime.audio import ipc, mixer
from realtime.roles import Role
from realtime.room import CallEnded, Disconnect, Media
from tests.unit.test_room import enter, make_room, of_type

SENDRECV = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"
RECVONLY = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"


def offer(sdp: str = SENDRECV) -> p.RtcOffer:
    return p.RtcOffer(type="rtc_offer", sdp=sdp, id="o")


def test_offer_is_authorised_and_handed_to_the_media_worker_then_closed_on_leave() -> None:
    room = make_room()
    enter(room, "s")
    out = room.handle("s", offer(), 0.0)
    assert out == [Media("s", room.participants["s"].slot, "offer", SENDRECV, True, "o")]
    assert [m.kind for m in room.handle("s", Disconnect(), 1.0) if isinstance(m, Media)] == ["close"]
    assert not room.participants["s"].in_call


def test_observers_offer_recvonly_only() -> None:
    room = make_room()
    enter(room, "o", Role.OBSERVER)
    refused = of_type(room.handle("o", offer(), 0.0), "error")
    assert refused[0]["code"] == "forbidden" and "may not speak" in refused[0]["message"]
    out = room.handle("o", offer(RECVONLY), 0.0)
    assert isinstance(out[0], Media) and out[0].send is False


def test_offers_are_rate_limited_per_participant() -> None:
    room = make_room(rtc_offer_rate=0.5, rtc_offer_burst=2)
    enter(room, "s")
    kinds = [type(room.handle("s", offer(), 0.0)[0]).__name__ for _ in range(3)]
    assert kinds == ["Media", "Media", "Send"]
    assert of_type(room.handle("s", offer(), 0.1), "error")[0]["code"] == "rate_limited"
    assert isinstance(room.handle("s", offer(), 2.1)[0], Media)


def test_mute_self_forced_mute_and_broadcast_are_sequenced_room_state() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "s")
    muted = of_type(room.handle("s", p.Mute(type="mute", muted=True), 0.0), "muted")[0]
    assert muted == {"type": "muted", "seq": muted["seq"], "participant": "s", "muted": True, "forced": False, "by": "s"}
    room.handle("t", p.Mute(type="mute", muted=True, participant="s"), 0.0)
    room.handle("s", p.Mute(type="mute", muted=False), 0.0)
    assert room.participants["s"].muted  # still forced
    assert of_type(room.handle("s", p.Mute(type="mute", muted=False, participant="t"), 0.0), "error")[0]["code"] == "forbidden"
    assert of_type(room.handle("t", p.Broadcast(type="broadcast", on=True), 0.0), "broadcast")[0]["on"] is True
    snapshot = room.snapshot()
    assert snapshot["broadcast"] == ["t"]
    assert next(q for q in snapshot["participants"] if q["id"] == "s")["forced_muted"] is True
    # a broadcasting teacher who leaves stops broadcasting
    out = room.handle("t", p.Leave(type="leave"), 1.0)
    assert of_type(out, "broadcast")[0]["on"] is False and room.broadcasting == set()


def test_voice_table_for_the_worker_carries_slots_flags_zones_and_heads() -> None:
    room = make_room()
    enter(room, "t", Role.TEACHER)
    enter(room, "s")
    enter(room, "o", Role.OBSERVER)
    assert ipc.encode_poses(room) is None  # nobody in a call: nothing to send
    for pid, sdp in (("t", SENDRECV), ("s", SENDRECV), ("o", RECVONLY)):
        room.handle(pid, offer(sdp), 0.0)
    room.handle("t", p.Broadcast(type="broadcast", on=True), 0.0)
    room.handle("s", p.Mute(type="mute", muted=True), 0.0)
    data = ipc.encode_poses(room)
    assert data is not None
    message = ipc.decode(data[4], data[5:])
    assert isinstance(message, ipc.Poses) and message.room == room.id
    flags = {int(row["slot"]): int(row["flags"]) for row in message.table}
    part = room.participants
    assert flags[part["t"].slot] == mixer.MAY_SPEAK | mixer.BROADCAST
    assert flags[part["s"].slot] == mixer.MAY_SPEAK | mixer.MUTED
    assert flags[part["o"].slot] == 0
    assert np.allclose(message.table["head"][0], room.head_poses([part["t"].slot])[0])
    room.handle("s", CallEnded(), 0.0)
    assert not part["s"].in_call


def test_voice_levels_show_no_speaking_after_a_mute_the_worker_has_not_seen_yet() -> None:
    room = make_room()
    enter(room, "a")
    enter(room, "b")
    room.handle("a", p.Mute(type="mute", muted=True), 0.0)
    # the worker's report was mixed before it learnt of the mute, and names someone gone
    sent = of_type(room.voice_levels({"a": 0.4, "b": 0.3, "gone": 0.2}), "voice_levels")
    assert sent == [{"type": "voice_levels", "levels": {"a": 0.0, "b": 0.3}}]
    assert room.voice_levels({"gone": 0.2}) == []
