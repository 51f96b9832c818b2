"""Lab stations: the manifest's station template copied to each station's place.

A station is a bench of equipment one student or a small group works at. The
designer describes one bench (``stations.template``) and where the benches go
(a ``grid`` or explicit ``placements``); ingest expands that into concrete
objects and zones, so the exported GLB, the room and the clients all see plain
objects with ids such as ``beaker@3`` (template id, then the station number
from 1). Everything outside the template is shared by the whole room.

A station turns only in quarter turns about the vertical axis, so a template's
box zones stay axis-aligned boxes (their x and z extents swap at 90 and 270).
"""

from __future__ import annotations

from typing import NamedTuple

from scenes import manifest as mf
from scenes.quaternions import about_y, multiply
from scenes.report import Problem


class StationPlace(NamedTuple):
    number: int
    title: str
    position: tuple[float, float, float]
    yaw_degrees: int


class Expanded(NamedTuple):
    #: every object of the scene, with its station number (None: shared)
    objects: list[tuple[mf.SceneObject, int | None]]
    zones: list[tuple[mf.Zone, int | None]]
    stations: list[dict]


def instance_id(template_id: str, station: int) -> str:
    """The id of a template object or zone in one station."""
    return f"{template_id}@{station}"


def places(stations: mf.Stations) -> list[StationPlace]:
    """Where each station stands, numbered from 1."""
    if stations.placements is not None:
        return [
            StationPlace(i + 1, p.title or f"Station {i + 1}", (p.position[0], p.position[1], p.position[2]), p.yaw_degrees % 360)
            for i, p in enumerate(stations.placements)
        ]
    grid = stations.grid
    assert grid is not None
    return [
        StationPlace(
            k + 1,
            f"Station {k + 1}",
            (grid.origin[0] + (k % grid.columns) * grid.spacing[0], grid.origin[1], grid.origin[2] + (k // grid.columns) * grid.spacing[1]),
            grid.yaw_degrees % 360,
        )
        for k in range(grid.count)
    ]


def _turn(x: float, z: float, yaw: int) -> tuple[float, float]:
    """(x, z) turned by ``yaw`` degrees about +y (right-handed, y up: +90 takes +x to -z)."""
    quarter = yaw // 90
    for _ in range(quarter):
        x, z = z, -x
    return x, z


def _place_point(local: list[float], place: StationPlace) -> list[float]:
    x, z = _turn(local[0], local[2], place.yaw_degrees)
    return [x + place.position[0], local[1] + place.position[1], z + place.position[2]]


def expand(manifest: mf.Manifest) -> Expanded:
    """The scene's objects and zones with every station's copies of the template."""
    objects: list[tuple[mf.SceneObject, int | None]] = [(obj, None) for obj in manifest.objects]
    zones: list[tuple[mf.Zone, int | None]] = [(zone, None) for zone in manifest.zones]
    stations: list[dict] = []
    if manifest.stations is None:
        return Expanded(objects, zones, stations)
    template = manifest.stations.template
    for place in places(manifest.stations):
        turn = about_y(place.yaw_degrees)
        for obj in template.objects:
            transform = obj.transform.model_copy(
                update={
                    "position": _place_point(obj.transform.position, place),
                    "rotation": list(multiply(turn, obj.transform.rotation)),
                }
            )
            objects.append((obj.model_copy(update={"id": instance_id(obj.id, place.number), "transform": transform}), place.number))
        for zone in template.zones:
            size = zone.size
            if size is not None and place.yaw_degrees in (90, 270):
                size = [size[2], size[1], size[0]]
            zones.append(
                (zone.model_copy(update={"id": instance_id(zone.id, place.number), "center": _place_point(zone.center, place), "size": size}), place.number)
            )
        stations.append(
            {
                "number": place.number,
                "title": place.title,
                "position": list(place.position),
                "yaw_degrees": place.yaw_degrees,
                "spawn_points": [
                    {"position": _place_point(sp.position, place), "yaw_degrees": (sp.yaw_degrees + place.yaw_degrees + 180) % 360 - 180}
                    for sp in template.spawn_points
                ],
            }
        )
    return Expanded(objects, zones, stations)


def out_of_bounds(expanded: Expanded) -> list[Problem]:
    """Station copies placed beyond the room's coordinate limit (a template position plus a
    station's place can pass it even when each is within it)."""
    problems = []
    placed = [(obj.id, obj.transform.position) for obj, station in expanded.objects if station is not None]
    placed += [(zone.id, zone.center) for zone, station in expanded.zones if station is not None]
    placed += [(f"station {s['number']} spawn point", sp["position"]) for s in expanded.stations for sp in s["spawn_points"]]
    for what, position in placed:
        if any(abs(v) > mf.MAX_COORDINATE_M for v in position):
            problems.append(
                Problem(
                    "scene.json $.stations",
                    f"{what} lands at {[round(v, 3) for v in position]}, beyond the room's limit of {mf.MAX_COORDINATE_M:g} m",
                    "bring the grid's origin and spacing (or the placements) closer to the middle of the room",
                )
            )
            break
    return problems
