"""Prometheus ``/metrics``: the node read at scrape time, nothing counted on the hot path.

A collector walks the node's rooms, journals, cluster and media worker when
Prometheus asks (every 15 s or so), so the room ticker pays nothing for being
watched. Names follow Prometheus conventions (``amaliy_`` prefix, ``_total``
for counters, base units: seconds, bytes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from realtime.tick_lateness import summary as tick_summary

if TYPE_CHECKING:
    from server.node import Node

#: seconds of tick lateness the ``tick lag`` gauges summarise
TICK_WINDOW = 10.0


class NodeCollector(Collector):
    def __init__(self, node: "Node") -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        runners = list(node.runners.values())
        yield _gauge("amaliy_rooms", "Live rooms on this node.", len(runners))
        yield _gauge("amaliy_participants", "Participants in this node's rooms (connected or in their resume window).",
                     sum(len(r.room.participants) for r in runners))
        yield _gauge("amaliy_connections", "Room sockets open on this node.", len(node.sockets))
        since = time.monotonic() - TICK_WINDOW
        lag = tick_summary([r.lateness.since(since) for r in runners]) if runners else tick_summary([])
        tick = GaugeMetricFamily("amaliy_tick_lag_seconds", f"How late room ticks started over the last {TICK_WINDOW:g} s.", labels=["quantile"])
        tick.add_metric(["0.5"], lag["late_p50_ms"] / 1000)
        tick.add_metric(["0.99"], lag["late_p99_ms"] / 1000)
        yield tick
        journals = [r.journal for r in runners if r.journal is not None]
        pending = GaugeMetricFamily("amaliy_room_log_entries", "Entries of each room's log its latest snapshot does not cover.", labels=["room"])
        for j in journals:
            pending.add_metric([j.room.id], j.since_snapshot)
        yield pending
        yield _gauge("amaliy_room_log_degraded_rooms", "Rooms running from memory: their log cannot be written.", sum(j.degraded for j in journals))
        yield _counter("amaliy_room_log_appends", "Appends to the room log that succeeded, rooms now live.", sum(j.appends for j in journals))
        cluster = node.cluster
        if cluster is not None:
            yield _gauge("amaliy_leases", "Room leases this node holds.", len(cluster.leases.held))
            yield _counter("amaliy_lease_renewals", "Room lease renewals.", cluster.leases.renewals)
            yield _counter("amaliy_leases_lost", "Room leases this node lost.", cluster.leases.lost)
            yield _counter("amaliy_failovers", "Rooms this node took over from a node that died or froze.", cluster.failovers)
            yield _gauge("amaliy_redis_up", "1 while Redis answers this node.", int(cluster.down_since is None))
        if node.store.replica is not None:
            records = node.store.replica.health()
            yield _gauge("amaliy_records_applied", "Entries of the shared records' log this node's replica has applied.", records["applied"])
            yield _gauge("amaliy_records_behind", "Entries of the shared records' log this node's replica had yet to apply when last seen.", records["behind"])
        if node.media is not None:
            stats = node.media.stats()
            peers = GaugeMetricFamily("amaliy_media_peers", "Voice calls on each media worker.", labels=["worker"])
            rooms = GaugeMetricFamily("amaliy_media_rooms", "Rooms placed on each media worker.", labels=["worker"])
            tick = GaugeMetricFamily("amaliy_media_tick_p99_seconds", "Each media worker's mix tick, p99 over 10 s.", labels=["worker"])
            for i, worker in enumerate(stats["workers"]):
                peers.add_metric([str(i)], worker["peers"])
                rooms.add_metric([str(i)], worker["rooms"])
                tick.add_metric([str(i)], 0 if worker["tick_p99_ms"] is None else worker["tick_p99_ms"] / 1000)
            yield from (peers, rooms, tick)
            yield _counter("amaliy_media_restarts", "Times a media worker was restarted.", stats["restarts"])


def _gauge(name: str, doc: str, value: float, labels: list[str] | None = None, values: list[str] | None = None) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, doc, labels=labels or [])
    metric.add_metric(values or [], value)
    return metric


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    metric = CounterMetricFamily(name, doc)
    metric.add_metric([], value)
    return metric


def registry(node: "Node") -> CollectorRegistry:
    """A registry of this node's figures (one per app, so tests can run several nodes in one process)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(NodeCollector(node))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
