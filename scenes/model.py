"""What the live engine needs to know about a scene: objects, zones and spawn points.

Clients render the scene's GLB; the room needs only ids, initial transforms,
which objects can be grabbed and for how long, zones, and where people appear.
GLB nodes are named by object id so both sides refer to the same thing.

A scene is checked again as it is loaded for a room (SceneError), in the units
and types the room keeps: every number finite as a float32 and within the
room's coordinate bound. Ingest already refuses such packages; the check here
keeps a version stored before that rule from opening a practical that nobody
could join.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from scenes.manifest import MAX_COORDINATE_M

Transform = tuple[float, float, float, float, float, float, float]
"""Position (x, y, z) then rotation quaternion (x, y, z, w)."""


@dataclass(frozen=True)
class SceneObject:
    id: str
    title: str
    transform: Transform
    interactable: bool = True
    #: seconds a grab lasts without a move; None uses the room's default
    lease: float | None = None
    #: the lab station (from 1) whose equipment this is; None: shared by the room
    station: int | None = None
    #: declared properties (scenes.challenge_format.Property as JSON)
    properties: tuple[dict[str, Any], ...] = ()
    #: snap points in the object's own frame: (id, position, rotation)
    snap_points: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float, float]], ...] = ()
    #: the object's box in its own frame (scaled, not rotated): min then max corner
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


@dataclass(frozen=True)
class Zone:
    id: str
    shape: str
    center: tuple[float, float, float]
    size: tuple[float, float, float] | None = None
    radius: float | None = None
    station: int | None = None

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "shape": self.shape, "center": list(self.center)}
        if self.station is not None:
            out["station"] = self.station
        if self.size is not None:
            out["size"] = list(self.size)
        if self.radius is not None:
            out["radius"] = self.radius
        return out


@dataclass(frozen=True)
class Scene:
    id: str
    version: int
    title: str
    objects: tuple[SceneObject, ...]
    #: where people appear: x, y, z (floor level) and the yaw they face, in degrees
    spawn_points: tuple[tuple[float, float, float, float], ...]
    zones: tuple[Zone, ...] = ()
    #: where clients fetch the GLB
    glb_url: str = ""
    #: background colour and lights for clients (scene.json "environment")
    environment: dict[str, Any] = field(default_factory=dict)
    #: lab stations (scenes.stations): number, title, position, yaw_degrees, spawn_points
    stations: tuple[dict[str, Any], ...] = ()
    #: "group_size" and "assignment" of the stations, or None without stations
    station_rules: dict[str, Any] | None = None
    #: ids of the station template's objects and zones, which conditions name
    template: dict[str, list[str]] | None = None
    #: derived-property rules and the challenge, as scene.json declares them (schema_version 2)
    rules: tuple[dict[str, Any], ...] = ()
    challenge: dict[str, Any] | None = None
    #: where phones on weak links fetch its phone variant (scenes.phone_variant); "" if the version has
    #: none (last, so code that builds a Scene by position keeps working)
    glb_phone_url: str = ""

    def object_index(self) -> dict[str, int]:
        """Object id -> index used in binary frames."""
        return {obj.id: i for i, obj in enumerate(self.objects)}

    @classmethod
    def from_processed(cls, data: dict[str, Any], version: int, glb_url: str, glb_phone_url: str = "") -> "Scene":
        """Build from the server data that ingest produced (see scenes.ingest); SceneError if the room cannot hold it."""
        scene = cls._build(data, version, glb_url, glb_phone_url)
        scene.check()
        return scene

    def check(self) -> None:
        """Raise SceneError naming the first value the room's float32 tables cannot hold."""
        for obj in self.objects:
            _within(obj.transform, f"object {obj.id!r} transform")
        for i, spawn in enumerate(self.spawn_points):
            _within(spawn, f"spawn point {i}")
        for station in self.stations:
            for spawn in station["spawn_points"]:
                _within(spawn["position"], f"station {station['number']} spawn point")
        for zone in self.zones:
            _within((*zone.center, *(zone.size or ()), *(() if zone.radius is None else (zone.radius,))), f"zone {zone.id!r}")
        for i, light in enumerate(self.environment.get("lights") or ()):
            _within(light.get("position") or (), f"light {i}")

    @classmethod
    def _build(cls, data: dict[str, Any], version: int, glb_url: str, glb_phone_url: str) -> "Scene":
        return cls(
            id=data["id"],
            version=version,
            title=data["title"],
            objects=tuple(
                SceneObject(
                    obj["id"],
                    obj["title"],
                    tuple(obj["transform"]),  # type: ignore[arg-type]
                    obj["interactable"],
                    (obj.get("grab") or {}).get("lease_seconds"),
                    obj.get("station"),
                    tuple(obj.get("properties") or ()),
                    tuple((sp["id"], tuple(sp["position"]), tuple(sp["rotation"])) for sp in obj.get("snap_points") or ()),  # type: ignore[misc]
                    (tuple(obj["bounds"]["min"]), tuple(obj["bounds"]["max"])) if "bounds" in obj else ((0.0,) * 3, (0.0,) * 3),  # type: ignore[arg-type]
                )
                for obj in data["objects"]
            ),
            spawn_points=tuple((*sp["position"], sp.get("yaw_degrees", 0.0)) for sp in data["spawn_points"]),  # type: ignore[misc]
            zones=tuple(
                Zone(z["id"], z["shape"], tuple(z["center"]), tuple(z["size"]) if "size" in z else None, z.get("radius"), z.get("station"))  # type: ignore[arg-type]
                for z in data["zones"]
            ),
            glb_url=glb_url,
            glb_phone_url=glb_phone_url,
            environment=data.get("environment", {}),
            stations=tuple(data.get("stations") or ()),
            station_rules=data.get("station_rules"),
            template=data.get("template"),
            rules=tuple(data.get("rules") or ()),
            challenge=data.get("challenge"),
        )


class SceneError(ValueError):
    """The scene holds a value the live room cannot represent."""


def _within(values: Iterable[float], what: str) -> None:
    for value in values:
        if not (math.isfinite(value) and abs(value) <= MAX_COORDINATE_M):
            raise SceneError(f"{what} has the value {value!r}, beyond the room's limit of {MAX_COORDINATE_M:g} m")
