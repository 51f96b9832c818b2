"""The room socket's last line of defence: a bug met while handling one client message is
logged as one line and answered with ``server_error``; it never reaches asyncio (which
would drop the connection with no close frame and log a traceback per message).

The socket runs here on an in-memory transport, spoken to by websockets' own client
protocol, so the test can plant the bug where no real input reaches any more.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from realtime import protocol as p
from realtime.limits import RoomLimits
from server.room_socket import RoomSocket


class MemoryTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def abort(self) -> None:
        self.aborted = True

    close = abort

    def can_write_eof(self) -> bool:
        return False


class Peer:
    """A client speaking WebSocket to one RoomSocket over a MemoryTransport."""

    def __init__(self) -> None:
        node = SimpleNamespace(config=SimpleNamespace(limits=RoomLimits(), max_connections=10), sockets=set())
        self.transport = MemoryTransport()
        self.socket = RoomSocket(node)  # type: ignore[arg-type]
        self.socket.connection_made(self.transport)  # type: ignore[arg-type]
        self.ws = ClientProtocol(parse_uri("ws://test/room"))
        self.ws.send_request(self.ws.connect())
        self._deliver()
        self.received()  # the handshake response

    def _deliver(self) -> None:
        self.socket.data_received(b"".join(self.ws.data_to_send()))

    def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.ws.send_text(data.encode())
        else:
            self.ws.send_binary(data)
        self._deliver()

    def received(self) -> list[Any]:
        """Messages the socket wrote since the last call (JSON decoded, binary as bytes)."""
        self.ws.receive_data(b"".join(self.transport.written))
        self.transport.written.clear()
        out: list[Any] = []
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                out.append(json.loads(event.data) if event.opcode == Opcode.TEXT else event.data)
        return out


class BrokenRunner:
    """A room runner with a bug: every message it is handed raises."""

    def handle(self, participant_id: str, message: object) -> None:
        raise KeyError(f"slot for {participant_id}")


async def test_a_failing_text_message_is_answered_and_the_socket_goes_on(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    decode = p.decode_control

    def buggy(text: str | bytes) -> p._Msg:
        raise TypeError("unhashable type: 'list'\n  on a second line")

    monkeypatch.setattr(p, "decode_control", buggy)
    with caplog.at_level(logging.ERROR, logger="amaliy.socket"):
        peer.send('{"type": "ping"}')
    [answer] = peer.received()
    assert answer["type"] == "error" and answer["code"] == "server_error" and answer["message"]
    [line] = caplog.records
    assert line.exc_info is None and "\n" not in line.getMessage()
    assert line.getMessage() == "message from a socket not joined failed: TypeError: unhashable type: 'list' on a second line"
    monkeypatch.setattr(p, "decode_control", decode)
    peer.send('{"type": "ping"}')
    assert [m["code"] for m in peer.received()] == ["not_joined"]  # still open, still answering
    assert not peer.transport.aborted and not peer.socket.closed


async def test_a_failing_pose_on_the_fast_path_is_answered_too(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    peer.socket.runner, peer.socket.participant_id = BrokenRunner(), "p_1"  # type: ignore[assignment]

    def parser_bypassed(data: bytes) -> None:
        raise AssertionError("a lone pose frame should take the fast path, not the parser")

    monkeypatch.setattr(peer.socket.ws, "receive_data", parser_bypassed)
    with caplog.at_level(logging.ERROR, logger="amaliy.socket"):
        for _ in range(2):
            peer.send(p.encode_pose([0.0] * p.POSE_FLOATS))
    assert [m["code"] for m in peer.received()] == ["server_error", "server_error"]
    assert [r.getMessage() for r in caplog.records] == ["message from p_1 failed: KeyError: 'slot for p_1'"] * 2
    assert not peer.transport.aborted and not peer.socket.closed


class RecordingRunner:
    """A room runner that notes what the socket hands it, in order."""

    def __init__(self) -> None:
        self.got: list[object] = []

    def handle(self, participant_id: str, message: object) -> None:
        self.got.append(message)

    def ack(self, participant_id: str, tick: int) -> None:
        self.got.append(("ack", tick))


def masked(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True)


def joined_peer() -> tuple[Peer, RecordingRunner]:
    peer = Peer()
    runner = RecordingRunner()
    peer.socket.runner, peer.socket.participant_id = runner, "p_1"  # type: ignore[assignment]
    return peer, runner


POSE = p.encode_pose([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0] * 3)
ACK = b'{"type":"ack","tick":7}'


async def test_whole_small_frames_in_one_read_bypass_the_parser_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    peer, runner = joined_peer()

    def parser_bypassed(data: bytes) -> None:
        raise AssertionError(f"whole small frames should not reach the parser: {data!r}")

    monkeypatch.setattr(peer.socket.ws, "receive_data", parser_bypassed)
    peer.socket.data_received(masked(Opcode.BINARY, POSE) + masked(Opcode.TEXT, ACK) + masked(Opcode.TEXT, b'{"type":"ping","t":3}'))
    assert runner.got == [p.PoseFrame(POSE), ("ack", 7)]
    assert [(m["type"], m["t"]) for m in peer.received()] == [("pong", 3)]


async def test_a_frame_split_across_reads_goes_through_the_parser_and_the_lean_path_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    peer, runner = joined_peer()
    data = masked(Opcode.BINARY, POSE) + masked(Opcode.BINARY, POSE) + masked(Opcode.TEXT, ACK)
    cut = len(data) - 10  # inside the ack
    peer.socket.data_received(data[:cut])
    assert runner.got == [p.PoseFrame(POSE)] * 2
    peer.socket.data_received(data[cut:])
    assert runner.got[-1] == ("ack", 7)
    assert peer.socket._lean  # the parser has its frame boundary back
    parsed: list[bytes] = []
    receive = peer.socket.ws.receive_data
    monkeypatch.setattr(peer.socket.ws, "receive_data", lambda chunk: (parsed.append(chunk), receive(chunk)))
    peer.socket.data_received(masked(Opcode.BINARY, POSE))
    assert parsed == [] and runner.got[-1] == p.PoseFrame(POSE)


async def test_control_frames_and_long_frames_after_small_ones_reach_the_parser() -> None:
    peer, runner = joined_peer()
    ping = Frame(Opcode.PING, b"hi").serialize(mask=True)
    long_text = masked(Opcode.TEXT, b'{"type": "ping",' + b" " * 200 + b'"t": 5}')
    peer.socket.data_received(masked(Opcode.BINARY, POSE) + ping + masked(Opcode.BINARY, POSE) + long_text)
    assert runner.got == [p.PoseFrame(POSE)] * 2
    got = peer.ws.receive_data(b"".join(peer.transport.written)) or list(peer.ws.events_received())
    assert [(f.opcode, f.data) for f in got if f.opcode == Opcode.PONG] == [(Opcode.PONG, b"hi")]
    assert [json.loads(f.data)["t"] for f in got if f.opcode == Opcode.TEXT] == [5]


async def test_bad_small_frames_are_refused_as_the_parser_would() -> None:
    peer, runner = joined_peer()
    peer.socket.data_received(masked(Opcode.TEXT, b"\xff\xfe"))
    assert peer.socket.closed and runner.got == []
    assert peer.ws.receive_data(b"".join(peer.transport.written)) is None
    [close] = [f for f in peer.ws.events_received() if f.opcode == Opcode.CLOSE]
    assert close.data[:2] == p.CloseCode.INVALID_DATA.to_bytes(2, "big")
    unmasked = Peer()
    unmasked.socket.runner, unmasked.socket.participant_id = RecordingRunner(), "p_2"  # type: ignore[assignment]
    unmasked.socket.data_received(Frame(Opcode.BINARY, POSE).serialize(mask=False))
    assert unmasked.socket.runner.got == []  # type: ignore[attr-defined]
    unmasked.ws.receive_data(b"".join(unmasked.transport.written))
    [close] = [f for f in unmasked.ws.events_received() if f.opcode == Opcode.CLOSE]
    assert close.data[:2] == (1002).to_bytes(2, "big")  # protocol error: a client must mask


def _frames() -> st.SearchStrategy[bytes]:
    """One frame on the wire, as a client (or a hostile one) might send it."""
    small = st.binary(max_size=125)
    whole = st.builds(lambda data: masked(Opcode.BINARY, data), small | st.just(POSE))
    text = st.builds(lambda data: masked(Opcode.TEXT, data), small | st.sampled_from([ACK, b'{"type":"ping","t":1}', b"\xff", b"{"]))
    long = st.builds(lambda n: masked(Opcode.TEXT, b'{"type":"ping",' + b" " * n + b'"t":2}'), st.integers(110, 300))
    control = st.sampled_from([Frame(Opcode.PING, b"p").serialize(mask=True), Frame(Opcode.PONG, b"").serialize(mask=True)])
    odd = st.sampled_from(
        [
            Frame(Opcode.TEXT, b'{"type"', fin=False).serialize(mask=True),
            Frame(Opcode.CONT, b':"ping"}').serialize(mask=True),
            Frame(Opcode.BINARY, POSE).serialize(mask=False),
            bytes([0x82 | 0x40]) + masked(Opcode.BINARY, POSE)[1:],  # an extension bit no extension was agreed for
            Frame(Opcode.CLOSE, (1000).to_bytes(2, "big")).serialize(mask=True),
            bytes([0x83, 0x80, 0, 0, 0, 0]),  # reserved opcode
        ]
    )
    return st.one_of(whole, whole, text, long, control, odd)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_frames(), min_size=1, max_size=12), st.lists(st.integers(0, 2000), max_size=6))
async def test_the_lean_path_does_what_the_parser_would_for_any_stream_cut_anywhere(frames: list[bytes], cuts: list[int]) -> None:
    """The same bytes, cut into the same reads, to a socket with the lean path and to one whose
    every byte goes through the websockets parser: the room gets the same inputs in the same
    order, the client the same frames, and both end in the same state. Where a message closes
    the socket, what comes after it in the same read may be met differently: the lean path stops
    there, while the parser has parsed the whole read already, answering a later ping with a
    pong, or closing for a later frame's protocol error first. So then the frames before the
    close must match, and both sockets close with a documented code."""
    stream = b"".join(frames)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    reads = [stream[a:b] for a, b in zip(points, points[1:])]
    (lean, lean_runner), (parsed, parsed_runner) = joined_peer(), joined_peer()
    parsed.socket._between_frames = lambda: False  # type: ignore[method-assign]
    parsed.socket._lean = False
    for read in reads:
        lean.socket.data_received(read)
        parsed.socket.data_received(read)
    assert lean_runner.got == parsed_runner.got
    assert (lean.socket.closed, lean.transport.aborted) == (parsed.socket.closed, parsed.transport.aborted)
    lean_out, parsed_out = sent_frames(lean), sent_frames(parsed)
    if not lean.socket.closed:
        assert lean_out == parsed_out
        return
    assert before_close(lean_out) == before_close(parsed_out)
    for out in (lean_out, parsed_out):
        [code] = [int.from_bytes(data[:2], "big") for op, data in out if op == Opcode.CLOSE]
        assert code in (1000, 1002, p.CloseCode.POLICY, p.CloseCode.INVALID_DATA, p.CloseCode.TOO_BIG)


def sent_frames(peer: Peer) -> list[tuple[int, bytes]]:
    """Every frame the socket wrote to its client, as (opcode, payload)."""
    peer.ws.receive_data(b"".join(peer.transport.written))
    return [(int(f.opcode), f.data) for f in peer.ws.events_received() if isinstance(f, Frame)]


def before_close(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The frames before the close frame, less the pongs right before it."""
    end = next(i for i, (op, _) in enumerate(frames) if op == Opcode.CLOSE)
    while end > 0 and frames[end - 1][0] == Opcode.PONG:
        end -= 1
    return frames[:end]
