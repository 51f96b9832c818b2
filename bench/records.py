#!/usr/bin/env python3
"""Shared records benchmark: what a deployment's shared records (server.replica) cost a node.

    .venv/bin/python bench/records.py [--redis redis://127.0.0.1:6379/0] [--batches 400] [--class-size 30]

The write a live room causes is a batch of its records (server.results: one batch per
event-loop turn, written off the loop). Here each batch is ``--class-size`` step records
of a course practical, one per roster student, so every record is also credited as XP
in the same write (server.learners). It is timed three ways, in one sitting:

- ``embedded``: one node on its own, straight into its SQLite file;
- ``shared``: through the shared log in Redis (one Lua XADD, then XRANGE and the apply on
  this node's replica; this node's applier thread may apply it first);
- another node joining afterwards: the time its replica takes to apply the whole log
  (``follower_entries_per_s``: what any other node spends keeping up, per entry);
- the read a REST request pays before it is served from the replica when nothing is new
  (``catch_up``: one GET), against a plain read of the same row.

Last line, one JSON object: {"batches", "class_size", "embedded_batch_ms_p50",
"embedded_batch_ms_p95", "shared_batch_ms_p50", "shared_batch_ms_p95", "shared_over_embedded_p50",
"follower_entries_per_s", "fresh_read_us_p50", "plain_read_us_p50", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.replica import SharedSettings  # noqa: E402
from server.store import Store  # noqa: E402


def course(store: Store, class_size: int) -> tuple[str, list[str]]:
    """A teacher's course of ``class_size`` students and one practical of it; (session id, student ids)."""
    teacher, _ = store.add_user("Bench Teacher")
    c = store.add_course(teacher.id, "Chemistry 9A")
    students = [s.id for s, _ in store.add_students(c.id, [(f"Student {i:02d}", None, None) for i in range(class_size)])]
    return store.open_session(teacher.id, "chemistry-bench", 1, "Week 1", course_id=c.id).id, students


def batches(session_id: str, students: list[str], count: int) -> list[list[tuple[str, str, str, float, dict[str, Any]]]]:
    """``count`` batches, each one step record per student (record ids unique, so every one is new)."""
    return [
        [(session_id, f"step:{i}:b{n}", "step_done", time.time(), {"station": i, "step": f"b{n}", "points": 5, "members": [sid]})
         for i, sid in enumerate(students, start=1)]
        for n in range(count)
    ]


def timed_writes(store: Store, work: list[list[Any]]) -> list[float]:
    out = []
    for batch in work:
        began = time.perf_counter()
        assert store.add_records(batch) == len(batch)
        out.append((time.perf_counter() - began) * 1000)
    return out


def p(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--class-size", type=int, default=30)
    ap.add_argument("--reads", type=int, default=5000)
    args = ap.parse_args()
    deployment = "bench-" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="amaliy-bench-records-") as tmp:
        root = Path(tmp)
        alone = Store(root / "alone")
        session, students = course(alone, args.class_size)
        embedded = timed_writes(alone, batches(session, students, args.batches))
        alone.close()

        secret = secrets.token_hex(32)
        for name in ("a", "b"):
            (root / name).mkdir()
            (root / name / "secret.key").write_text(secret)
        settings = SharedSettings(args.redis, deployment, snapshot_every=10 * args.batches)
        a = Store(root / "a", settings)
        b: Store | None = None
        try:
            session, students = course(a, args.class_size)
            shared = timed_writes(a, batches(session, students, args.batches))
            began = time.perf_counter()
            b = Store(root / "b", settings)  # a node joining now: the seed snapshot, then the whole log
            caught_up_s = time.perf_counter() - began
            entries = a.replica_state()[1]
            assert len(b.records(session)) == args.batches * args.class_size
            fresh, plain = [], []
            for _ in range(args.reads):
                began = time.perf_counter()
                b.session(session)
                fresh.append((time.perf_counter() - began) * 1e6)
                began = time.perf_counter()
                b._db.execute("SELECT * FROM sessions WHERE id = ?", (session,)).fetchone()
                plain.append((time.perf_counter() - began) * 1e6)
        finally:
            a.close()
            if b is not None:
                b.close()
            client = redis.Redis.from_url(args.redis)
            for key in client.scan_iter(f"{deployment}:*"):
                client.delete(key)
            client.close()
    summary = {
        "batches": args.batches,
        "class_size": args.class_size,
        "embedded_batch_ms_p50": p(embedded, 50),
        "embedded_batch_ms_p95": p(embedded, 95),
        "shared_batch_ms_p50": p(shared, 50),
        "shared_batch_ms_p95": p(shared, 95),
        "shared_over_embedded_p50": round(p(shared, 50) / p(embedded, 50), 2),
        "follower_entries_per_s": round(entries / caught_up_s),
        "log_entries": entries,
        "fresh_read_us_p50": round(statistics.median(fresh), 1),
        "plain_read_us_p50": round(statistics.median(plain), 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
