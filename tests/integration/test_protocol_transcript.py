"""docs/protocol.md §12 is the transcript of a real session, and this test is what records it.

A real server process, raw WebSocket clients (``websockets``, no compression) and an HTTP client
play a practical from the first REST call to the SIGTERM that stops the server; every frame both
ways is recorded, rendered as Markdown with the prose that explains it, and compared with §12 of
docs/protocol.md. When the server changes what it sends, the test fails and says how to write the
new transcript into the doc, so the doc cannot drift from the server.

The rendering reflects whatever the server sends: new fields and message types show up in it as
they are. Only what differs between two runs is replaced by stable placeholders (tokens, ids, join
codes, ports, clocks, tick numbers; the doc says which). For the same reason the transcript shows
tick frames only where a step waits for one (the FULL frame after every ``welcome`` and the
frames that relay a pose, a grab, a move...): how many other ticks arrive depends on timing.
Every wait is for a condition; the one thing waited for by the clock is a total time that keeps
the challenge's time bonus in one band (see ``challenge``).
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from realtime import codec_v2 as v2
from realtime import protocol as p
from tests.conftest import REPO, LiveServer, start_server

DOC = REPO / "docs" / "protocol.md"
HEADING = "## 12. Worked example (a real session)\n"
NEXT = "\n---\n\n## 13."
REGENERATE = "AMALIY_WRITE_TRANSCRIPT=1 .venv/bin/python -m pytest tests/integration/test_protocol_transcript.py"
#: seconds to wait for any one condition (generous: the machine may be busy)
WAIT = 30.0
WIDTH = 118

# --------------------------------------------------------------------------- normalising

#: keys whose numbers are read off the room's clock: numbered in order of first sight
ROOM_TIMES = frozenset({"t", "now", "started", "since", "cooldown_until", "finished"})
#: keys whose numbers say how long something took in this run
DURATIONS = frozenset({"elapsed", "retry_after"})
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


class Raw(str):
    """Text written as it is where a JSON value would be: a placeholder or an elision."""


@dataclass(frozen=True)
class Elided:
    """Stands for ``count`` entries or items left out."""

    count: int

    def __str__(self) -> str:
        return f"…{self.count} more…"


class Normaliser:
    """Replaces what varies between runs with placeholders that do not."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.times: dict[float, Raw] = {}

    def name(self, real: str, placeholder: str) -> None:
        if real and real not in self.names:
            self.names[real] = placeholder

    def token(self, token: str, whose: str) -> None:
        """A token, and the participant id inside it (its ``sub`` claim)."""
        self.name(token, f"<token of {whose}>")
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.name(claims["sub"], PLACEHOLDER_IDS[whose])

    def text(self, text: str) -> str:
        for real in sorted(self.names, key=len, reverse=True):
            text = text.replace(real, self.names[real])
        return _JWT.sub("<token>", text)

    def value(self, value: Any, key: str | None = None, clocked: bool = True) -> Any:
        if isinstance(value, dict):
            clocked = clocked and value.get("type") != "pong"  # a pong's t is the client's own
            return {self.text(k): self.value(v, "opened" if key == "opened" else k, clocked) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key, clocked) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, float):
            if key == "opened" or (clocked and key in ROOM_TIMES):
                if value not in self.times:
                    self.times[value] = Raw(f"<t{len(self.times)}>")
                return self.times[value]
            if key in DURATIONS:
                return Raw(f"<{key}>")
            if key == "created":
                return Raw("<created>")
        if isinstance(value, int) and not isinstance(value, bool) and key == "tick":
            return Raw("<tick>")
        return value


#: what stands for each person's participant id in the transcript
PLACEHOLDER_IDS = {
    "Aziza": "p_aziza", "Bekzod": "p_bekzod", "Dilnoza": "p_dilnoza", "the teacher": "t_teacher-practical1",
    "Aziza (second practical)": "p_aziza2", "the teacher (second practical)": "t_teacher-practical2",
    "Bekzod (second practical)": "p_bekzod2",
}

# --------------------------------------------------------------------------- JSON layout

#: how much of a long list or object to show, by dotted path (``*``: any key or index); an int
#: keeps that many entries, a tuple keeps the entries of those keys
Keep = dict[str, "int | tuple[str, ...]"]
SNAPSHOT: Keep = {
    "snapshot.scene.zones": 2,
    "snapshot.objects": 10,
    "snapshot.objects.*.snap_points": 2,
    "snapshot.stations.list": 2,
    "snapshot.stations.list.*.highlight": 2,
    "snapshot.challenge.steps": 3,
    "snapshot.properties": 3,
    "snapshot.hints.stations": 2,
    "objects": 4,
    "objects.*.snap_points": 1,
}
#: a welcome after the first of a practical: what differs, the rest left out
BRIEF: Keep = {"limits": 0, "snapshot": ("tick", "seq", "now", "participants"), "snapshot.participants.*": ("id", "slot", "name")}


def shorten(value: Any, keep: Keep, path: str = "") -> Any:
    rule = next((r for pattern, r in keep.items() if re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), path)), None)
    if isinstance(value, dict):
        items = list(value.items())
        shown = [kv for kv in items if kv[0] in rule] if isinstance(rule, tuple) else items[:rule] if rule is not None else items
        out: dict[Any, Any] = {k: shorten(v, keep, f"{path}.{k}" if path else k) for k, v in shown}
        if len(shown) < len(items):
            out[Elided(len(items) - len(shown))] = None
        return out
    if isinstance(value, list):
        kept = value[:rule] if isinstance(rule, int) else value
        cut: list[Any] = [shorten(v, keep, f"{path}.*") for v in kept]
        if len(kept) < len(value):
            cut.append(Elided(len(value) - len(kept)))
        return cut
    return value


def compact(value: Any) -> str:
    if isinstance(value, (Raw, Elided)):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(_entry(k) + ("" if isinstance(k, Elided) else compact(v)) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(compact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _entry(key: Any) -> str:
    return str(key) if isinstance(key, Elided) else json.dumps(key, ensure_ascii=False) + ":"


def wrapped(value: Any, column: int) -> list[str]:
    """``value`` as JSON starting at ``column``: one line if it fits, else its entries packed onto
    lines under its opening bracket (each later line carries its own indent)."""
    flat = compact(value)
    if column + len(flat) <= WIDTH or not isinstance(value, (dict, list)) or not value:
        return [flat]
    if isinstance(value, dict):
        entries = [(_entry(k), None if isinstance(k, Elided) else v) for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        entries = [("", v) for v in value]
        opening, closing = "[", "]"
    indent = " " * (column + 1)
    lines: list[str] = []
    line = " " * column + opening
    for i, (head, item) in enumerate(entries):
        tail = closing if i == len(entries) - 1 else ","
        text = head + ("" if item is None and head.startswith("…") else compact(item))
        if line.strip() not in (opening, "") and len(line) + len(text) + len(tail) > WIDTH:
            lines.append(line)
            line = indent
        if len(line) + len(text) + len(tail) <= WIDTH or (item is None and head.startswith("…")):
            line += text + tail
            continue
        parts = wrapped(item, len(line) + len(head))
        line += head + parts[0].lstrip()
        if len(parts) > 1:
            lines.append(line)
            lines.extend(parts[1:-1])
            line = parts[-1]
        line += tail
    lines.append(line)
    return [lines[0][column:], *lines[1:]]


# --------------------------------------------------------------------------- binary frames


def hex_lines(data: bytes, masked: tuple[int, int] | None = None) -> list[str]:
    """A hex dump, 16 bytes a line; ``masked`` (start, length) shows a field that varies as xx."""
    cells = [f"{b:02x}" for b in data]
    if masked is not None:
        cells[masked[0] : masked[0] + masked[1]] = ["xx"] * masked[1]
    return [
        f"{offset:04x}  {' '.join(cells[offset:offset + 8])}  {' '.join(cells[offset + 8:offset + 16])}".rstrip()
        for offset in range(0, len(cells), 16)
    ]


def nums(values: Iterable[float]) -> str:
    return ", ".join(f"{float(v):.6g}" for v in values)


HANDS = {0: "no hand tracked", 1: "left hand tracked", 2: "right hand tracked", 3: "both hands tracked"}
SIDES = ((p.FLAG_LEFT_TRACKED, "left hand"), (p.FLAG_RIGHT_TRACKED, "right hand"))


def fixed(values: Iterable[float], digits: int = 3) -> str:
    """Numbers to a fixed number of decimals (the grid's millimetres), never as -0.000."""
    return " ".join(f"{round(float(v), digits) + 0.0:.{digits}f}" for v in values)


def quantized(name: str, position: np.ndarray, rotation: int, decoded: np.ndarray | None, turn: bool = True) -> str:
    """A protocol 2 POSITION and ROTATION as the numbers sent and, unless ``decoded`` is None
    (a frame the codec refuses), the position and quaternion they decode to."""
    rotation = int(rotation)
    u = " ".join(str(int(c)) for c in position)
    turned = f"rotation {rotation:08x} ({'xyzw'[rotation >> 30]} dropped; {(rotation >> 20) & 0x3FF} {(rotation >> 10) & 0x3FF} {rotation & 0x3FF})"
    if decoded is None:
        return f"{name} u = {u}, {turned}"
    return f"{name} u = {u} → {fixed(decoded[0:3])}" + (f", {turned} → {fixed(decoded[3:7], 4)}" if turn else "")


def client_frame(data: bytes, objects: list[str], grid: v2.Grid | None = None) -> list[str]:
    """A client POSE, POSE_V2 (decoded on the sender's ``grid``) or OBJECT_MOVE as annotated hex."""
    if data[:1] == bytes([p.BinaryKind.POSE_V2]) and grid is not None and len(data) in v2.CLIENT_POSE_SIZES:
        _, flags, stamp_v2 = v2.CLIENT_POSE_HEAD.unpack_from(data)
        blocks = np.frombuffer(data, v2.BLOCK, offset=v2.CLIENT_POSE_HEAD.size)
        try:
            pose: np.ndarray | None = v2.decode_pose_v2(data, grid)[2].reshape(3, 7)
            refusal = ""
        except p.ProtocolError as exc:
            pose, refusal = None, f"does not decode: {exc.code.value}"
        sent = [(0, "head")] + [(i + 1, side) for i, (bit, side) in enumerate(SIDES) if flags & bit]
        notes = [
            f"{data[0]:02x} = kind POSE_V2, {data[1]:02x} = flags ({HANDS[flags & 3]}), "
            f"{' '.join(f'{b:02x}' for b in data[2:6])} = stamp {stamp_v2}",
            *(quantized(name, block["position"], block["rotation"], None if pose is None else pose[row])
              for (row, name), block in zip(sent, blocks)),
            *([refusal] if refusal else []),
        ]
        return [f"POSE_V2, {len(data)} bytes", *hex_lines(data), *("      " + n for n in notes)]
    stamp = " ".join(f"{b:02x}" for b in data[4:8])
    if data[:1] == bytes([p.BinaryKind.POSE]) and len(data) == p.CLIENT_POSE.itemsize:
        rec = np.frombuffer(data, p.CLIENT_POSE)[0]
        pose = rec["pose"]
        notes = [
            f"{data[0]:02x} = kind POSE, {data[1]:02x} = flags ({HANDS[int(rec['flags']) & 3]}), "
            f"00 00 = reserved, {stamp} = stamp {int(rec['stamp'])}",
            f"head {nums(pose[0:3])}, rotation {nums(pose[3:7])}",
            f"left hand {nums(pose[7:10])}, rotation {nums(pose[10:14])}",
            f"right hand {nums(pose[14:17])}, rotation {nums(pose[17:21])}",
        ]
        return [f"POSE, {len(data)} bytes", *hex_lines(data), *("      " + n for n in notes)]
    if data[:1] == bytes([p.BinaryKind.OBJECT_MOVE]) and len(data) == p.CLIENT_OBJECT_MOVE.itemsize:
        rec = np.frombuffer(data, p.CLIENT_OBJECT_MOVE)[0]
        index = int(rec["object"])
        notes = [
            f"{data[0]:02x} = kind OBJECT_MOVE, {data[1]:02x} = reserved, {data[2]:02x} {data[3]:02x} = object index {index}"
            f" ({objects[index] if index < len(objects) else 'no such object'}), {stamp} = stamp {int(rec['stamp'])} (ignored)",
            f"position {nums(rec['transform'][0:3])}, quaternion {nums(rec['transform'][3:7])}",
        ]
        return [f"OBJECT_MOVE, {len(data)} bytes", *hex_lines(data), *("      " + n for n in notes)]
    return [f"binary frame, {len(data)} bytes", *hex_lines(data)]


def held_summary(records: list[tuple[int, int]], objects: list[str]) -> str:
    """Many object records (index, holder) in one line: the range, and who holds what."""
    held = [f"{objects[i]} held by slot {h}" for i, h in records if h != p.NO_HOLDER]
    return (
        f"{len(records)} OBJECT_RECORDs, indices {records[0][0]} to {records[-1][0]}: "
        + (", ".join(held) + "; every other holder" if held else "every holder") + " ff ff (NO_HOLDER)"
    )


def holder_of(holder: int, slots: dict[int, str]) -> str:
    return "ff ff (NO_HOLDER)" if holder == p.NO_HOLDER else f"slot {holder} ({slots.get(holder, '?')})"


def tick_frame(data: bytes, slots: dict[int, str], objects: list[str], grid: v2.Grid | None = None) -> list[str]:
    """A server frame: a TICK, or a TICK_V2 decoded on the recipient's ``grid``, as annotated hex
    with its tick number masked (a big one as its header and a summary of its records); a kind
    this test does not decode as plain hex."""
    if data[:1] == bytes([p.BinaryKind.TICK_V2]) and grid is not None:
        return tick_frame_v2(data, slots, objects, grid)
    if data[:1] != bytes([p.BinaryKind.TICK]):
        return [f"binary frame, {len(data)} bytes, kind 0x{data[0]:02x} (§7)", *hex_lines(data)]
    tick = p.decode_tick(data)
    big = len(data) > 160
    notes = [
        f"header: kind 0x10, flags {data[1]:02x} ({'FULL' if tick.full else 'delta'}), poses {len(tick.poses)}, "
        f"objects {len(tick.objects)}, tick xx xx xx xx (the room's tick counter), event_seq {tick.event_seq}"
    ]
    for rec in tick.poses:
        notes.append(
            f"POSE_RECORD slot {int(rec['slot'])} ({slots.get(int(rec['slot']), '?')}), flags {int(rec['flags'])}, "
            f"stamp {int(rec['stamp'])}, head {nums(rec['pose'][0:3])}" + ("" if big else ", then its hands")
        )
    records = [(int(r["object"]), int(r["holder"]), r["transform"]) for r in tick.objects]
    if len(records) > 4:
        notes.append(held_summary([(i, h) for i, h, _ in records], objects))
    else:
        for index, holder, transform in records:
            notes.append(
                f"OBJECT_RECORD object {index} ({objects[index]}), holder {holder_of(holder, slots)}, "
                f"position {nums(transform[0:3])}, quaternion {nums(transform[3:7])}"
            )
    dump = hex_lines(data[: p.TICK_HEADER.itemsize] if big else data, masked=(8, 4))
    return [f"TICK, {len(data)} bytes" + (" (its header)" if big else ""), *dump, *("      " + n for n in notes)]


def tick_frame_v2(data: bytes, slots: dict[int, str], objects: list[str], grid: v2.Grid) -> list[str]:
    """A TICK_V2 as ``tick_frame`` shows a TICK: each record's quantized numbers and what they
    decode to on ``grid``; a big frame as its header, its head positions and a summary."""
    tick = v2.decode_tick_v2(data, grid)
    big = len(data) > 160
    at = v2.TICK_HEADER.itemsize
    heads = np.frombuffer(data, v2.HEAD_RECORD, count=len(tick.poses), offset=at)
    at += heads.nbytes
    tracked = [(row, bit, side) for row, head in enumerate(heads) for bit, side in SIDES if int(head["flags"]) & bit]
    hands = np.frombuffer(data, v2.BLOCK, count=len(tracked), offset=at)
    things = np.frombuffer(data, v2.OBJECT_RECORD, count=len(tick.objects), offset=at + hands.nbytes)
    notes = [
        f"header: kind 0x11, flags {data[1]:02x} ({'FULL' if tick.full else 'delta'}), poses {len(heads)}, "
        f"objects {len(things)}, tick xx xx xx xx (the room's tick counter), event_seq {tick.event_seq}"
    ]
    for head, rec in zip(heads, tick.poses):
        slot, flags = int(head["slot"]), int(head["flags"])
        notes.append(
            f"HEAD_RECORD slot {slot} ({slots.get(slot, '?')}), flags {flags} ({HANDS[flags & 3]}), stamp {int(head['stamp'])}, "
            + (quantized("head", head["position"], head["rotation"], rec["pose"][0:7], turn=False) if big else "then")
        )
        if not big:
            notes.append("  " + quantized("head", head["position"], head["rotation"], rec["pose"][0:7]))
    if big and len(tracked):
        notes.append(f"{len(tracked)} hand blocks")
    elif len(tracked):
        notes.append("hand blocks:")
        for (row, bit, side), block in zip(tracked, hands):
            start = 7 if bit == p.FLAG_LEFT_TRACKED else 14
            name = f"slot {int(heads[row]['slot'])} {side}"
            notes.append("  " + quantized(name, block["position"], block["rotation"], tick.poses[row]["pose"][start : start + 7]))
    if len(things) > 4:
        notes.append(held_summary([(int(r["object"]), int(r["holder"])) for r in things], objects))
    else:
        for raw, rec in zip(things, tick.objects):
            index = int(raw["object"])
            notes.append(f"OBJECT_RECORD object {index} ({objects[index]}), holder {holder_of(int(raw['holder']), slots)}, then")
            notes.append("  " + quantized("position", raw["position"], raw["rotation"], rec["transform"]))
    dump = hex_lines(data[: v2.TICK_HEADER.itemsize] if big else data, masked=(6, 4))
    return [f"TICK_V2, {len(data)} bytes" + (" (its header)" if big else ""), *dump, *("      " + n for n in notes)]


# --------------------------------------------------------------------------- recording


@dataclass
class Received:
    kind: str  # "text", "binary" or "close"
    data: Any
    shown: bool = False  # a delta tick frame a step waited for
    grid: v2.Grid | None = None  # a binary frame's: the grid of the welcome before it


def decoded(got: Received) -> p.TickFrame | None:
    """A received TICK or TICK_V2, decoded; None for anything else."""
    if got.kind != "binary":
        return None
    if got.data[:1] == bytes([p.BinaryKind.TICK]):
        return p.decode_tick(got.data)
    if got.data[:1] == bytes([p.BinaryKind.TICK_V2]) and got.grid is not None:
        return v2.decode_tick_v2(got.data, got.grid)
    return None


@dataclass(eq=False)
class Peer:
    """One socket (a person in the transcript, by letter), recording what it receives."""

    letter: str
    ws: ClientConnection | None = None
    inbox: list[Received] = field(default_factory=list)
    cursor: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    joined: bool = False
    hung_up: bool = False
    last_seq: int = 0
    #: from the newest welcome: this participant's slot and the grid its protocol 2 frames use
    slot: int | None = None
    grid: v2.Grid | None = None

    async def open(self, url: str) -> None:
        self.ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=WAIT)
        self.inbox, self.cursor, self.joined, self.hung_up = [], 0, False, False
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str):
                    body = json.loads(message)
                    if isinstance(body.get("seq"), int) and body.get("type") != "welcome":
                        self.last_seq = max(self.last_seq, body["seq"])
                    if body.get("type") == "welcome":
                        self.joined = True
                        self.slot = body["participant"]["slot"]
                        self.grid = v2.Grid.from_welcome(body["grid"])
                    self.inbox.append(Received("text", message))
                else:
                    self.inbox.append(Received("binary", message, grid=self.grid))
                self.arrived.set()
        except ConnectionClosed:
            pass
        if not self.hung_up:
            self.inbox.append(Received("close", (ws.close_code, ws.close_reason)))
        self.joined = False
        self.arrived.set()

    @property
    def open_now(self) -> bool:
        return self.ws is not None and self.joined and self.reader is not None and not self.reader.done()


Predicate = Callable[[Received], bool]


def event(type: str, **fields: Any) -> Predicate:
    def match(got: Received) -> bool:
        if got.kind != "text":
            return False
        body = json.loads(got.data)
        return body.get("type") == type and all(body.get(k) == v for k, v in fields.items())
    return match


def tick(test: Callable[[p.TickFrame], bool]) -> Predicate:
    """A tick frame of either version for which ``test`` holds."""
    def match(got: Received) -> bool:
        frame = decoded(got)
        if frame is not None and test(frame):
            got.shown = True
            return True
        return False
    return match


def has_pose(slot: int, stamp: int | None = None) -> Predicate:
    return tick(lambda f: not f.full and any(int(r["slot"]) == slot and (stamp is None or int(r["stamp"]) == stamp) for r in f.poses))


def has_object(index: int, holder: int | None = None, y: float | None = None, count: int | None = None) -> Predicate:
    def test(f: p.TickFrame) -> bool:
        if f.full or (count is not None and len(f.objects) != count):
            return False
        return any(
            int(r["object"]) == index and (holder is None or int(r["holder"]) == holder)
            and (y is None or abs(float(r["transform"][1]) - y) < 1e-4)
            for r in f.objects
        )
    return tick(test)


def closed(code: int) -> Predicate:
    return lambda got: got.kind == "close" and got.data[0] == code


class Transcript:
    """The session as Markdown: prose, and code blocks of what went over the wire."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.norm = Normaliser()
        port = live.base_url.rsplit(":", 1)[1]
        self.norm.name(f"127.0.0.1:{port}", "127.0.0.1:8500")
        self.norm.name(f"127.0.0.1:{int(port) + 1}", "127.0.0.1:8501")
        self.norm.name(live.teacher_key, "ak_…")
        self.out: list[str] = []
        self.block: list[str] | None = None
        self.peers: list[Peer] = []
        self.objects: list[str] = []
        self.slots: dict[int, str] = {}
        self.barriers = 0
        self.http = httpx.AsyncClient(base_url=live.base_url, timeout=WAIT)

    # ---- writing

    def say(self, markdown: str) -> None:
        self._close_block()
        self.out.append(markdown.strip("\n") + "\n")

    def line(self, text: str) -> None:
        if self.block is None:
            self.block = []
        self.block.extend(self.norm.text(text).split("\n"))

    def _close_block(self) -> None:
        if self.block is not None:
            self.out.append("```\n" + "\n".join(self.block) + "\n```\n")
            self.block = None

    def markdown(self) -> str:
        self._close_block()
        return "\n".join(self.out)

    def json_line(self, prefix: str, body: Any, keep: Keep | None = None, note: str = "", clocked: bool = True) -> None:
        shown = shorten(self.norm.value(body, clocked=clocked), keep if keep is not None else SNAPSHOT)
        lines = wrapped(shown, len(prefix))
        lines[0] = prefix + lines[0]
        if note:
            lines[-1] += "   " + note if len(lines[-1]) + len(note) < WIDTH else "\n" + " " * len(prefix) + note
        self.line("\n".join(lines))

    # ---- REST

    async def rest(self, method: str, path: str, body: Any = None, key: str | None = None,
                   headers: dict[str, str] | None = None, note: str = "", show: tuple[str, ...] = (),
                   learn: Callable[[Any], None] | None = None) -> httpx.Response:
        """Make a REST call and write it; ``learn`` registers the placeholders for what it answers."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        response = await self.http.request(method, path, json=body, headers=sent)
        request = f"{method} {path}" + "".join(f"   {k}: {v}" for k, v in sent.items())
        if body is not None:
            request += "   " + json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        self.line(request + (f"   {note}" if note else ""))
        if response.headers.get("content-type", "").startswith("application/json"):
            if learn is not None:
                learn(response.json())
            self.json_line(f"{response.status_code} ", response.json(), clocked=False)
        else:
            parts = [f"{h}: {response.headers[h]}" for h in show if h in response.headers]
            if response.status_code == 206:
                parts.append(repr(response.content)[2:-1] + "   (the first bytes)")
            elif response.status_code == 200:
                parts.insert(1, f"{len(response.content)} bytes")
            listed = ",\n    ".join(parts)
            self.line(f"{response.status_code} {listed}".rstrip())
        return response

    # ---- sockets

    def peer(self, letter: str) -> Peer:
        peer = Peer(letter)
        self.peers.append(peer)
        return peer

    async def burst(self, peer: Peer, messages: list[dict[str, Any]], shown: str) -> None:
        """Several messages in one write, so the server reads them at one instant; the first and
        the last are written, ``shown`` in between."""
        assert peer.ws is not None
        self.json_line(f"{peer.letter}→ ", messages[0], clocked=False)
        self.line(shown)
        self.json_line(f"{peer.letter}→ ", messages[-1], clocked=False)
        async with peer.ws.send_context():
            for message in messages:
                peer.ws.protocol.send_text(json.dumps(message, separators=(",", ":")).encode())

    async def send(self, peer: Peer, message: dict[str, Any] | bytes, note: str = "", render: bool = True) -> None:
        assert peer.ws is not None
        if isinstance(message, bytes):
            if render:
                lines = client_frame(message, self.objects, peer.grid)
                self.line(f"{peer.letter}→ " + lines[0] + (f"   {note}" if note else "") + "\n" + "\n".join(lines[1:]))
            await peer.ws.send(message)
            return
        if render:
            self.json_line(f"{peer.letter}→ ", message, note=note, clocked=False)
        await peer.ws.send(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    async def send_raw(self, peer: Peer, data: bytes, described: str) -> None:
        """A text frame as bytes (not necessarily UTF-8), shown as ``described``."""
        assert peer.ws is not None
        self.line(f"{peer.letter}→ {described}")
        await peer.ws.send(data, text=True)

    async def hang_up(self, peer: Peer) -> None:
        """Close the socket cleanly (1000), as a client does; closing is not leaving."""
        assert peer.ws is not None
        peer.hung_up = True
        self.line(f"{peer.letter}→ close 1000")
        await peer.ws.close()
        assert peer.reader is not None
        await peer.reader

    async def settle(self, expect: dict[Peer, list[Predicate]] | None = None, keep: Keep | None = None,
                     notes: dict[int, str] | None = None, first: Peer | None = None) -> None:
        """Wait until each peer received what ``expect`` lists (in that order), then until every
        joined socket has received everything the server sent up to now (a ``ping`` round trip on
        each, ``first`` first, which the transcript leaves out); then write what they received.
        ``notes`` puts a remark after the n-th line written."""
        deadline = time.monotonic() + WAIT
        for peer, predicates in (expect or {}).items():
            position = peer.cursor
            for predicate in predicates:
                while True:
                    found = next((i for i in range(position, len(peer.inbox)) if predicate(peer.inbox[i])), None)
                    if found is not None:
                        position = found + 1
                        break
                    peer.arrived.clear()
                    left = deadline - time.monotonic()
                    assert left > 0, f"{peer.letter} waited in vain; it got: {[r.data if r.kind != 'binary' else len(r.data) for r in peer.inbox[peer.cursor:]]}"
                    try:
                        await asyncio.wait_for(peer.arrived.wait(), left)
                    except asyncio.TimeoutError:
                        pass
        order = sorted(self.peers, key=lambda q: q is not first)
        for peer in order:
            if peer.open_now:
                await self._barrier(peer, deadline)
        self._write_received(keep, notes or {})

    async def _barrier(self, peer: Peer, deadline: float) -> None:
        """A message through the room (a grab of no object) whose refusal comes back after every
        output of the inputs before it, held or not for the room log; left out of the transcript."""
        self.barriers += 1
        mark = f"barrier-{self.barriers}"
        assert peer.ws is not None
        try:
            await peer.ws.send(json.dumps({"type": "grab", "object": mark, "id": mark}))
        except ConnectionClosed:
            return
        while not any(r.kind == "text" and json.loads(r.data).get("re") == mark for r in peer.inbox) and peer.open_now:
            peer.arrived.clear()
            await asyncio.wait_for(peer.arrived.wait(), max(0.1, deadline - time.monotonic()))

    def _shown(self, peer: Peer) -> list[Received]:
        out = []
        for got in peer.inbox[peer.cursor :]:
            if got.kind == "text" and str(json.loads(got.data).get("re", "")).startswith("barrier-"):
                continue
            if got.kind == "binary" and not (got.shown or ((frame := decoded(got)) is not None and frame.full)):
                continue
            out.append(got)
        peer.cursor = len(peer.inbox)
        return out

    def _write_received(self, keep: Keep | None, notes: dict[int, str]) -> None:
        """Each frame once, with every peer that received the same bytes: a frame is written when
        it heads the list of every peer that has it (all peers receive broadcasts in one order)."""
        lists = {peer.letter: self._shown(peer) for peer in self.peers}
        key = lambda got: (got.kind, got.data)
        written = 0
        while any(lists.values()):
            heads = [items[0] for items in lists.values() if items]
            ready = next(
                (h for h in heads if all(not any(key(g) == key(h) for g in items) or key(items[0]) == key(h) for items in lists.values())),
                heads[0],
            )
            letters = [letter for letter, items in lists.items() if items and key(items[0]) == key(ready)]
            for letter in letters:
                lists[letter].pop(0)
            self._write_one(",".join(letters) + "← ", ready, keep)
            written += 1
            if written in notes:
                self.line("     " + notes[written])

    def _write_one(self, prefix: str, got: Received, keep: Keep | None) -> None:
        if got.kind == "close":
            code, reason = got.data
            self.line(f"{prefix}close {code} {json.dumps(reason)}")
        elif got.kind == "binary":
            lines = tick_frame(got.data, self.slots, self.objects, got.grid)
            self.line(prefix + lines[0] + "\n" + "\n".join(lines[1:]))
        else:
            body = json.loads(got.data)
            if body.get("type") == "welcome" and "snapshot" in body:
                self.objects = [o["id"] for o in body["snapshot"]["objects"]]
            if body.get("type") in ("welcome", "joined"):
                who = body["participant"]
                self.slots[who["slot"]] = self.norm.text(who["id"])
            self.json_line(prefix, body, keep)


# --------------------------------------------------------------------------- the session


def pose_at(x: float, y: float, z: float) -> list[float]:
    """Standing at (x, y, z) on the floor: head 1.6 m up, hands lower and a little ahead."""
    return [x, y + 1.6, z, 0, 0, 0, 1, x - 0.2, y + 1.1, z - 0.25, 0, 0, 0, 1, x + 0.2, y + 1.1, z - 0.25, 0, 0, 0, 1]


async def record(live: LiveServer) -> str:
    t = Transcript(live)
    try:
        await practical(t)
        await protocol_two(t, await challenge(t))
        return t.markdown()
    finally:
        await t.http.aclose()
        for peer in t.peers:
            if peer.ws is not None:
                await peer.ws.close()


async def practical(t: Transcript) -> None:
    live = t.live
    t.say(f"""{HEADING}
This is a real run, recorded by `tests/integration/test_protocol_transcript.py` against a real
`amaliy serve` process, with raw WebSocket clients (Python `websockets`, `compression=None`) and an
HTTP client. The test fails when the server sends anything other than what this section shows;
after a change to the protocol, write the new transcript into this page with

```
{REGENERATE}
```

Three people take part: a teacher opens a practical on the sample scene `chemistry-bench` (eight
lab stations, each with its own copy of the bench equipment; ids such as `beaker-water@1` are
station 1's), two students (Aziza and Bekzod) join, and the teacher joins. §12.9 is a second
practical on the same server, in which Aziza does the lab's challenge from start to finish.
§12.10 is protocol 2: Bekzod joins that practical with a client that speaks it, beside two that
speak protocol 1.

Every message is shown as it went over the wire, except for what differs from one run to the
next, which is replaced by placeholders:

* tokens are `"<token of Aziza>"` (a real one is a JWT, `eyJhbGciOi…`), the teacher key `ak_…`;
* participant ids are `p_aziza`, `p_bekzod`, `t_teacher-practical1` … and session ids
  `s_practical1`, `s_practical2` (real ones end in 12 hex digits: `p_3fa65215cc94`,
  `t_363c915f85c9-4769846a5096`); join codes are `ABC234` and `DEF567`;
* the server's ports are 8500 (HTTP) and 8501 (room socket);
* numbers read off the room's clock (`now`, `t`, `started`, `opened`) are `<t0>`, `<t1>` …, the
  same placeholder for the same value; `elapsed` is `<elapsed>`, a session's `created` is
  `<created>`, and the snapshot's `tick` and an `ack`'s are `<tick>`: each is a JSON number;
* in binary frames the tick number is `xx xx xx xx`.

Long lists are cut (`…56 more…` says how many items or fields were left out), and a `welcome`
after the first one of a practical shows only what differs. Tick frames are shown where a step
waits for one (the FULL frame after each `welcome`, the frame that relays a pose, a grab, a move);
a frame that changed nothing of interest between two steps is left out, since how many arrive
depends on timing. Frames are written once, with everyone who received the same bytes: `A,B,T←`.

Arrows show direction. **A** is Aziza (slot 0, station 1), **B** is Bekzod (slot 1, station 2)
and **T** is the teacher (slot 2); **D** is a latecomer and **X** a socket that never joins.

### 12.1 REST
""")
    def opened_one(body: dict[str, Any]) -> None:
        t.norm.name(body["id"], "s_practical1")
        t.norm.name(body["join_code"], "ABC234")
        t.norm.name(body["join_code"].lower(), "abc234")
        t.norm.token(body["teacher_token"], "the teacher")

    def joined_as(name: str) -> Callable[[Any], None]:
        def learn(body: dict[str, Any]) -> None:
            t.norm.token(body["token"], name)
            t.norm.name(body["device"], f"<device of {name}>")
        return learn

    opened = await t.rest("POST", "/api/sessions", {"scene": "chemistry-bench", "title": "Water bath practical"},
                          key=live.teacher_key, learn=opened_one)
    session = opened.json()
    code = session["join_code"]
    t.line("")
    aziza = (await t.rest("POST", "/api/join", {"code": f" {code.lower()} ", "name": "Aziza", "role": "student"},
                          note="(lower case and spaces are fine)", learn=joined_as("Aziza"))).json()
    t.line("")
    bekzod = (await t.rest("POST", "/api/join", {"code": code, "name": "Bekzod", "role": "student"}, learn=joined_as("Bekzod"))).json()
    t.line("")
    glb = "/api/scenes/chemistry-bench/versions/1/scene.glb"
    model = await t.rest("GET", glb, show=("content-type", "etag", "cache-control"))
    await t.rest("GET", glb, headers={"If-None-Match": model.headers["etag"]})
    await t.rest("GET", glb, headers={"Range": "bytes=0-11"}, show=("content-range",))

    A, B, T, D, X = (t.peer(letter) for letter in "ABTDX")
    t.say("""### 12.2 Joining

The practical places students itself (`assignment: "auto"`, two places per station): each new
student goes to the least-filled station, so Aziza gets station 1 and Bekzod station 2. The
`joined` about yourself right after `welcome` has the welcome's `seq`: a duplicate, ignore it. The
snapshot already shows the `station` and `challenge_started` that follow it (Aziza among station
1's members, its progress started): apply them anyway.
""")
    await A.open(session["ws_url"])
    await t.send(A, {"type": "join", "token": aziza["token"], "id": "j1"})
    await t.settle({A: [event("challenge_started"), has_pose(0)]})
    t.line("")
    await B.open(session["ws_url"])
    await t.send(B, {"type": "join", "token": bekzod["token"]})
    # not Bekzod's own first delta: it may also carry Aziza's join pose, due to him as far on the
    # first far tick after her join (§7.6) when that is also the tick after his
    await t.settle({A: [event("challenge_started", station=2), has_pose(1)], B: [event("challenge_started")]}, keep=BRIEF)
    t.line("")
    await T.open(session["ws_url"])
    await t.send(T, {"type": "join", "token": session["teacher_token"]}, note="(the teacher_token)")
    await t.settle({peer: [event("joined"), has_pose(2)] for peer in (A, B, T)}, keep=BRIEF)
    t.say("""A teacher is placed at no station: the teacher stands at the scene's first spawn point, behind the
teacher's desk facing the class. Students placed at a station as they join stand at the station's
spawn points instead, and take none of the scene's (§7.4).

### 12.3 A pose, and the tick that relays it

Aziza sends her pose: at her station's spawn point, hands lower and a little ahead, identity
rotations, both hands tracked, stamp 123456. At the next tick all three receive the same bytes:
bytes 4–91 of the pose record are the bytes she sent.
""")
    await t.send(A, p.encode_pose(pose_at(-4.85, 0.0, -0.45), stamp=123456))
    await t.settle({peer: [has_pose(0, stamp=123456)] for peer in (A, B, T)})
    t.say("""### 12.4 Grabbing, moving, releasing

`beaker-water@1` has index 3. The scene's shared objects come first (0 `room`, 1 `teacher-desk`,
both fixed), then each station's copies of the bench equipment, eight per station in the same order:
station 1 has indices 2–9 (`bench@1` … `mat@1`), station 2 has 10–17, and so on up to 65.
""")
    await t.send(A, {"type": "grab", "object": "beaker-water@1", "id": 7})
    await t.settle({peer: [event("grabbed"), has_object(3, holder=0)] for peer in (A, B, T)}, first=A)
    t.line("")
    await t.send(T, {"type": "grab", "object": "beaker-water@1", "id": "t-1"})
    await t.settle(first=T)
    await t.send(B, {"type": "grab", "object": "bench@2", "id": "b-2"})
    await t.settle(first=B)
    t.say("Aziza lifts the beaker:")
    lifted = [-4.95, 1.05, -1.3, 0, 0, 0, 1]
    await t.send(A, p.encode_object_move(3, lifted, stamp=123500))
    await t.settle({peer: [has_object(3, y=1.05)] for peer in (A, B, T)}, first=A)
    t.say("A move whose quaternion is not a unit quaternion (norm² = 4) is refused on arrival and changes nothing:")
    await t.send(A, p.encode_object_move(3, [-4.95, 1.05, -1.3, 0, 0, 0, 2], stamp=123501))
    await t.settle(first=A)
    t.line("")
    await t.send(A, {"type": "release", "object": "beaker-water@1"})
    await t.settle({peer: [event("released"), has_object(3, holder=p.NO_HOLDER)] for peer in (A, B, T)}, first=A)
    t.say("The beaker is free now, but it is station 1's: Bekzod, at station 2, may not take it.")
    await t.send(B, {"type": "grab", "object": "beaker-water@1", "id": "b-1"})
    await t.settle(first=B)

    t.say("### 12.5 Errors, ping")
    bad_pose = pose_at(-1.85, 0.0, -0.45)
    bad_pose[3:7] = [2, 0, 0, 1]
    for message in (
        {"type": "lock", "locked": True, "id": 3},
        {"type": "ping", "t": 1234.5, "id": 4},
        {"type": "wave", "id": 5},
        {"type": "grab", "object": "beaker-water@9"},
        {"type": "grab"},
        {"type": "ping", "id": True},
    ):
        await t.send(B, message)
        await t.settle(first=B)
    await t.send(B, p.encode_pose(bad_pose, stamp=200), note="(head quaternion 2, 0, 0, 1: norm² = 5)", render=False)
    t.line("B→ POSE, 92 bytes, head quaternion (2, 0, 0, 1)       (norm² = 5)")
    await t.settle({B: [event("error", code="bad_pose")]}, first=B)
    t.say("The lab's own refusals (§15.1). None of them changes the room:")
    for peer, message in (
        (B, {"type": "interact", "object": "burner@1", "property": "lit", "value": True, "id": "b-3"}),
        (A, {"type": "interact", "object": "burner@1", "property": "lit", "value": "on", "id": "a-1"}),
        (A, {"type": "interact", "object": "burner@1", "property": "colour", "value": "blue", "id": "a-2"}),
        (A, {"type": "interact", "object": "thermometer@1", "property": "reading", "value": 80, "id": "a-3"}),
        (A, {"type": "answer", "step": "read-temperature", "value": 80, "id": "a-4"}),
        (A, {"type": "answer", "step": "fill-flask", "value": 1, "id": "a-5"}),
        (A, {"type": "choose_station", "station": 3, "id": "a-6"}),
        (T, {"type": "answer", "step": "read-temperature", "value": 80, "id": "t-2"}),
        (T, {"type": "assign_station", "participant": bekzod["participant_id"], "station": 9, "id": "t-3"}),
    ):
        await t.send(peer, message)
        await t.settle(first=peer)
    t.say("""The teacher sends 21 `interact` messages at once, each setting `burner@1.lit` to the `false` it
already is (so the first 20 change nothing and cause no event). The 21st is past `interact_burst`:
""")
    await t.burst(T, [{"type": "interact", "object": "burner@1", "property": "lit", "value": False, "id": f"r{n}"} for n in range(1, 22)],
                  "   … r2 to r20, the same …")
    await t.settle({T: [event("error", re="r21")]}, first=T)
    t.say("""Frames that break the framing rules (§3.2) close the socket, joined or not: here two sockets that
never sent `join`. Over `max_message_bytes`, and text that is not UTF-8:
""")
    await X.open(session["ws_url"])
    await t.send_raw(X, b"x" * (live_limit := 16 * 1024 + 1), f"a text frame of {live_limit} bytes, xxxx…")
    await t.settle({X: [closed(1009)]})
    await X.open(session["ws_url"])
    await t.send_raw(X, b'{"type":"ping","x":"\xff"}', 'a text frame of the bytes {"type":"ping","x":"\\xff"}')
    await t.settle({X: [closed(1007)]})

    t.say("### 12.6 A drop, a lock, a resume with replay")
    seen = B.last_seq
    t.say(f"""Bekzod's socket closes (a clean close, no `leave`). The teacher locks the room. Bekzod comes
back with the same token and `last_seq: {seen}`, the last event he applied.
""")
    await t.hang_up(B)
    await t.settle({A: [event("presence", connected=False)], T: [event("presence", connected=False)]})
    await t.send(T, {"type": "lock", "locked": True})
    await t.settle({T: [event("locked")]}, first=T)
    t.line("")
    await B.open(session["ws_url"])
    await t.send(B, {"type": "join", "token": bekzod["token"], "last_seq": seen}, note="(new socket, same token)")
    await t.settle({peer: [event("presence", connected=True)] for peer in (A, B, T)}, keep=BRIEF,
                   notes={2: "(replayed)", 3: "(replayed)"})
    t.say("The lock does not stop Bekzod from resuming, and he is still at station 2. A new student is refused:")
    dilnoza = (await t.rest("POST", "/api/join", {"code": code, "name": "Dilnoza"}, learn=joined_as("Dilnoza"))).json()
    await D.open(session["ws_url"])
    await t.send(D, {"type": "join", "token": dilnoza["token"]})
    await t.settle({D: [closed(4006)]})

    t.say("### 12.7 Freeze, summon, reset")
    await t.send(A, {"type": "interact", "object": "burner@1", "property": "lit", "value": True})
    await t.settle({A: [event("property")]}, first=A)
    await t.send(A, {"type": "grab", "object": "flask@1"})
    await t.settle({peer: [event("grabbed"), has_object(5, holder=0)] for peer in (A, B, T)}, first=A)
    await t.send(T, {"type": "freeze", "frozen": True})
    await t.settle({peer: [event("frozen"), has_object(5, holder=p.NO_HOLDER)] for peer in (A, B, T)}, first=T)
    await t.send(A, {"type": "grab", "object": "flask@1", "id": "g2"})
    await t.settle(first=A)
    await t.send(A, {"type": "interact", "object": "burner@1", "property": "lit", "value": False, "id": "g3"})
    await t.settle(first=A)
    await t.send(T, {"type": "freeze", "frozen": False})
    await t.settle(first=T)
    await t.send(T, {"type": "summon", "position": [0, 0, -3.5]})
    await t.settle(first=T)
    await t.send(T, {"type": "reset"})
    everything = len(t.objects)
    await t.settle({peer: [event("reset"), tick(lambda f: not f.full and len(f.objects) == everything)] for peer in (A, B, T)}, first=T)
    t.say("""The reset put the beaker back on the bench and the burner out (`by: null`: nobody set it, the
reset did). Each station's challenge progress is kept.

### 12.8 Kick and end
""")
    await t.send(T, {"type": "kick", "participant": bekzod["participant_id"]})
    await t.settle({B: [closed(4003)], A: [event("station", station=None)]}, first=T)
    t.line("")
    await B.open(session["ws_url"])
    await t.send(B, {"type": "join", "token": bekzod["token"]}, note="(same token, new socket)")
    await t.settle({B: [closed(4003)]})
    t.line("")
    await t.send(T, {"type": "end"})
    await t.settle({A: [closed(4004)], T: [closed(4004)]}, first=T)
    t.line("")
    await t.rest("POST", "/api/join", {"code": code, "name": "Late"})
    await t.rest("GET", f"/api/sessions/{session['id']}", key=live.teacher_key)


#: station 1's positions (scenes/samples/chemistry_bench.py): where each step puts what
UPRIGHT = [0.0, 0.0, 0.0, 1.0]
TIPPED_OVER_FLASK = [-4.72, 1.15, -1.6, 0.0, 0.0, -0.7071068, 0.7071068]
#: the challenge must take longer than this (room clock): its time bonus is then 19 of 20 points
#: in every run (20 × (1 − elapsed / 600) rounds to 19 between 15 s and 45 s)
AT_LEAST = 20.0


async def challenge(t: Transcript) -> dict[str, Any]:
    """§12.9; returns the second practical, which §12.10 goes on with."""
    live = t.live
    opened = await t.http.post("/api/sessions", json={"scene": "chemistry-bench", "title": "Water bath, start to finish"},
                               headers={"Authorization": f"Bearer {live.teacher_key}"})
    session = opened.json()
    t.norm.name(session["id"], "s_practical2")
    t.norm.name(session["join_code"], "DEF567")
    t.norm.token(session["teacher_token"], "the teacher (second practical)")
    aziza = (await t.http.post("/api/join", json={"code": session["join_code"], "name": "Aziza"})).json()
    t.norm.token(aziza["token"], "Aziza (second practical)")
    t.say("""### 12.9 A lab challenge

A second practical on the same server, opened like the first with the title "Water bath, start to
finish" (`s_practical2`, join code `DEF567`). The teacher joins first (**T**, `t_teacher-practical2`,
slot 0, at the scene's first spawn point), then Aziza with a new `/api/join` (**A**, a new
participant `p_aziza2`, slot 1), who does the challenge `water-bath` at station 1 alone. Every event
goes to both of them (`A,T←`). Tick frames other than the FULL ones after `welcome` are left out:
each grab, move and release is followed by one, as in §12.4.

The steps open one after the other (`order` `"sequence"`: each `requires` the one before). What
the server waits for at each (`scenes/samples/chemistry_bench.py`; the positions are station 1's):

| step | done when |
| --- | --- |
| `fill-flask` | `flask@1.filled` is true. A rule sets it once `beaker-water@1` has been tipped past 60° within 0.3 m of the flask for 1 s. Mistake `empty-flask-on-flame`: the burner lit within 0.25 m of the empty flask. |
| `burner-under-tripod` | `burner@1` is put down at the tripod's snap point `burner` (the tripod's own origin, (−4.2, 0.9, −1.55)). |
| `beaker-on-tripod` | `beaker-water@1` is put down on the gauze, snap point `top`, 0.22 m above the tripod. Mistake `wrong-beaker`: `beaker-cuso4@1` put there. |
| `flask-in-bath` | `flask@1` is put down at the beaker's snap point `flask`. |
| `thermometer-in` | `thermometer@1` is put down upright at the beaker's snap point `thermometer`. |
| `light-burner` | `burner@1.lit` is true (`interact`). |
| `heat-bath` | `thermometer@1.reading` is at least 60. A rule makes it 80 once the burner has been lit under the bath, with the thermometer in it, for 10 s (and 20 otherwise). Mistake `moved-hot-bath`: holding the beaker while the burner is lit. |
| `read-temperature` | The checkpoint: answer the reading, within 2 °C. |
| `burner-off` | `burner@1.lit` is false. |
| `flask-on-mat` | `flask@1` is put down at the mat's snap point `centre`. |

"Put down" means placed and released: an `at_snap` condition does not hold while someone holds the
object, so such a step is done at the tick after the `released`. Moves are shown by what they
carry (object index, position, quaternion) rather than as hex.
""")
    t.peers, t.slots = [], {}
    A, T = t.peer("A"), t.peer("T")
    await T.open(session["ws_url"])
    await t.send(T, {"type": "join", "token": session["teacher_token"]})
    await t.settle({T: [event("joined")]}, keep=BRIEF)
    t.line("")
    await A.open(session["ws_url"])
    await t.send(A, {"type": "join", "token": aziza["token"]})
    await t.settle({A: [event("challenge_started")], T: [event("challenge_started")]}, keep=BRIEF)
    started = time.monotonic()
    index = {name: i for i, name in enumerate(t.objects)}

    async def put(obj: str, transform: list[float], note: str = "", done: str | None = None) -> None:
        await t.send(A, {"type": "grab", "object": obj})
        await t.settle({A: [event("grabbed", object=obj)]}, first=A)
        await move(obj, transform, note)
        await t.send(A, {"type": "release", "object": obj})
        await t.settle({peer: [event("step_done", step=done)] if done else [event("released", object=obj)] for peer in (A, T)}, first=A)

    async def move(obj: str, transform: list[float], note: str = "") -> None:
        await t.send(A, p.encode_object_move(index[obj], transform), render=False)
        t.line(f"A→ OBJECT_MOVE object {index[obj]}: {nums(transform[:3])}, quaternion ({nums(transform[3:])})" + (f"   {note}" if note else ""))
        await t.settle(first=A)

    t.line("\n--- fill-flask: pour")
    await t.send(A, {"type": "grab", "object": "beaker-water@1"})
    await t.settle({A: [event("grabbed")]}, first=A)
    await move("beaker-water@1", TIPPED_OVER_FLASK, "(0.25 m above the flask, a quarter turn about z: tipped over it)")
    t.line("   … about 1 s later, with no further message:")
    await t.settle({peer: [event("score")] for peer in (A, T)})
    await move("beaker-water@1", [-4.95, 0.9, -1.45, *UPRIGHT], "(back on the bench, upright)")
    await t.send(A, {"type": "release", "object": "beaker-water@1"})
    await t.settle({peer: [event("released")] for peer in (A, T)}, first=A)

    t.line("\n--- burner-under-tripod")
    await put("burner@1", [-4.2, 0.9, -1.55, *UPRIGHT], done="burner-under-tripod")
    t.line("\n--- beaker-on-tripod, the wrong beaker first")
    await t.send(A, {"type": "grab", "object": "beaker-cuso4@1"})
    await t.settle({A: [event("grabbed")]}, first=A)
    await move("beaker-cuso4@1", [-4.2, 1.12, -1.55, *UPRIGHT], "(on the gauze)")
    await t.send(A, {"type": "release", "object": "beaker-cuso4@1"})
    await t.settle({peer: [event("score")] for peer in (A, T)}, first=A)
    await put("beaker-cuso4@1", [-5.18, 0.9, -1.6, *UPRIGHT], "(back where it was)")
    await put("beaker-water@1", [-4.2, 1.12, -1.55, *UPRIGHT], done="beaker-on-tripod")
    t.line("\n--- flask-in-bath, thermometer-in")
    await put("flask@1", [-4.2, 1.1265, -1.55, *UPRIGHT], done="flask-in-bath")
    await put("thermometer@1", [-4.164, 1.1265, -1.55, *UPRIGHT], "(stood upright; it was lying on its side)", done="thermometer-in")
    t.line("\n--- light-burner")
    await t.send(A, {"type": "interact", "object": "burner@1", "property": "lit", "value": True, "id": "light"})
    await t.settle({peer: [event("step_done", step="light-burner")] for peer in (A, T)}, first=A,
                   notes={1: "(the property event answers the message at once; the step is judged at the next tick)"})
    t.line("\n--- heat-bath: nothing to send, 10 s later")
    await t.settle({peer: [event("step_done", step="heat-bath")] for peer in (A, T)})
    t.line("\n--- read-temperature: a wrong answer, the right one, one too many")
    for n, value in ((1, 60), (2, 80), (3, 80)):
        await t.send(A, {"type": "answer", "step": "read-temperature", "value": value, "id": f"q{n}"})
        await t.settle(first=A)
    t.line("\n--- burner-off")
    await t.send(A, {"type": "interact", "object": "burner@1", "property": "lit", "value": False})
    await t.settle({peer: [event("step_done", step="burner-off")] for peer in (A, T)}, first=A,
                   notes={2: "(next tick: the heating rule no longer holds, so the reading goes back to its `otherwise`)"})
    # the one wait by the clock: see AT_LEAST
    await asyncio.sleep(max(0.0, AT_LEAST - (time.monotonic() - started)))
    t.line("\n--- flask-on-mat: the last step")
    await put("flask@1", [-4.5, 0.908, -1.62, *UPRIGHT], done="flask-on-mat")
    t.say("""What to read from it:

* `t` is the room's clock, the same as `snapshot.now` (`<t…>` in Aziza's welcome, which is also
  when station 1's challenge started). `elapsed` in `step_done` counts from when the step opened,
  which is when the step before it was done; in `challenge_done`, from `challenge_started`.
* `by` is the last participant to touch (grab, move, release, `interact`) one of the objects the
  step's condition or the rule behind it names, or null if nobody touched them. Points go to
  every member of the station either way (`members`).
* A rule's `property` event (`by: null`) comes before the `step_done` it causes, in the same batch.
* The score: ten steps of 10 points, minus two mistakes of 2 (`mistake_penalty`), plus the time
  bonus, 20 × (1 − elapsed / 600) rounded (19 for this run, which took between 15 and 45 s).

Afterwards the teacher can read the same progress, per station and per student, with
`GET /api/sessions/s_practical2/results` (docs/operations.md, Results).
""")
    return session


#: Bekzod's right hand in §12.10, turned 30° about y: a rotation whose kept components are not all 0
TURNED = [0.0, 0.258819, 0.0, 0.9659258]


async def protocol_two(t: Transcript, session: dict[str, Any]) -> None:
    """§12.10: a protocol 2 client among protocol 1 ones, then the server stopped."""
    A, T = (next(q for q in t.peers if q.letter == letter) for letter in "AT")
    bekzod = (await t.http.post("/api/join", json={"code": session["join_code"], "name": "Bekzod"})).json()
    t.norm.token(bekzod["token"], "Bekzod (second practical)")
    t.say("""### 12.10 Protocol 2

Bekzod joins the second practical too (**B**, `p_bekzod2`, slot 2, placed at station 2) with a
client that speaks protocol 2 (§3.3): his `join` asks for `"protocol": 2` and the `welcome` says
`"protocol": 2`. Its `grid` (1 mm steps, 65.535 m on each axis around the lab) is what his
quantized positions mean (§7.5). Every tick frame he receives from then on is a TICK_V2 (0x11),
the FULL one after `welcome` first, while Aziza and the teacher, on protocol 1, keep receiving
TICK (0x10). Quantized numbers are shown with what they decode to: a position `u` is
`origin + u · step` on each axis; a rotation is the index of the component left out (the largest,
here always `w`) and the other three, 10 bits each.
""")
    B = t.peer("B")
    await B.open(session["ws_url"])
    await t.send(B, {"type": "join", "token": bekzod["token"], "protocol": 2})
    await t.settle({B: [tick(lambda f: f.full), event("challenge_started", station=2)],
                    **{peer: [event("challenge_started", station=2)] for peer in (A, T)}}, keep=BRIEF)
    assert B.grid is not None and B.slot is not None
    t.say("""Bekzod sends his pose as POSE_V2 with only his right hand tracked (26 bytes; the right hand turned
30° about y), a step from his spawn point towards station 1, which makes him near Aziza (§7.6): so
she gets it at the next tick, as the teacher does, and not at the next far one. Both get it in a
TICK as floats: the head within half a millimetre of what his client had, the left hand, which was
not sent, at the head's pose with its flag clear (§7.5). His own copy comes back as a TICK_V2: a 17-byte head record, then one hand block.
""")
    pose = pose_at(-2.05, 0.0, -0.45)
    pose[17:21] = TURNED
    sent = v2.encode_pose_v2(pose, stamp=654321, flags=p.FLAG_RIGHT_TRACKED, grid=B.grid)
    await t.send(B, sent)
    await t.settle({peer: [has_pose(B.slot, stamp=654321)] for peer in (A, T, B)}, first=B)
    t.say("""The teacher sends a version 1 POSE, both hands tracked. Bekzod receives it in 51 bytes, where
Aziza's and the teacher's TICK is 108:
""")
    await t.send(T, p.encode_pose(pose_at(0.0, 0.0, -5.4), stamp=222222))
    await t.settle({peer: [has_pose(0, stamp=222222)] for peer in (A, T, B)}, first=T)
    t.say("""A POSE_V2 that no encoder makes, its head rotation's last component the unused code 0, is refused
as it arrives (`bad_pose`, no `re`) and changes nothing:
""")
    broken = bytearray(sent)
    head_rotation = v2.CLIENT_POSE_HEAD.size + 6
    broken[head_rotation : head_rotation + 4] = (int.from_bytes(sent[head_rotation : head_rotation + 4], "little") & ~0x3FF).to_bytes(4, "little")
    await t.send(B, bytes(broken))
    await t.settle({B: [event("error", code="bad_pose")]}, first=B)
    t.say("""Bekzod acknowledges the newest tick frame he has processed (§4 `ack`; no reply). A client that
acks must go on doing so about every 250 ms: for 5 s after an ack the server judges the link by how
long the frames sent since then have waited, and once one has waited a second it lowers the
client's level (`quality`, §5.5). Here the `ack` is the last message Bekzod sends, and no frame
follows it.
""")
    newest = max(int(f.tick) for f in map(decoded, B.inbox) if f is not None)
    await t.send(B, {"type": "ack", "tick": newest})
    await t.settle(first=B)
    t.say("""When the server is stopped (SIGTERM) with these sockets still open, it closes every one of them,
joined or not:
""")
    t.live.proc.terminate()
    await t.settle({peer: [closed(1001)] for peer in (A, T, B)})


def section(doc: str) -> tuple[int, int]:
    start = doc.index(HEADING)
    return start, doc.index(NEXT, start)


async def test_the_worked_example_is_what_the_server_sends(tmp_path: Path) -> None:
    live = start_server(tmp_path / "data")
    try:
        text = await record(live)
    finally:
        live.stop()
    doc = DOC.read_text()
    start, end = section(doc)
    if os.environ.get("AMALIY_WRITE_TRANSCRIPT") == "1":
        DOC.write_text(doc[:start] + text + doc[end:])
        return
    current = doc[start:end]
    if current != text:
        diff = "".join(list(difflib.unified_diff(current.splitlines(True), text.splitlines(True), "docs/protocol.md §12", "this run"))[:120])
        raise AssertionError(f"docs/protocol.md §12 is not what the server sends now. If the change is meant, run\n    {REGENERATE}\nand review the diff.\n\n{diff}")
