"""Benchmark: one room's voice mix with S speakers and L listeners as real aiortc peers.

Starts `amaliy serve` (media on loopback), joins S + L participants spread over
client processes (each speaker sends its own pre-encoded tone, everyone records
nothing but counts the mixed frames it receives), waits until every call flows,
then measures the media worker for T seconds: its 20 ms mix tick durations
(reported by the worker over IPC, read from /healthz), late ticks (started more
than 20 ms late or overran), and its CPU from /proc/<pid>/stat.

    .venv/bin/python bench/audio.py --speakers 50 --listeners 0 --seconds 20 [--profile profile.txt]

The last line is one JSON object: {"participants", "speakers", "seconds",
"tick_p50_ms", "tick_p99_ms", "late_ticks", "media_cpu_pct", "participants_per_core",
"ticks_done_pct"}: participants_per_core means something only while the worker keeps up
(ticks_done_pct near 100, few late ticks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from aiortc.rtp import RtpPacket

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import LOOPBACK_VOICE, start_server  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def run_clients(base_url: str, code: str, first: int, count: int, speakers: int, total: int, seconds: float) -> None:
    """One client process: ``count`` participants, the first ``speakers`` of them sending a tone.

    The load generator must not need more CPU than the server it loads (the machine
    has two cores): speakers send a tone encoded once, and received packets are only
    counted after SRTP, not jitter-buffered and decoded. The server sees complete
    aiortc peers (ICE, DTLS, SRTP, RTCP) either way. This replaces an aiortc internal
    in this bench process only; the SDK and the tests record and decode for real.
    """
    from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics

    from amaliy_client import AmaliyClient
    from amaliy_client.voice import OpusToneTrack, VoiceCall, use_ice_addresses

    received: Counter[int] = Counter()

    async def count_only(receiver: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
        received[id(receiver)] += 1
        # keep the receiver's RTCP reports going: a listen-only call that sends nothing is dropped
        streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        if packet.ssrc not in streams:
            streams[packet.ssrc] = StreamStatistics(48_000)
        streams[packet.ssrc].add(packet)

    RTCRtpReceiver._handle_rtp_packet = count_only  # type: ignore[method-assign,assignment]
    use_ice_addresses(LOOPBACK_VOICE)
    clients, calls = [], []
    for i in range(first, first + count):
        client = await AmaliyClient.join(base_url, code, f"P{i}")
        angle = 2 * math.pi * i / total
        pose = client.poses[client.id].copy()
        pose[0:3] = (3 * math.cos(angle), 1.6, 3 * math.sin(angle))
        pose[3:7] = (0, 0, 0, 1)
        await client.send_pose(pose)
        clients.append(client)
    for n, client in enumerate(clients):
        track = OpusToneTrack(200 + 10 * (first + n)) if n < speakers else None
        calls.append(await VoiceCall.start(client, track, record=False, timeout=30))
    receivers = [id(call.pc.getReceivers()[0]) for call in calls]
    deadline = time.monotonic() + 60
    while not all(call.pc.connectionState == "connected" and received[r] for call, r in zip(calls, receivers)):
        if time.monotonic() > deadline:
            raise SystemExit("calls did not connect")
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    start = [received[r] for r in receivers]
    await asyncio.sleep(seconds)
    print(json.dumps({"frames": [received[r] - s for r, s in zip(receivers, start)]}), flush=True)
    for call in calls:
        await call.close(tell_server=False)
    for client in clients:
        await client.close()


def top_entries(collapsed: Path, n: int = 12) -> list[tuple[str, float]]:
    """Self-time share of the hottest functions in a py-spy raw (collapsed stacks) profile,
    leaving out idle threads (aiortc's idle decoder threads waiting on their queue) and samples
    inside uvloop's C loop (py-spy sees them as ``Runner.run``: waiting in epoll, or loop internals)."""
    leaf: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        name = stack.split(";")[-1]
        if not stack or name.startswith(("Condition.wait", "Runner.run")):
            continue
        leaf[name] += int(count)
        total += int(count)
    return [(name, round(100 * c / total, 1)) for name, c in leaf.most_common(n)] if total else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=50)
    parser.add_argument("--listeners", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--pin", action="store_true", help="media worker on the last CPU alone, node and clients on the others")
    parser.add_argument("--profile", help="write a py-spy profile of the media worker (collapsed stacks) here")
    parser.add_argument("--client", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        base_url, code, first, count, speakers, total, seconds = args.client
        asyncio.run(run_clients(base_url, code, int(first), int(count), int(speakers), int(total), float(seconds)))
        return

    total = args.speakers + args.listeners
    env = {"AMALIY_ROOM_CAP": str(total + 10), "AMALIY_VOICE_MAX_CALLS": str(total + 10), "AMALIY_MEDIA_WORKERS": "1"}

    server = start_server(Path(tempfile.mkdtemp(prefix="amaliy-bench-audio-")), env=env)
    procs: list[subprocess.Popen[str]] = []
    try:
        session = server.open_session("Audio benchmark")
        per = math.ceil(total / args.client_procs)
        hold = args.seconds + 10  # the clients outlive the measurement
        first = 0
        for k in range(args.client_procs):
            count = min(per, total - first)
            if count <= 0:
                break
            speakers = max(0, min(count, args.speakers - first))
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--client", server.base_url, session["join_code"], str(first), str(count), str(speakers), str(total), str(hold)],
                    cwd=REPO, stdout=subprocess.PIPE, text=True,
                )
            )
            first += count
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise SystemExit(f"a client process failed to connect: {line!r}")
        print(f"{total} calls flowing ({args.speakers} speaking); warming up", file=sys.stderr, flush=True)
        time.sleep(3)
        media = httpx.get(server.base_url + "/healthz").json()["media"]
        pid = media["workers"][0]["pid"]  # one worker: the server runs with --media-workers 1
        if args.pin:
            cpus = sorted(os.sched_getaffinity(0))
            for other in [server.proc.pid, *(proc.pid for proc in procs)]:
                for thread in os.listdir(f"/proc/{other}/task"):  # affinity is per thread
                    os.sched_setaffinity(int(thread), cpus[:-1])
            for thread in os.listdir(f"/proc/{pid}/task"):  # aiortc's decoder threads too
                os.sched_setaffinity(int(thread), cpus[-1:])
            time.sleep(2)
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(args.seconds)),
                 "--format", "raw", "--output", args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        media = httpx.get(server.base_url + "/healthz").json()["media"]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        time.sleep(1.1)  # the worker reports once a second
        stats = httpx.get(server.base_url + "/healthz", params={"media_window": args.seconds}).json()["media"]
        frames_in = stats["frames_in"] - media["frames_in"]
        ticks = stats["ticks_total"] - media["ticks_total"]
        late = stats["late_total"] - media["late_total"]
        if profiler is not None:
            profiler.wait(60)
        cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
        summary = {
            "participants": total,
            "speakers": args.speakers,
            "seconds": args.seconds,
            "tick_p50_ms": stats["tick_p50_ms"],
            "tick_p99_ms": stats["tick_p99_ms"],
            "late_ticks": late,
            "media_cpu_pct": round(cpu_pct, 1),
            "participants_per_core": round(total / (cpu_pct / 100), 1) if cpu_pct > 0 else None,
            # below ~99% the worker could not keep up and participants_per_core overstates it
            "ticks_done_pct": round(100 * ticks / ((args.seconds + 1.1) * 50), 1),
        }
        print(
            f"mix ticks: {ticks} in {args.seconds + 1.1:.1f} s ({(args.seconds + 1.1) * 50:.0f} due); peers: {stats['peers']}; "
            f"Opus complexity {stats['opus_complexity']} ({stats['opus']}); speaker frames in: "
            f"{frames_in / max(1.0, args.speakers * 50 * (args.seconds + 1.1)):.0%} of those sent (input rate check)",
            file=sys.stderr,
        )
        if args.profile and Path(args.profile).exists():
            for name, share in top_entries(Path(args.profile)):
                print(f"  {share:5.1f}%  {name}", file=sys.stderr)
        for proc in procs:
            out, _ = proc.communicate(timeout=hold + 30)
            frames = json.loads(out.strip().splitlines()[-1])["frames"] if out.strip() else []
            if frames:
                print(f"client process: mixed frames received per call: min {min(frames)}, max {max(frames)} "
                      f"of {hold * 50:.0f} sent", file=sys.stderr)
        print(json.dumps(summary))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        server.stop()


if __name__ == "__main__":
    main()
