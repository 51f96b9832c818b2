"""Lab furniture and equipment built from trimesh primitives, for the sample packages.

No outside assets: a school server with no internet builds its sample labs
from code. Meshes are y-up with their origin at the base centre, coloured with
vertex colours so each exports as a small self-contained GLB.

Every station of a sample repeats its bench of equipment (eight times in the
samples), so the equipment is kept to a few hundred triangles a piece: the
headset budget (scenes.ingest.DEFAULT_BUDGETS) counts every copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh

RGBA = tuple[int, int, int, int]
GLASS: RGBA = (200, 225, 240, 255)
WOOD: RGBA = (150, 105, 60, 255)
STEEL: RGBA = (150, 150, 160, 255)
DARK: RGBA = (45, 45, 50, 255)
COPPER: RGBA = (190, 110, 50, 255)


def coloured(mesh: trimesh.Trimesh, rgba: RGBA) -> trimesh.Trimesh:
    mesh.visual.vertex_colors = np.tile(np.array(rgba, dtype=np.uint8), (len(mesh.vertices), 1))
    return mesh


def box(extents: tuple[float, float, float], at: tuple[float, float, float], rgba: RGBA) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(at)
    return coloured(mesh, rgba)


def upright(parts: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    """Join parts built along +z (trimesh's habit) and stand them up along +y (WebXR's)."""
    mesh = trimesh.util.concatenate(parts)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    return mesh


def cylinder(radius: float, height: float, z: float, rgba: RGBA, sections: int = 24) -> trimesh.Trimesh:
    mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    mesh.apply_translation((0, 0, z + height / 2))
    return coloured(mesh, rgba)


def post(radius: float, height: float, at: tuple[float, float, float], rgba: RGBA, sections: int = 8) -> trimesh.Trimesh:
    """A vertical round post (y up) standing on ``at``."""
    mesh = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    mesh.apply_translation((at[0], at[1] + height / 2, at[2]))
    return coloured(mesh, rgba)


def _tube(r_min: float, r_max: float, height: float, z: float, rgba: RGBA, sections: int) -> trimesh.Trimesh:
    mesh = trimesh.creation.annulus(r_min=r_min, r_max=r_max, height=height, sections=sections)
    mesh.apply_translation((0, 0, z + height / 2))
    return coloured(mesh, rgba)


# ------------------------------------------------------------------ room furniture


def room_shell(width: float, depth: float, height: float, floor: RGBA, walls: RGBA, centre_z: float = 0.0) -> list[trimesh.Trimesh]:
    """A floor and four walls around it (x across ``width``, z along ``depth``), the floor top at y = 0."""
    t = 0.1
    z0 = centre_z
    return [
        box((width, 0.02, depth), (0, -0.01, z0), floor),
        box((width, height, t), (0, height / 2, z0 - depth / 2 - t / 2), walls),
        box((width, height, t), (0, height / 2, z0 + depth / 2 + t / 2), walls),
        # the side walls reach half-way into the end walls: no corner is shared (ingest would merge it and say so)
        box((t, height, depth + t), (-width / 2 - t / 2, height / 2, z0), walls),
        box((t, height, depth + t), (width / 2 + t / 2, height / 2, z0), walls),
    ]


def whiteboard(width: float, height: float, at: tuple[float, float, float]) -> list[trimesh.Trimesh]:
    """A whiteboard on a wall facing +z: ``at`` is its centre on the wall."""
    x, y, z = at
    return [
        box((width + 0.06, height + 0.06, 0.02), (x, y, z + 0.01), (170, 170, 175, 255)),
        box((width, height, 0.01), (x, y, z + 0.025), (250, 250, 250, 255)),
        box((width * 0.5, 0.03, 0.06), (x, y - height / 2 - 0.03, z + 0.04), (170, 170, 175, 255)),  # pen tray
    ]


def desk(width: float, depth: float, height: float, at: tuple[float, float, float], top: RGBA = WOOD, body: RGBA = (110, 80, 50, 255)) -> list[trimesh.Trimesh]:
    """A teacher's desk standing on ``at``: a top on two side panels, with a front panel on its +z side (towards the class)."""
    x, y, z = at
    leg = height - 0.04
    return [
        box((width, 0.04, depth), (x, y + height - 0.02, z), top),
        box((0.04, leg, depth - 0.04), (x - width / 2 + 0.04, y + leg / 2, z), body),
        box((0.04, leg, depth - 0.04), (x + width / 2 - 0.04, y + leg / 2, z), body),
        box((width - 0.08, leg * 0.6, 0.03), (x, y + leg * 0.6, z + depth / 2 - 0.04), body),  # towards the class
    ]


def bench(width: float, depth: float, top_height: float, top: RGBA, body: RGBA) -> trimesh.Trimesh:
    """A lab bench: a worktop on a closed cabinet (so a walking person bumps into it, not between legs).

    The worktop's upper face is at ``top_height``; the origin is at the floor, centred.
    """
    slab = 0.05
    inset = 0.05
    parts = [
        box((width, slab, depth), (0, top_height - slab / 2, 0), top),
        box((width - 2 * inset, top_height - slab - 0.08, depth - 2 * inset), (0, (top_height - slab + 0.08) / 2, 0), body),
        box((width - 2 * inset - 0.04, 0.08, depth - 2 * inset - 0.04), (0, 0.04, 0), DARK),  # plinth
    ]
    for x in (-width / 4, width / 4):  # cupboard doors and handles on the student's side (+z)
        parts.append(box((width / 2 - 2 * inset - 0.04, top_height - slab - 0.2, 0.01), (x, (top_height - slab + 0.08) / 2, depth / 2 - inset + 0.005), (225, 225, 220, 255)))
        parts.append(box((0.12, 0.02, 0.02), (x, top_height - slab - 0.1, depth / 2 - inset + 0.02), STEEL))
    return trimesh.util.concatenate(parts)


# ------------------------------------------------------------------ chemistry


def beaker(radius: float, height: float, liquid: RGBA | None, sections: int = 16) -> trimesh.Trimesh:
    """An open glass, with a coloured liquid inside (None: empty)."""
    parts = [_tube(radius * 0.9, radius, height, 0.0, GLASS, sections), cylinder(radius * 0.95, height * 0.05, 0.0, GLASS, sections)]
    if liquid is not None:
        parts.append(cylinder(radius * 0.88, height * 0.55, height * 0.03, liquid, sections))
    return upright(parts)


def flask(radius: float, height: float, sections: int = 16) -> trimesh.Trimesh:
    """A tall flask: a wide glass body and a narrow neck, empty."""
    body = height * 0.6
    return upright(
        [
            _tube(radius * 0.9, radius, body, 0.0, GLASS, sections),
            cylinder(radius * 0.95, height * 0.04, 0.0, GLASS, sections),
            cylinder(radius * 0.97, 0.004, body - 0.004, GLASS, sections),  # shoulder
            _tube(radius * 0.32, radius * 0.4, height - body, body, GLASS, sections),
        ]
    )


def burner(sections: int = 16) -> trimesh.Trimesh:
    flame = coloured(trimesh.creation.cone(radius=0.014, height=0.05, sections=8), (80, 140, 255, 255))
    flame.apply_translation((0, 0, 0.16))
    tap = box((0.03, 0.012, 0.012), (0.035, 0, 0.03), (200, 170, 60, 255))  # gas tap, along +x
    return upright([cylinder(0.05, 0.02, 0.0, (60, 60, 70, 255), sections), cylinder(0.012, 0.14, 0.02, STEEL, 12), tap, flame])


def tripod(height: float, radius: float) -> trimesh.Trimesh:
    """A tripod with a wire gauze on top: three legs on a ring; the gauze's upper face is at ``height``."""
    legs = [post(0.005, height - 0.008, (radius * np.cos(a), 0.0, radius * np.sin(a)), DARK, 6) for a in np.radians([90, 210, 330])]
    ring = coloured(trimesh.creation.annulus(r_min=radius - 0.008, r_max=radius + 0.004, height=0.008, sections=16), DARK)
    ring.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
    ring.apply_translation((0, height - 0.012, 0))
    gauze = box((radius * 2.3, 0.003, radius * 2.3), (0, height - 0.0015, 0), (175, 175, 180, 255))
    centre = box((radius * 1.1, 0.004, radius * 1.1), (0, height - 0.0015, 0), (235, 235, 230, 255))  # the ceramic centre
    return trimesh.util.concatenate([*legs, ring, gauze, centre])


def heat_mat(size: float) -> trimesh.Trimesh:
    """A square heat-proof mat, 8 mm thick."""
    return trimesh.util.concatenate(
        [box((size, 0.008, size), (0, 0.004, 0), (70, 75, 80, 255)), box((size * 0.8, 0.001, size * 0.8), (0, 0.0085, 0), (110, 115, 120, 255))]
    )


def thermometer(length: float) -> trimesh.Trimesh:
    """A glass thermometer with a red bulb at its base, standing up (lay it down with a rotation)."""
    bulb = coloured(trimesh.creation.icosphere(subdivisions=1, radius=0.006), (210, 30, 30, 255))
    bulb.apply_translation((0, 0, 0.006))
    return upright(
        [
            bulb,
            cylinder(0.0035, length - 0.01, 0.01, GLASS, 8),
            cylinder(0.0017, length * 0.4, 0.008, (210, 30, 30, 255), 6),  # the column
            cylinder(0.0045, 0.012, length - 0.012, DARK, 8),  # cap
        ]
    )


# ------------------------------------------------------------------ circuits


def battery() -> trimesh.Trimesh:
    """A 4.5 V flat battery: terminals on top, + red at +x, - blue at -x."""
    body = box((0.12, 0.07, 0.06), (0, 0.035, 0), (30, 30, 35, 255))
    label = box((0.1, 0.04, 0.002), (0, 0.035, 0.031), (220, 150, 30, 255))
    plus = box((0.02, 0.02, 0.02), (0.04, 0.08, 0), (200, 40, 40, 255))
    minus = box((0.02, 0.02, 0.02), (-0.04, 0.08, 0), (40, 40, 200, 255))
    return trimesh.util.concatenate([body, label, plus, minus])


def bulb() -> trimesh.Trimesh:
    """A torch bulb in a holder."""
    glass = coloured(trimesh.creation.icosphere(subdivisions=1, radius=0.02), (255, 240, 170, 255))
    glass.apply_translation((0, 0, 0.058))
    return upright([cylinder(0.03, 0.02, 0.0, (70, 70, 70, 255), 12), cylinder(0.01, 0.02, 0.02, (180, 180, 180, 255), 8), glass])


def switch() -> trimesh.Trimesh:
    """A knife switch on a wooden base, lever raised (open)."""
    base = box((0.08, 0.015, 0.05), (0, 0.0075, 0), (120, 80, 50, 255))
    lever = box((0.06, 0.008, 0.01), (0.01, 0.03, 0), (190, 190, 200, 255))
    lever.apply_transform(trimesh.transformations.rotation_matrix(np.radians(15), (0, 0, 1), (-0.02, 0.03, 0)))
    posts = [box((0.01, 0.02, 0.01), (x, 0.025, 0), STEEL) for x in (-0.025, 0.03)]
    return trimesh.util.concatenate([base, lever, *posts])


def resistor() -> trimesh.Trimesh:
    """A 100 ohm resistor on a small block (brown, black, brown bands), lying along x."""
    colours = [(150, 75, 0, 255), (0, 0, 0, 255), (150, 75, 0, 255)]
    bands = [cylinder(0.009, 0.005, 0.012 + 0.009 * i, c, 8) for i, c in enumerate(colours)]
    body = upright([cylinder(0.008, 0.05, 0.0, (225, 200, 150, 255), 8), cylinder(0.0015, 0.08, -0.015, STEEL, 6), *bands])
    body.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 0, 1)))  # lie it down along x
    body.apply_translation((0.025, 0.022, 0))
    block = box((0.07, 0.012, 0.03), (0, 0.006, 0), (235, 235, 225, 255))
    return trimesh.util.concatenate([block, body])


def circuit_board(width: float, depth: float, pads: list[tuple[float, float, RGBA]], wires: list[tuple[float, float, float, float]]) -> trimesh.Trimesh:
    """A board 2 cm thick with coloured pads (x, z, colour) where parts go and printed
    wires, each an axis-aligned strip from (x0, z0) to (x1, z1); the origin at its base."""
    parts = [box((width, 0.02, depth), (0, 0.01, 0), (40, 90, 60, 255))]
    for x, z, rgba in pads:
        parts.append(box((0.09, 0.002, 0.07), (x, 0.021, z), rgba))
    for i, (x0, z0, x1, z1) in enumerate(wires):  # each a hair above the one before: strips that meet share no corner
        parts.append(box((abs(x1 - x0) + 0.008, 0.0015, abs(z1 - z0) + 0.008), ((x0 + x1) / 2, 0.0205 + 0.0001 * i, (z0 + z1) / 2), COPPER))
    return trimesh.util.concatenate(parts)


def glb(mesh: trimesh.Trimesh) -> bytes:
    return trimesh.Scene(mesh).export(file_type="glb")


# ------------------------------------------------------------------ the samples' classroom

#: worktop height of the samples' benches, metres
BENCH_TOP = 0.9
#: both samples' rooms: eight benches in 4 columns x 2 rows, 3 m apart (1.4 m between
#: neighbours, 1.6 m aisles between the rows), facing the teacher's desk at the front (-z)
GRID = {"count": 8, "columns": 4, "origin": [-4.5, 0.0, -1.5], "spacing": [3.0, 3.0]}
#: where the teacher (and anyone not at a station) appears: behind the desk, facing the class (+z)
FRONT_SPAWNS = [{"position": [x, 0.0, -5.4], "yaw_degrees": 180.0} for x in (0.0, -0.8, 0.8)]


def on_bench(x: float, z: float, y: float = 0.0, rotation: list[float] | None = None) -> dict[str, Any]:
    """A station-template transform: (x, z) on the worktop, ``y`` above it, optionally turned."""
    transform: dict[str, Any] = {"position": [x, BENCH_TOP + y, z]}
    if rotation is not None:
        transform["rotation"] = rotation
    return transform


def property_is(obj: str, name: str, **test: Any) -> dict[str, Any]:
    """A ``property`` condition: ``equals=`` a value, or ``min=``/``max=``."""
    return {"property": {"object": obj, "property": name, **test}}
#: the room: 14 m across, 11 m deep, from z = -6.25 (the front wall) to 4.75
_ROOM_WIDTH, _ROOM_DEPTH, _ROOM_CENTRE_Z, _ROOM_HEIGHT = 14.0, 11.0, -0.75, 3.0


def classroom(floor: RGBA, walls: RGBA) -> trimesh.Trimesh:
    """The shared room: floor, walls, a whiteboard on the front wall and shelves of bottles at the back."""
    front = _ROOM_CENTRE_Z - _ROOM_DEPTH / 2
    back = _ROOM_CENTRE_Z + _ROOM_DEPTH / 2
    parts = room_shell(_ROOM_WIDTH, _ROOM_DEPTH, _ROOM_HEIGHT, floor, walls, _ROOM_CENTRE_Z)
    parts += whiteboard(3.0, 1.2, (0.0, 1.6, front))
    for level in (0.4, 1.0, 1.6):  # shelves on the back wall
        parts.append(box((2.0, 0.03, 0.35), (0, level, back - 0.2), WOOD))
    for x in (-1.0, 1.0):
        parts.append(box((0.04, 1.8, 0.35), (x, 0.9, back - 0.2), WOOD))
    for i, x in enumerate(np.linspace(-0.8, 0.8, 6)):  # bottles
        parts.append(box((0.08, 0.18, 0.08), (float(x), 1.1, back - 0.2), (90 + 25 * i, 60, 160 - 15 * i, 255)))
    return trimesh.util.concatenate(parts)


#: where the teacher's desk stands, between the front spawn points and the first row
DESK_AT = [0.0, 0.0, -4.6]


def teacher_desk() -> trimesh.Trimesh:
    """The teacher's desk (stand it at DESK_AT), its front panel towards the class (+z)."""
    return trimesh.util.concatenate(desk(1.6, 0.75, 0.76, (0.0, 0.0, 0.0)))
