"""scene.json against hostile and careless input: bounded size and depth, values the room can hold.

Includes a property-based fuzz (hypothesis, bounded in examples and time) of the
manifest parser: whatever JSON a designer writes, parsing answers a manifest or
a list of problems, never an exception, and an accepted manifest only holds
numbers the live room's float32 tables can represent.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenes import bounded_json
from scenes import manifest as mf
from scenes.model import Scene, SceneError

from tests.scene_packages import manifest as make_manifest

BASE = make_manifest(
    "fuzz-lab", {"item": "assets/item.glb"},
    zones=[{"id": "z", "shape": "sphere", "center": [0, 1, 0], "radius": 1}],
    environment={"lights": [{"kind": "point", "position": [0, 3, 0]}]},
)
BASE["objects"][0]["transform"].update(rotation=[0, 0, 0, 1], scale=[1, 1, 1])


def parse(data: Any) -> tuple[mf.Manifest | None, list]:
    return mf.parse(json.dumps(data).encode())


@pytest.mark.parametrize("depth", [33, 900, 5000, 200_000])
def test_deep_nesting_is_refused_with_the_limit_named(depth: int) -> None:
    raw = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    manifest, problems = mf.parse(raw)
    assert manifest is None and len(problems) == 1
    assert "nested deeper than 32 levels" in problems[0].what


def test_nesting_within_the_limit_parses_as_json() -> None:
    assert bounded_json.depth(bounded_json.loads("[" * 32 + "]" * 32), 100) == 32
    assert bounded_json.depth({"a": [1, {"b": 2}]}, 100) == 3 and bounded_json.depth(7, 100) == 0


def test_a_manifest_over_the_byte_limit_is_refused_before_parsing() -> None:
    raw = json.dumps({**BASE, "description": "x" * 1999}).encode()
    manifest, problems = mf.parse(raw, mf.ManifestLimits(max_bytes=len(raw) - 1))
    assert manifest is None and "byte limit for a manifest" in problems[0].what
    assert mf.parse(raw, mf.ManifestLimits(max_bytes=len(raw)))[0] is not None


@pytest.mark.parametrize(
    "path,value",
    [
        (("objects", 0, "transform", "position", 0), 1e39),  # finite JSON, infinite as float32
        (("objects", 0, "transform", "position", 1), -10_000.5),
        (("objects", 0, "transform", "scale", 2), 1e30),
        (("spawn_points", 0, "position", 2), 3.5e38),
        (("spawn_points", 0, "yaw_degrees"), 1e300),
        (("zones", 0, "radius"), 1e20),
        (("zones", 0, "center", 0), 20_000),
    ],
)
def test_values_the_room_cannot_hold_are_refused_at_their_path(path: tuple, value: float) -> None:
    data = json.loads(json.dumps(BASE))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    manifest, problems = parse(data)
    assert manifest is None
    where = "scene.json $" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)
    assert [p.where for p in problems] == [where], problems


def test_a_stored_scene_beyond_the_room_bounds_cannot_open() -> None:
    """A version stored before the rule: the room refuses it instead of failing every join."""
    server = {
        "id": "old", "title": "Old", "zones": [], "spawn_points": [{"position": [0, 0, 1]}], "environment": {},
        "objects": [{"id": "o", "title": "O", "interactable": True, "transform": [1e39, 0, 0, 0, 0, 0, 1]}],
    }
    with pytest.raises(SceneError, match="object 'o' transform"):
        Scene.from_processed(server, 1, "/x.glb")
    server["objects"][0]["transform"][0] = 1.0
    assert Scene.from_processed(server, 1, "/x.glb").objects[0].transform[0] == 1.0


# ------------------------------------------------------------------ fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
#: where in a valid manifest a fuzzed value is put
paths = st.sampled_from(
    [
        ("id",), ("title",), ("units",), ("up_axis",), ("assets",), ("assets", 0), ("assets", 0, "path"), ("objects",),
        ("objects", 0), ("objects", 0, "transform"), ("objects", 0, "transform", "position"), ("objects", 0, "transform", "rotation"),
        ("objects", 0, "transform", "scale"), ("objects", 0, "snap_points"), ("objects", 0, "grab"), ("objects", 0, "collider"),
        ("zones",), ("zones", 0), ("zones", 0, "center"), ("zones", 0, "radius"), ("spawn_points",), ("spawn_points", 0),
        ("spawn_points", 0, "yaw_degrees"), ("environment",), ("environment", "lights"), ("targets",), ("challenges",),
        ("schema_version",), ("extra",),
    ]
)


def _put(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _check_outcome(manifest: mf.Manifest | None, problems: list) -> None:
    if manifest is None:
        assert problems and all(p.where and p.what and p.fix for p in problems)
        return
    assert problems == []
    numbers = [v for obj in manifest.objects for v in (*obj.transform.position, *obj.transform.rotation, *obj.transform.scale)]
    numbers += [v for sp in manifest.spawn_points for v in (*sp.position, sp.yaw_degrees)]
    numbers += [v for z in manifest.zones for v in (*z.center, *(z.size or ()), z.radius or 0.0)]
    as_f32 = np.asarray(numbers, dtype=np.float64).astype(np.float32)
    assert np.isfinite(as_f32).all() and (np.abs(as_f32) <= mf.MAX_COORDINATE_M).all()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=paths, value=json_values)
def test_fuzzed_fields_get_a_manifest_or_problems_never_an_exception(path: tuple, value: Any) -> None:
    _check_outcome(*parse(_put(BASE, path, value)))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzzed_bytes_never_raise(raw: bytes) -> None:
    _check_outcome(*mf.parse(raw))
