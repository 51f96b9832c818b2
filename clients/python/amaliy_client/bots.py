"""``amaliy bots``: simulated students for demos and load.

Each bot joins with the session's join code, walks a slow circle around where
it spawned while looking around and moving its hands, and now and then grabs a
free piece of equipment at its own station, carries it a little and puts it back down.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random

import numpy as np

from amaliy_client.client import AmaliyClient, JoinRefused


def _quat_y(angle: float) -> list[float]:
    return [0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)]


async def run_bot(base_url: str, code: str, name: str, rate: float, seconds: float, grab: bool) -> None:
    client = await AmaliyClient.join(base_url, code, name)
    if grab:
        try:
            await client.wait_station(timeout=1.0)  # a lab with stations puts each student at one
        except TimeoutError:
            pass  # a lab without stations: everything is shared
    start_pose = client.poses.get(client.id)
    rng = random.Random(name)
    cx, _, cz = (float(v) for v in (start_pose[:3] if start_pose is not None else (0.0, 1.6, 0.0)))
    radius, speed, phase = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.5), rng.uniform(0, 2 * math.pi)
    loop = asyncio.get_running_loop()
    began = loop.time()
    carrying: str | None = None
    n = 0
    try:
        while seconds <= 0 or loop.time() - began < seconds:
            t = loop.time() - began
            angle = phase + speed * t
            x, z = cx + radius * math.cos(angle), cz + radius * math.sin(angle)
            yaw = angle + math.sin(t * 0.7)
            head = [x, 1.6 + 0.03 * math.sin(t * 2), z, *_quat_y(yaw)]
            left = [x - 0.25 * math.cos(yaw), 1.1 + 0.1 * math.sin(t * 3), z + 0.25 * math.sin(yaw), 0, 0, 0, 1]
            right = [x + 0.25 * math.cos(yaw), 1.1 + 0.1 * math.cos(t * 3), z - 0.25 * math.sin(yaw), 0, 0, 0, 1]
            await client.send_pose(np.array(head + left + right, np.float32))
            if grab and n % int(rate * 4 + 1) == 0:
                if carrying is None:
                    # equipment of the bot's own station (or shared): another bench's is refused
                    free = [
                        oid
                        for oid, obj in client.objects.items()
                        if obj["holder"] is None and obj["interactable"] and obj.get("station") in (None, client.station)
                    ]
                    if free:
                        carrying = rng.choice(free)
                        await client.grab(carrying)
                else:
                    await client.release(carrying)
                    carrying = None
            if carrying is not None and client.objects[carrying]["holder"] == client.id:
                transform = list(client.objects[carrying]["transform"])
                transform[1] = 0.9 + 0.05 * (1 + math.sin(t * 2))
                await client.move(carrying, transform)
            n += 1
            await asyncio.sleep(1.0 / rate)
    finally:
        await client.close()


async def _main(args: argparse.Namespace) -> None:
    bots = [
        run_bot(args.url, args.code, f"{args.name} {i + 1}", args.rate, args.seconds, not args.no_grab)
        for i in range(args.count)
    ]
    results = await asyncio.gather(*bots, return_exceptions=True)
    for result in results:
        if isinstance(result, JoinRefused):
            print(f"bot refused: {result}")
        elif isinstance(result, BaseException):
            print(f"bot failed: {result!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="amaliy bots", description="Put simulated students into a practical.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--code", required=True, help="the practical's join code")
    parser.add_argument("--count", type=int, default=5, help="number of bots")
    parser.add_argument("--rate", type=float, default=30.0, help="poses per second per bot")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: run until Ctrl-C)")
    parser.add_argument("--name", default="Bot", help="display name prefix")
    parser.add_argument("--no-grab", action="store_true", help="only walk around; never grab equipment")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
