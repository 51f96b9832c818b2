"""Server configuration: defaults, overridden by AMALIY_* environment variables, then by CLI flags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from realtime.audio.mixer import Attenuation
from realtime.audio.ipc import WorkerSettings
from realtime.limits import RoomLimits
from scenes.ingest import DEFAULT_BUDGETS, Budget, IngestLimits
from scenes.manifest import ManifestLimits
from scenes.safe_zip import ZipLimits
from server.ingest_pool import PoolSettings
from server.replica import SharedSettings
from server.xapi_outbox import SenderSettings

ENV_PREFIX = "AMALIY_"


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8000
    #: the room socket's port; 0 means ``port + 1``
    ws_port: int = 0
    data_dir: Path = Path("./amaliy-data")
    #: base URL printed in links and used for the socket address, e.g. http://10.0.0.5:8000
    public_url: str = ""
    #: open a demo practical on start when none is open
    demo: bool = True
    #: seconds a participant token stays valid
    token_ttl: float = 12 * 3600.0
    #: joins per minute accepted from one address (join codes are guessable otherwise)
    join_rate_per_min: float = 30.0
    #: open practicals per teacher
    max_sessions_per_teacher: int = 20
    #: room sockets open at once on this node (joined or not); more are refused at once
    max_connections: int = 5000
    #: largest scene package upload, in bytes
    upload_max_bytes: int = 256 * 1024 * 1024
    #: files in one scene package
    package_max_entries: int = 2000
    #: bytes a scene package may unpack to, in all
    package_max_unpacked_bytes: int = ZipLimits.max_total_bytes
    #: bytes and nesting depth of a package's scene.json
    manifest_max_bytes: int = ManifestLimits.max_bytes
    manifest_max_depth: int = ManifestLimits.max_depth
    #: packages checked at once (one process each), packages waiting (more get 503),
    #: memory (MB) and seconds one package may take to check
    ingest_workers: int = PoolSettings.workers
    ingest_queue: int = PoolSettings.queue
    ingest_memory_mb: int = PoolSettings.memory_mb
    ingest_timeout: float = PoolSettings.timeout
    #: per-target budget overrides as JSON, e.g. {"headset": {"triangles": 80000}}
    budgets: str = ""
    #: ingest limit overrides as JSON, e.g. {"max_vertices": 2000000} (fields of scenes.ingest.IngestLimits)
    ingest_limits_json: str = ""
    #: run the media worker (WebRTC voice); off, offers get ``media_unavailable``.
    #: The voice defaults are the worker's own (WorkerSettings, Attenuation).
    voice: bool = True
    #: voice distance model (Web Audio "inverse"): metres of full level, rolloff, and the
    #: distance beyond which a voice gets no quieter
    voice_ref_distance: float = Attenuation.ref_distance
    voice_rolloff: float = Attenuation.rolloff
    voice_max_distance: float = Attenuation.max_distance
    #: seconds an answered voice call may take to connect; seconds without audio from a
    #: speaker, and without any packet (RTCP reports) from a listen-only call, before it is dropped
    voice_ice_timeout: float = WorkerSettings.ice_timeout
    voice_media_timeout: float = WorkerSettings.media_timeout
    voice_listener_timeout: float = WorkerSettings.listener_timeout
    #: media worker processes (one core each); 0: one per core this process may use, less one, at least one
    media_workers: int = 0
    #: voice calls one media worker accepts at once (more get ``media_unavailable``)
    voice_max_calls: int = WorkerSettings.max_calls
    #: each listener's mix: Opus bit rate (bit/s) and libopus complexity (0..10); encoding
    #: is the media worker's largest own cost, complexity 0 takes about a third less CPU
    voice_opus_bitrate: int = WorkerSettings.opus_bitrate
    voice_opus_complexity: int = WorkerSettings.opus_complexity
    #: above this many voice calls on the node, mixes are encoded at complexity 0
    voice_crowded_calls: int = WorkerSettings.crowded_calls
    #: comma-separated addresses the media worker offers for voice (ICE host candidates);
    #: empty: every interface. Tests and benchmarks use 127.0.0.1.
    voice_addresses: str = ""
    #: the LRS's xAPI endpoint (statements go to ``<url>/statements``), e.g. https://lrs.school.uz/xAPI;
    #: empty (the default): learning events are not exported and no outbox is kept (server.xapi_outbox)
    xapi_url: str = ""
    #: HTTP basic auth for the LRS (empty username: none)
    xapi_username: str = ""
    xapi_password: str = ""
    #: statements per POST, seconds one request may take, and the longest wait (seconds) between
    #: tries while the LRS fails (waits double from 1 s up to it)
    xapi_batch: int = SenderSettings.batch
    xapi_timeout: float = SenderSettings.timeout
    xapi_max_backoff: float = SenderSettings.max_backoff
    #: Redis shared by the nodes of one deployment, e.g. redis://10.0.0.2:6379/0 (also read from
    #: REDIS_URL); empty (the default): this node runs on its own, everything under the data dir
    redis_url: str = ""
    #: this node's name in the deployment (unique per node); empty: host name and port
    node_id: str = ""
    #: the deployment's name: the prefix of its shared keys, so several deployments may share one Redis
    deployment: str = "amaliy"
    #: milliseconds a room's lease lasts unrenewed: how long a dead node's room waits for a new owner
    lease_ttl_ms: int = 1000
    #: seconds of room time between a room's snapshots (a new owner replays at most this much log)
    snapshot_every: float = 5.0
    #: entries of the shared records' log between its snapshots (server.replica; with REDIS_URL only)
    records_snapshot_every: int = SharedSettings.snapshot_every
    limits: RoomLimits = field(default_factory=RoomLimits)

    @property
    def room_port(self) -> int:
        return self.ws_port or self.port + 1

    def ingest_limits(self) -> IngestLimits:
        """Scene package limits: unpacking bounded by the upload size, budgets with overrides."""
        budgets = dict(DEFAULT_BUDGETS)
        try:
            overrides = json.loads(self.budgets) if self.budgets else {}
            for target, values in overrides.items():
                if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values.values()):
                    raise ValueError("budget values must be positive whole numbers")
                budgets[target] = replace(budgets[target], **values)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(
                f"AMALIY_BUDGETS must be JSON like {{\"headset\": {{\"triangles\": 80000}}}} "
                f"with targets {sorted(DEFAULT_BUDGETS)} and fields {[f.name for f in fields(Budget)]}: {exc}"
            ) from None
        zip_limits = ZipLimits(
            max_entries=self.package_max_entries,
            max_total_bytes=self.package_max_unpacked_bytes,
            max_file_bytes=min(self.package_max_unpacked_bytes, 2 * self.upload_max_bytes),
        )
        manifest = ManifestLimits(max_bytes=self.manifest_max_bytes, max_depth=self.manifest_max_depth)
        return replace(IngestLimits(zip=zip_limits, manifest=manifest, budgets=budgets), **self._ingest_overrides())

    def _ingest_overrides(self) -> dict[str, int | float]:
        numeric = {f.name for f in fields(IngestLimits) if f.name not in ("zip", "manifest", "budgets")}
        try:
            values = json.loads(self.ingest_limits_json) if self.ingest_limits_json else {}
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
            unknown = set(values) - numeric
            if unknown:
                raise ValueError(f"unknown limits {sorted(unknown)}")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values.values()):
                raise ValueError("limits must be positive numbers")
        except ValueError as exc:
            raise SystemExit(f"AMALIY_INGEST_LIMITS_JSON must be JSON like {{\"max_vertices\": 2000000}} with fields {sorted(numeric)}: {exc}") from None
        return values

    def ingest_pool(self) -> PoolSettings:
        for name in ("ingest_workers", "ingest_memory_mb", "ingest_timeout"):
            if getattr(self, name) <= 0:
                raise SystemExit(f"AMALIY_{name.upper()} must be positive, not {getattr(self, name)}")
        if self.ingest_queue < 0:  # 0: no upload waits, every one past the workers gets 503
            raise SystemExit(f"AMALIY_INGEST_QUEUE must be 0 or more, not {self.ingest_queue}")
        return PoolSettings(self.ingest_workers, self.ingest_queue, self.ingest_memory_mb, self.ingest_timeout)

    def media_settings(self) -> WorkerSettings:
        if not 0 <= self.voice_opus_complexity <= 10:
            raise SystemExit(f"AMALIY_VOICE_OPUS_COMPLEXITY must be 0 to 10, not {self.voice_opus_complexity}")
        if not 6_000 <= self.voice_opus_bitrate <= 510_000:
            raise SystemExit(f"AMALIY_VOICE_OPUS_BITRATE must be 6000 to 510000 bit/s, not {self.voice_opus_bitrate}")
        return WorkerSettings(
            Attenuation(self.voice_ref_distance, self.voice_rolloff, self.voice_max_distance),
            ice_timeout=self.voice_ice_timeout,
            media_timeout=self.voice_media_timeout,
            listener_timeout=self.voice_listener_timeout,
            max_calls=self.voice_max_calls,
            opus_bitrate=self.voice_opus_bitrate,
            opus_complexity=self.voice_opus_complexity,
            crowded_calls=self.voice_crowded_calls,
            ice_addresses=tuple(a.strip() for a in self.voice_addresses.split(",") if a.strip()),
        )

    def shared_records(self) -> SharedSettings | None:
        """With REDIS_URL, where the deployment's records are shared (server.replica); None on its own."""
        if not self.redis_url:
            return None
        return SharedSettings(self.redis_url, self.deployment, max(1, self.records_snapshot_every))

    def xapi(self) -> SenderSettings | None:
        """Where learning events go as xAPI statements; None when no LRS is configured."""
        url = self.xapi_url.strip()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"AMALIY_XAPI_URL must be an http:// or https:// address of an LRS's xAPI endpoint, such as https://lrs.school.uz/xAPI, not {url!r}")
        if not 1 <= self.xapi_batch <= 1000:
            raise SystemExit(f"AMALIY_XAPI_BATCH must be 1 to 1000 statements, not {self.xapi_batch}")
        for name in ("xapi_timeout", "xapi_max_backoff"):
            if not getattr(self, name) > 0:
                raise SystemExit(f"AMALIY_{name.upper()} must be positive, not {getattr(self, name)}")
        return SenderSettings(url, self.xapi_username, self.xapi_password, self.xapi_batch, self.xapi_timeout, self.xapi_max_backoff)

    def with_overrides(self, **values: Any) -> "Config":
        """A copy with the given settings; names of RoomLimits fields go into ``limits``."""
        limit_names = {f.name for f in fields(RoomLimits)}
        limits = {k: v for k, v in values.items() if k in limit_names and v is not None}
        top = {k: v for k, v in values.items() if k not in limit_names and v is not None}
        if "data_dir" in top:
            top["data_dir"] = Path(top["data_dir"])
        return replace(self, limits=replace(self.limits, **limits), **top)


def _coerce(raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        return float(raw)
    return raw


def from_env(environ: dict[str, str] | None = None) -> Config:
    """Defaults overridden by AMALIY_<NAME> variables (any Config or RoomLimits field); REDIS_URL,
    the name Redis tools use, stands for AMALIY_REDIS_URL."""
    env = os.environ if environ is None else environ
    base = Config()
    values: dict[str, Any] = {}
    if env.get("REDIS_URL") and "AMALIY_REDIS_URL" not in env:
        values["redis_url"] = env["REDIS_URL"]
    for f in fields(Config) + fields(RoomLimits):
        key = ENV_PREFIX + f.name.upper()
        if f.name == "limits" or key not in env:
            continue
        default = getattr(base.limits if hasattr(base.limits, f.name) else base, f.name)
        try:
            values[f.name] = _coerce(env[key], default) if not isinstance(default, Path) else env[key]
        except ValueError:
            raise SystemExit(f"{key}={env[key]!r} is not a valid {type(default).__name__}") from None
    return base.with_overrides(**values)
