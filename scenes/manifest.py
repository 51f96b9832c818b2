"""The scene package manifest (`scene.json`), versions 1 and 2.

Version 2 adds what makes the lab a practical (scenes.challenge_format):
object properties, derived-property rules, lab stations and the challenge.
A version 1 package is read as it always was.

A course designer writes this file; the pydantic models are the one definition
of the format: ingest validates against them, `/api/scenes/schema` publishes
their JSON Schema, and docs/scene-package.md describes the same fields.
Validation reports every problem at once, each with its JSON path and a hint.

Numbers are checked in the units and types the live room uses, not only as
JSON: a position of 1e39 is a finite JSON number but infinite in the room's
float32 tables, so every coordinate is bounded by the room's own limit
(MAX_COORDINATE_M) and every size, radius and scale is positive and bounded.
The raw file is bounded too, in bytes and nesting depth (ManifestLimits),
before anything recurses over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scenes import bounded_json
from scenes.challenge_format import KINDS, MAX_PROPERTIES_PER_OBJECT, MAX_RULES, MAX_STATIONS, Challenge, Grid, Placement, Property, Rule
from scenes.report import Problem

SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MESH_FORMATS = {".glb": "glb", ".gltf": "gltf", ".obj": "obj", ".stl": "stl", ".ply": "ply"}
TEXTURE_FORMATS = {".png", ".jpg", ".jpeg"}
UNIT_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}


def is_texture(path: str) -> bool:
    """Whether a package file is a texture by its name (PNG or JPEG)."""
    return "." + path.rsplit(".", 1)[-1].lower() in TEXTURE_FORMATS

#: Largest magnitude of any coordinate in a scene, in metres: the live room refuses
#: poses and objects beyond it, so a scene may not place anything there either.
MAX_COORDINATE_M = 10_000.0
#: Largest scale factor on an object (the extent check then refuses implausible sizes).
MAX_SCALE = 10_000.0


@dataclass(frozen=True)
class ManifestLimits:
    """Bounds on scene.json itself, checked before it is parsed or walked."""

    #: bytes of scene.json; the format needs a few kilobytes per object
    max_bytes: int = 1024 * 1024
    #: nesting of arrays and objects (the deepest field today is 5 levels down)
    max_depth: int = 32


Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="lower-case letters, digits, '-' and '_'")]
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE_M, le=MAX_COORDINATE_M, description="metres")]
Extent = Annotated[float, Field(gt=0, le=MAX_COORDINATE_M, description="metres")]
Vec3 = Annotated[list[Coordinate], Field(min_length=3, max_length=3)]
Quat = Annotated[list[Annotated[float, Field(ge=-2.0, le=2.0)]], Field(min_length=4, max_length=4, description="x, y, z, w")]
Text = Annotated[str, Field(max_length=2000)]


def _unit_quaternion(value: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in value))
    if not 0.9 < norm < 1.1:
        raise ValueError("rotation must be a unit quaternion [x, y, z, w], e.g. [0, 0, 0, 1]")
    return [v / norm for v in value]


Rotation = Annotated[Quat, AfterValidator(_unit_quaternion)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Transform(_Model):
    position: Vec3 = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    rotation: Rotation = Field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0])
    scale: Annotated[list[Annotated[float, Field(le=MAX_SCALE)]], Field(min_length=3, max_length=3)] = Field(
        default_factory=lambda: [1.0, 1.0, 1.0]
    )

    @field_validator("scale")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(v <= 0 for v in value):
            raise ValueError("scale must be positive on every axis")
        return value


class Asset(_Model):
    id: Id
    path: Annotated[str, Field(min_length=1, max_length=255, description="path inside the zip, '/' separated")]
    #: the look of the asset's meshes that have none of their own (an STL, an OBJ without
    #: an MTL, a PLY without colours, a glTF primitive without a material); a mesh with its
    #: own material or colours keeps them (ingest notes that these were ignored)
    color: Annotated[
        str, Field(description="'#rrggbb' (sRGB), the base colour of meshes with no material or colours of their own", json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}$"})
    ] | None = None
    metalness: Annotated[float, Field(ge=0, le=1, description="0 (default) to 1, for meshes with no material of their own")] | None = None
    roughness: Annotated[float, Field(ge=0, le=1, description="0 to 1 (default 0.8), for meshes with no material of their own")] | None = None

    @field_validator("path")
    @classmethod
    def _mesh(cls, value: str) -> str:
        suffix = "." + value.rsplit(".", 1)[-1].lower() if "." in value else ""
        if suffix not in MESH_FORMATS:
            raise ValueError(f"asset must be one of {', '.join(sorted(MESH_FORMATS))}")
        return value

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str | None) -> str | None:
        if value is not None and not (len(value) == 7 and value[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in value[1:])):
            raise ValueError(f"color must be '#rrggbb' (six hex digits), e.g. '#ff0000' for red, not {value[:20]!r}")
        return value


class SnapPoint(_Model):
    id: Id
    position: Vec3
    rotation: Rotation = Field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0])


class Grab(_Model):
    """How an interactable object may be handled."""

    lease_seconds: Annotated[float, Field(gt=0, le=600)] | None = None


class SceneObject(_Model):
    id: Id
    title: Annotated[str, Field(max_length=120)] = ""
    asset: Id
    transform: Transform = Field(default_factory=Transform)
    interactable: bool = False
    grab: Grab | None = None
    collider: Literal["box", "hull"] = "box"
    snap_points: Annotated[list[SnapPoint], Field(max_length=64)] = []
    #: schema_version 2: states the room keeps and students change with ``interact``
    properties: Annotated[list[Property], Field(max_length=MAX_PROPERTIES_PER_OBJECT)] = []


class Zone(_Model):
    id: Id
    shape: Literal["box", "sphere"]
    center: Vec3
    size: Annotated[list[Extent], Field(min_length=3, max_length=3, description="box: full extents in metres")] | None = None
    radius: Extent | None = None

    @model_validator(mode="after")
    def _dimensions(self) -> "Zone":
        if self.shape == "box" and (self.size is None or self.radius is not None):
            raise ValueError("a box zone needs 'size': [x, y, z] with positive extents, and no 'radius'")
        if self.shape == "sphere" and (self.radius is None or self.size is not None):
            raise ValueError("a sphere zone needs a positive 'radius', and no 'size'")
        return self


class SpawnPoint(_Model):
    position: Vec3
    yaw_degrees: Annotated[float, Field(ge=-360.0, le=360.0)] = 0.0


class Light(_Model):
    kind: Literal["ambient", "directional", "point"]
    color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#ffffff"
    intensity: Annotated[float, Field(ge=0, le=100)] = 1.0
    position: Vec3 | None = None

    @model_validator(mode="after")
    def _placed(self) -> "Light":
        if self.kind != "ambient" and self.position is None:
            raise ValueError(f"a {self.kind} light needs a 'position'")
        return self


class Environment(_Model):
    background: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = "#dfe8f0"
    lights: Annotated[list[Light], Field(max_length=16)] = Field(
        default_factory=lambda: [Light(kind="ambient", intensity=0.6), Light(kind="directional", position=[3, 6, 2])]
    )


class Challenges(_Model):
    """Reserved for lab challenges and hints; a later format version defines ``items``."""

    model_config = ConfigDict(extra="allow")
    version: int = 1


class StationTemplate(_Model):
    """One lab station's own equipment and places, copied to every station.

    Positions are relative to the station's placement (its origin and quarter-turn yaw).
    """

    objects: Annotated[list[SceneObject], Field(min_length=1, max_length=200)]
    zones: Annotated[list[Zone], Field(max_length=50)] = []
    spawn_points: Annotated[list[SpawnPoint], Field(min_length=1, max_length=16)]


class Stations(_Model):
    """Lab stations: the template instantiated on a ``grid`` or at explicit ``placements``.

    Students are put at stations alone or in groups of up to ``group_size``:
    ``auto`` (the least-filled station, then the lowest number), by the ``teacher``,
    or ``choose`` (each student picks on joining; the teacher can still move them).
    """

    template: StationTemplate
    grid: Grid | None = None
    placements: Annotated[list[Placement], Field(min_length=1, max_length=MAX_STATIONS)] | None = None
    group_size: Annotated[int, Field(ge=1, le=16)] = 2
    assignment: Literal["auto", "teacher", "choose"] = "auto"

    @model_validator(mode="after")
    def _one_layout(self) -> "Stations":
        if (self.grid is None) == (self.placements is None):
            raise ValueError("stations need either a 'grid' or a list of 'placements'")
        return self


#: package ids that would collide with fixed routes under /api/scenes/
RESERVED_IDS = frozenset({"schema"})


#: fields a version 1 manifest may not use
V2_FIELDS = ("stations", "rules", "challenge")


class Manifest(_Model):
    schema_version: Literal[1, 2] = Field(description="format version of this manifest")
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=120)]
    description: Text = ""
    author: Annotated[str, Field(max_length=120)] = ""
    units: Literal["m", "cm", "mm", "in", "ft"] = "m"
    up_axis: Literal["y", "z"] = "y"
    assets: Annotated[list[Asset], Field(min_length=1, max_length=1000)]
    objects: Annotated[list[SceneObject], Field(min_length=1, max_length=1000)]
    zones: Annotated[list[Zone], Field(max_length=200)] = []
    spawn_points: Annotated[list[SpawnPoint], Field(min_length=1, max_length=200)]
    environment: Environment = Field(default_factory=Environment)
    targets: Annotated[list[Literal["headset", "desktop"]], Field(min_length=1)] = ["headset", "desktop"]
    #: schema_version 1 only: the reserved block, kept and not read
    challenges: Challenges | None = None
    stations: Stations | None = None
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] = []
    challenge: Challenge | None = None

    @model_validator(mode="after")
    def _version_fields(self) -> "Manifest":
        if self.schema_version == 1:
            used = [name for name in V2_FIELDS if name in self.model_fields_set]
            if used or any(obj.properties for obj in self.objects):
                raise ValueError(
                    f"{', '.join(used) or 'object properties'} need schema_version 2; set \"schema_version\": 2"
                )
        elif self.challenges is not None:
            raise ValueError("'challenges' is the reserved block of schema_version 1; declare the challenge in 'challenge'")
        return self

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_IDS:
            raise ValueError(f"{value!r} is reserved; choose another package id")
        return value


def too_big(size: int, limits: ManifestLimits) -> Problem:
    """The refusal for a scene.json over the size limit (ingest checks the file's size before reading it)."""
    return Problem(
        "scene.json",
        f"is {size} bytes, over the {limits.max_bytes} byte limit for a manifest",
        "keep meshes and textures in asset files, not in scene.json",
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scene.json (published at /api/scenes/schema)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Amaliy scene package manifest (scene.json)"
    return schema


_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field or check its spelling against docs/scene-package.md",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "use lower-case letters, digits, '-' or '_'",
    "too_short": "add at least one entry",
    "finite_number": "use a finite number",
    "condition": "see docs/scene-package.md, Conditions, for every kind and its fields",
}


def _items(data: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(key)
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _reference_problems(data: dict[str, Any]) -> list[Problem]:
    """Unique ids and references between entries, checked on the raw JSON so they are
    reported together with every field problem, each at its own path."""
    problems = []

    def unique(entries: list[tuple[int, dict[str, Any]]], path: str, what: str) -> None:
        seen: set[Any] = set()
        for i, item in entries:
            ident = item.get("id")
            if isinstance(ident, str) and ident in seen:
                problems.append(Problem(f"scene.json $.{path}[{i}].id", f"{what} id {ident!r} is used twice", "give every one a unique id"))
            seen.add(ident)

    for key in ("assets", "objects", "zones"):
        unique(_items(data, key), key, key[:-1])
    assets = {item.get("id") for _, item in _items(data, "assets")}
    for i, obj in _items(data, "objects"):
        if isinstance(obj.get("asset"), str) and obj["asset"] not in assets:
            problems.append(
                Problem(f"scene.json $.objects[{i}].asset", f"asset {obj['asset']!r} is not declared in 'assets'", "declare it in 'assets' or fix the id")
            )
        unique(_items(obj, "snap_points"), f"objects[{i}].snap_points", "snap point")
    return problems


def json_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path. A condition's kind appears in the location
    twice (the union's tag, then the field of the same name); it is shown once."""
    parts = [part for i, part in enumerate(loc) if not (i + 1 < len(loc) and part == loc[i + 1] and part in KINDS)]
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def parse(raw: bytes, limits: ManifestLimits = ManifestLimits()) -> tuple[Manifest | None, list[Problem]]:
    """Parse scene.json; returns the manifest, or every problem with its JSON path and a fix."""
    if len(raw) > limits.max_bytes:
        return None, [too_big(len(raw), limits)]
    try:
        data = bounded_json.loads(raw, limits.max_depth)
    except bounded_json.TooDeep as exc:
        return None, [Problem("scene.json", f"is {exc}", "flatten the structure; see docs/scene-package.md for the format")]
    except ValueError as exc:
        return None, [Problem("scene.json", f"not valid JSON: {exc}", "fix the JSON syntax (a validator or editor helps)")]
    if not isinstance(data, dict):
        return None, [Problem("scene.json $", "the manifest must be a JSON object", "start from 'amaliy scenes new'")]
    version = data.get("schema_version")
    if "schema_version" in data and (type(version) is not int or version not in SUPPORTED_VERSIONS):
        return None, [
            Problem(
                "scene.json $.schema_version",
                f"unknown schema_version {version!r}",
                f"this server reads schema_version {', '.join(map(str, SUPPORTED_VERSIONS))}; set it and check the format",
            )
        ]
    problems = _reference_problems(data)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            path = json_path(err["loc"])
            hint = _HINTS.get(err["type"], "see docs/scene-package.md")
            if err["type"] == "string_pattern_mismatch" and str((err.get("ctx") or {}).get("pattern", "")).startswith("^#"):
                hint = "use a colour '#rrggbb' (six hex digits), e.g. '#ff8800'"
            problems.append(Problem(f"scene.json {path}", err["msg"].removeprefix("Value error, "), hint))
        return None, problems
    from scenes import challenge_check  # it reads Manifest models, so it imports this module

    problems += challenge_check.problems(manifest)
    return (None, problems) if problems else (manifest, [])
