"""The room log: entries that replay exactly, sealed snapshots, the journal that holds a room's
answers until they are logged, and recovery from the embedded store after a "crash" (the
room object thrown away, only the SQLite file kept)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from realtime import protocol as p
from realtime.limits import RoomLimits
from realtime.log import entries as codec
from realtime.log.backend import Fence, Gap, LogError, Stored
from realtime.log.embedded import EmbeddedLog
from realtime.log.journal import Journal, JournalSettings
from realtime.log.recovery import restore
from realtime.log.snapshot import SnapshotRefused, seal, state_hash, unseal
from realtime.roles import Role
from realtime.room import CallEnded, Disconnect, Enter, Outgoing, Room, Send
from tests.unit.test_room import BEAKER, BURNER, SCENE, pose_at

KEY = b"k" * 32


def scene(package_id: str, version: int):  # type: ignore[no-untyped-def]
    assert (package_id, version) == (SCENE.id, SCENE.version)
    return SCENE


def scripted(room: Room) -> None:
    """Every kind of input a room takes: joins, poses, grabs, moves, equipment, hints, moderation, drops."""
    room.handle("t", Enter("Teacher", Role.TEACHER), 0.0)
    room.handle("a", Enter("Ali", Role.STUDENT, device="dev-a", skills={"pouring": (0.4, 2)}), 0.1)
    room.handle("b", Enter("Bea", Role.STUDENT), 0.2)
    room.handle("a", p.PoseFrame(p.encode_pose(pose_at(1.5), stamp=7)), 0.25)
    room.handle("a", p.PoseFrame(p.encode_pose(pose_at(1.6), stamp=8)), 0.26)  # a tick keeps the latest
    room.tick(0.3)
    room.handle("a", p.Grab(type="grab", object=BEAKER, id=4), 0.4)
    room.handle("a", p.ObjectMove(SCENE.object_index()[BEAKER], (0.5, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0)), 0.5)
    room.handle("b", p.Interact(type="interact", object=BURNER, property="lit", value=True, id="x"), 0.55)
    room.handle("b", p.PoseFrame(p.encode_pose(pose_at(-1.0), stamp=3)), 0.56)
    room.tick(0.6)
    room.handle("a", p.Hint(type="hint", step="fill-flask"), 0.7)
    room.handle("t", p.PushHint(type="push_hint", to=p.ToAll(all=True), text="Mind the flame"), 0.8)
    room.handle("b", CallEnded(), 0.85)
    room.handle("b", Disconnect(), 0.9)
    room.tick(61.0)
    room.handle("t", p.Freeze(type="freeze", frozen=True), 61.5)
    room.tick(61.6)


def test_every_input_survives_encoding_and_replays_to_the_same_state() -> None:
    live = Room("r1", SCENE, RoomLimits(), record=True, run="run1")
    scripted(live)
    assert live.snapshot()["hints"] and live.frozen
    assert live.inputs is not None
    logged = [codec.encode(entry) for entry in live.inputs]
    again = Room("r1", SCENE, RoomLimits(), run="run1")
    from realtime.room import apply

    apply(again, [codec.decode(data, f"entry {i}") for i, data in enumerate(logged)])
    assert state_hash(again) == state_hash(live)
    assert again.seq == live.seq and again.tick_no == live.tick_no and again.pose_of("a")[0] == pytest.approx(1.6)
    # pose frames are folded into the ticks that accepted them: none is an entry of its own
    assert sum(data[:1] == b"T" for data in logged) == 4 and len(logged) == 4 + 11


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "too short"),
        (b"X" + bytes(8), "unknown entry kind"),
        (b"T" + bytes(8) + b"abc", "whole"),
        (b"H" + bytes(8) + b"{not json", "entry 7"),
        (b"H" + bytes(8) + b'{"p":"a","k":"msg","m":{"type":"grab"}}', "object"),
        (b"H" + bytes(8) + b'{"p":"a","k":"msg","m":{"type":"join","token":"x"}}', "never a room input"),
        (b"H" + bytes(8) + b'{"p":"a","k":"teleport","m":{}}', "unknown input kind"),
        (b"H" + bytes(8) + b'{"p":"a","k":"object_move","m":{"object":1,"transform":[1,2]}}', "7 numbers"),
        (b"H" + b"\x00\x00\x00\x00\x00\x00\xf0\x7f" + b'{"p":"a","k":"disconnect","m":{}}', "finite"),
    ],
)
def test_a_damaged_entry_is_refused_naming_it(data: bytes, says: str) -> None:
    with pytest.raises(codec.LogCorrupt) as refused:
        codec.decode(data, "room r, log entry 7")
    assert "entry 7" in str(refused.value) and says in str(refused.value)


def test_a_snapshot_opens_only_with_the_deployments_key() -> None:
    room = Room("r2", SCENE, RoomLimits(), record=True, run="run2")
    scripted(room)
    blob = seal(room, KEY)
    back = unseal(blob, KEY, scene)
    assert state_hash(back) == state_hash(room) and back.run == "run2" and back.scene is SCENE
    # the scene is named, not copied: the snapshot is far smaller than the lab's data
    assert SCENE.id.encode() in blob
    with pytest.raises(SnapshotRefused, match="seal"):
        unseal(blob, b"another deployment" * 2, scene)
    with pytest.raises(SnapshotRefused, match="seal"):
        unseal(blob[:-1] + bytes([blob[-1] ^ 1]), KEY, scene)
    with pytest.raises(SnapshotRefused, match="not a room snapshot"):
        unseal(b"PK\x03\x04" + blob[4:], KEY, scene)

    def missing(package_id: str, version: int):  # type: ignore[no-untyped-def]
        raise SnapshotRefused(f"its scene {package_id} version {version} is not stored on this node")

    with pytest.raises(SnapshotRefused, match="not stored"):
        unseal(blob, KEY, missing)


# ------------------------------------------------------------------ the journal, on the embedded store


class Harness:
    """A journaled room as the runner drives it: outputs go through the journal to ``delivered``."""

    def __init__(self, store: object, settings: JournalSettings = JournalSettings(snapshot_every=1.0), next_index: int = 0, room: Room | None = None) -> None:
        self.room = room or Room("r3", SCENE, RoomLimits(), record=True, run="run3")
        self.delivered: list[Outgoing] = []
        self.journal = Journal(self.room, store, KEY, self.delivered.extend, next_index=next_index, settings=settings)  # type: ignore[arg-type]
        self.journal.begin()

    def handle(self, pid: str, message: object, now: float) -> None:
        self.delivered.extend(self.journal.capture(self.room.handle(pid, message, now)))

    def tick(self, now: float) -> None:
        self.delivered.extend(self.journal.capture(self.room.tick(now)))
        self.journal.tick()


def run_class(h: Harness, start: float = 0.0, ticks: int = 90) -> None:
    """Three students walking for ``ticks`` ticks at 30 Hz, with a grab and a move on the way."""
    for pid in ("a", "b", "c"):
        h.handle(pid, Enter(pid.upper(), Role.STUDENT), start)
    for n in range(ticks):
        now = start + (n + 1) / 30
        for i, pid in enumerate(("a", "b", "c")):
            h.handle(pid, p.PoseFrame(p.encode_pose(pose_at(i + n / 100), stamp=n)), now - 0.01)
        if n == 10:
            h.handle("a", p.Grab(type="grab", object=BEAKER), now)
        if n == 20:
            h.handle("a", p.ObjectMove(SCENE.object_index()[BEAKER], (0.2, 1.1, 0.1, 0.0, 0.0, 0.0, 1.0)), now)
        h.tick(now)


async def test_a_room_comes_back_from_the_embedded_log_with_the_same_state(tmp_path: Path) -> None:
    store = EmbeddedLog(tmp_path)
    h = Harness(store)
    run_class(h)
    await h.journal.drained()
    stored = await store.load("r3")
    assert stored is not None
    # snapshots every second of room time trim what they cover: the log holds under a second of ticks
    assert stored.covers > 0 and len(stored.tail) < 35
    await store.close()

    # "the process died": only the file remains
    store = EmbeddedLog(tmp_path)
    stored = await store.load("r3")
    assert stored is not None
    back = restore(stored, KEY, scene)
    assert state_hash(back.room) == state_hash(h.room)
    assert back.room.holder_of(BEAKER) == "a" and back.next_index == h.journal.next_index

    # the restored room goes on logging where the log ends, and comes back again
    h2 = Harness(store, next_index=back.next_index, room=back.room)
    h2.handle("a", Disconnect(), back.room.now + 0.1)
    h2.tick(back.room.now + 0.2)
    await h2.journal.drained()
    stored = await store.load("r3")
    assert stored is not None
    assert state_hash(restore(stored, KEY, scene).room) == state_hash(h2.room)
    await store.close()


class Gated:
    """An embedded store whose appends wait for the test to open the gate, or fail while told to."""

    def __init__(self, inner: EmbeddedLog) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.fail = 0
        self.calls = 0

    async def append(self, room: str, first: int, entries: list[bytes], snapshot: tuple[int, bytes] | None, fence: Fence | None) -> None:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise LogError("disk full")
        await self.inner.append(room, first, entries, snapshot, fence)


async def test_a_grab_is_answered_only_once_it_is_in_the_log(tmp_path: Path) -> None:
    gated = Gated(EmbeddedLog(tmp_path))
    h = Harness(gated)  # type: ignore[arg-type]
    h.handle("a", Enter("Ali", Role.STUDENT), 0.0)
    h.handle("a", p.Grab(type="grab", object=BEAKER), 0.1)
    assert h.delivered == []  # the welcome and the grab wait for their append
    gated.gate.set()
    await h.journal.drained()
    kinds = [p_["type"] for p_ in (_json(o) for o in h.delivered) if p_]
    assert kinds.index("welcome") < kinds.index("grabbed")
    stored = await gated.inner.load("r3")
    assert stored is not None and restore(stored, KEY, scene).room.holder_of(BEAKER) == "a"
    await gated.inner.close()


async def test_pose_ticks_go_out_at_once_and_share_appends(tmp_path: Path) -> None:
    gated = Gated(EmbeddedLog(tmp_path))
    gated.gate.set()
    h = Harness(gated, JournalSettings(snapshot_every=100.0, flush_every=0.05))  # type: ignore[arg-type]
    h.handle("a", Enter("Ali", Role.STUDENT), 0.0)
    await h.journal.drained()
    calls = gated.calls
    for n in range(1, 31):
        h.handle("a", p.PoseFrame(p.encode_pose(pose_at(n / 100), stamp=n)), n / 30 - 0.01)
        sent = len(h.delivered)
        h.tick(n / 30)
        assert len(h.delivered) == sent + 1  # the tick's frame at once: it acknowledges nothing
        await asyncio.sleep(0.005)
    await h.journal.drained()
    assert gated.calls - calls < 15  # thirty ticks in a few appends, not thirty
    stored = await gated.inner.load("r3")
    assert stored is not None and state_hash(restore(stored, KEY, scene).room) == state_hash(h.room)
    await gated.inner.close()


async def test_a_failing_log_lets_the_class_go_on_and_catches_up(tmp_path: Path) -> None:
    gated = Gated(EmbeddedLog(tmp_path))
    gated.gate.set()
    gated.fail = 3
    h = Harness(gated, JournalSettings(snapshot_every=100.0, retry_after=0.01))  # type: ignore[arg-type]
    h.handle("a", Enter("Ali", Role.STUDENT), 0.0)
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    assert h.journal.degraded and h.journal.last_error == "disk full"
    h.handle("a", p.Grab(type="grab", object=BEAKER), 0.1)
    assert any(_json(o).get("type") == "grabbed" for o in h.delivered)  # answered from memory meanwhile
    await h.journal.drained()
    assert not h.journal.degraded
    stored = await gated.inner.load("r3")
    assert stored is not None and state_hash(restore(stored, KEY, scene).room) == state_hash(h.room)
    await gated.inner.close()


async def test_a_log_that_cannot_be_written_for_too_long_is_given_up_whole(tmp_path: Path) -> None:
    gated = Gated(EmbeddedLog(tmp_path))
    gated.gate.set()
    gated.fail = 10**6
    h = Harness(gated, JournalSettings(snapshot_every=100.0, max_pending=20, retry_after=0.001))  # type: ignore[arg-type]
    for n in range(40):
        h.tick(n / 30)
        await asyncio.sleep(0.002)
    assert h.journal.lost and h.journal.pending_entries == 0
    await gated.inner.close()


async def test_the_embedded_store_refuses_a_gap_and_accepts_a_retried_append(tmp_path: Path) -> None:
    store = EmbeddedLog(tmp_path)
    room = Room("r4", SCENE, RoomLimits())
    await store.append("r4", 0, [], (-1, seal(room, KEY)), None)
    await store.append("r4", 0, [b"e0", b"e1"], None, None)
    await store.append("r4", 0, [b"e0", b"e1"], None, None)  # the same append again: it had landed
    with pytest.raises(Gap):
        await store.append("r4", 5, [b"e5"], None, None)
    with pytest.raises(Gap):
        await store.append("r4", 1, [b"x"], None, None)
    stored = await store.load("r4")
    assert stored == Stored(stored.snapshot, -1, [(0, b"e0"), (1, b"e1")]) if stored else False
    await store.drop("r4")
    assert await store.load("r4") is None
    await store.close()


async def test_a_missing_or_damaged_entry_stops_the_room_from_loading(tmp_path: Path) -> None:
    store = EmbeddedLog(tmp_path)
    h = Harness(store, JournalSettings(snapshot_every=100.0))
    run_class(h, ticks=5)
    await h.journal.drained()
    await store.close()
    with sqlite3.connect(tmp_path / "rooms.sqlite3") as db:
        db.execute("UPDATE entries SET data = ? WHERE n = 3", (b"H" + bytes(8) + b"{",))
    stored = await (store := EmbeddedLog(tmp_path)).load("r3")
    assert stored is not None
    with pytest.raises(codec.LogCorrupt, match="room r3, log entry 3"):
        restore(stored, KEY, scene)
    with pytest.raises(codec.LogCorrupt, match="entry 3 is missing"):
        restore(Stored(stored.snapshot, stored.covers, [e for e in stored.tail if e[0] != 3]), KEY, scene)
    await store.close()


def test_a_newer_log_file_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "rooms.sqlite3") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(LogError, match="newer Amaliy"):
        EmbeddedLog(tmp_path)


def _json(item: Outgoing) -> dict:
    import json

    return json.loads(item.data) if isinstance(item, Send) and isinstance(item.data, str) else {}
