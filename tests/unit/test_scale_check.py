"""Sizes at human scale: notes for objects taller than a room, too small to grab, and labs in a shoebox."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from scenes import scale_check
from scenes.ingest import IngestLimits, ingest_zip
from scenes.package import pack_files
from tests.scene_packages import manifest


def _ingest(tmp_path: Path, sizes: dict[str, tuple[float, float, float]], units: str = "m", positions: dict[str, list[float]] | None = None, limits: IngestLimits | None = None):
    """One STL box per entry, of those extents in ``units``, placed as tests.scene_packages places them
    (or at ``positions``)."""
    files = {f"assets/{name}.stl": trimesh.creation.box(extents=extents).export(file_type="stl") for name, extents in sizes.items()}
    data = manifest("scale-lab", {name: f"assets/{name}.stl" for name in sizes}, units=units)
    for obj in data["objects"]:
        if positions and obj["asset"] in positions:
            obj["transform"]["position"] = positions[obj["asset"]]
    files["scene.json"] = json.dumps(data).encode()
    path = tmp_path / "p.zip"
    path.write_bytes(pack_files(files))
    return ingest_zip(path, limits)


def _size_notes(processed) -> list[str]:
    return [str(note) for note in processed.notes if "repaired" not in note.what]


def test_a_lab_at_human_scale_gets_no_size_notes(tmp_path: Path) -> None:
    processed = _ingest(tmp_path, {"bench": (1.6, 0.9, 0.7), "beaker": (0.08, 0.12, 0.08)}, positions={"bench": [0, 0.45, 0]})
    assert _size_notes(processed) == []


def test_an_object_taller_than_a_room_is_a_note_naming_units(tmp_path: Path) -> None:
    # a 30 cm flask modelled in millimetres, declared as metres: 300 m is under the refusal limit
    processed = _ingest(tmp_path, {"bench": (1.6, 0.9, 0.7), "flask": (80.0, 300.0, 80.0)}, positions={"bench": [0, 0.45, 0]})
    notes = [note for note in processed.notes if note.where == "object obj-flask"]
    assert len(notes) == 1, processed.notes
    assert "300 m tall" in notes[0].what and "taller than a room (3.5 m)" in notes[0].what
    assert "'units' in scene.json (currently set to 'm')" in notes[0].fix
    assert "'mm' makes it 0.3 m tall" in notes[0].fix and "'cm' makes it 3 m tall" in notes[0].fix
    assert not [note for note in processed.notes if note.where == "object obj-bench"]


def test_height_is_measured_as_placed(tmp_path: Path) -> None:
    """A 4 m long pipe lying on the floor is not taller than a room; stood up, it is."""
    box = trimesh.creation.box(extents=(4.0, 0.05, 0.05))
    data = manifest("pipes", {"pipe": "assets/pipe.stl"})
    lying = dict(data["objects"][0], id="lying")
    standing = dict(data["objects"][0], id="standing", transform={"position": [0, 2, 0], "rotation": [0, 0, 0.7071068, 0.7071068]})
    data["objects"] = [lying, standing]
    path = tmp_path / "p.zip"
    path.write_bytes(pack_files({"scene.json": json.dumps(data).encode(), "assets/pipe.stl": box.export(file_type="stl")}))
    wheres = [note.where for note in ingest_zip(path).notes if "taller than a room" in note.what]
    assert wheres == ["object standing"]


def test_a_tiny_object_is_a_note_with_the_unit_that_would_fix_it(tmp_path: Path) -> None:
    # a 3 cm part modelled in centimetres, declared in millimetres: 3 mm
    processed = _ingest(tmp_path, {"bench": (1600.0, 900.0, 700.0), "nut": (3.0, 2.0, 3.0)}, units="mm", positions={"bench": [0, 0.45, 0]})
    notes = [note for note in processed.notes if note.where == "object obj-nut"]
    assert len(notes) == 1, processed.notes
    assert "0.003 m (3 mm) across at its longest, under 0.005 m (5 mm)" in notes[0].what
    assert "(currently set to 'mm')" in notes[0].fix and "'cm' makes it 0.03 m (30 mm) across" in notes[0].fix


def test_a_lab_in_a_shoebox_is_one_note_naming_its_largest_object(tmp_path: Path) -> None:
    # a lab modelled in centimetres (a 160 cm bench) declared in millimetres
    processed = _ingest(tmp_path, {"bench": (160.0, 90.0, 70.0), "beaker": (8.0, 12.0, 8.0)}, units="mm", positions={"bench": [0, 0, 0], "beaker": [0.05, 0.05, 0]})
    [note] = [note for note in processed.notes if note.where == "package"]
    assert "the whole lab is only 0.16 m across" in note.what and "object 'obj-bench', is 0.16 m" in note.what
    assert "(currently set to 'mm')" in note.fix and "'cm' makes it 1.6 m across, for the largest object" in note.fix
    assert "ignore this note" in note.fix


def test_size_notes_are_notes_never_refusals_and_their_thresholds_are_limits(tmp_path: Path) -> None:
    strict = IngestLimits(note_taller_than_m=0.5, note_smaller_than_m=0.2, note_lab_smaller_than_m=5.0)
    processed = _ingest(tmp_path, {"bench": (1.6, 0.9, 0.7), "beaker": (0.08, 0.12, 0.08)}, limits=strict)
    wheres = sorted(note.where for note in processed.notes if "repaired" not in note.what)
    assert wheres == ["object obj-beaker", "object obj-bench", "package"]


def test_the_thresholds_can_be_set_like_every_ingest_limit() -> None:
    from server.config import from_env

    limits = from_env({"AMALIY_INGEST_LIMITS_JSON": '{"note_taller_than_m": 6, "note_lab_smaller_than_m": 0.2}'}).ingest_limits()
    assert limits.note_taller_than_m == 6 and limits.note_lab_smaller_than_m == 0.2 and limits.note_smaller_than_m == 0.005


@pytest.mark.parametrize("units", ["m", "cm", "mm", "in", "ft"])
def test_every_note_names_what_and_the_current_units(units: str) -> None:
    tall = scale_check.Placed("tower", 9.0, np.array([0.0, 0.0, 0.0]), np.array([1.0, 9.0, 1.0]))
    tiny = scale_check.Placed("speck", 0.001, np.array([0.0, 0.0, 0.0]), np.array([0.001, 0.001, 0.001]))
    notes = scale_check.size_notes([tall, tiny], units, taller_than_m=3.5, smaller_than_m=0.005, lab_smaller_than_m=0.5)
    assert [note.where for note in notes] == ["object tower", "object speck"]
    assert all(f"(currently set to {units!r})" in note.fix and " m" in note.what for note in notes)


def test_placed_turns_the_box_by_the_rotation() -> None:
    half_turn_about_z = [0.0, 0.0, 0.7071068, 0.7071068]  # 90 degrees: x becomes y
    obj = scale_check.placed("rod", np.array([-1.0, -0.1, -0.1]), np.array([1.0, 0.1, 0.1]), half_turn_about_z, [0, 5, 0])
    assert obj.extent_m == pytest.approx(2.0)
    assert obj.height_m == pytest.approx(2.0)
    assert obj.low[1] == pytest.approx(4.0) and obj.high[1] == pytest.approx(6.0)
