"""Scene package files on disk: scaffold a new one, and pack a folder into a zip.

Packing is deterministic (sorted names, fixed timestamps) so the same content
always gives the same bytes, and the content-addressed store keeps it once.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import trimesh

_EPOCH = (2020, 1, 1, 0, 0, 0)


def pack_files(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every regular file below ``folder`` (links and hidden files are left out)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink() or not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        files[rel.as_posix()] = path.read_bytes()
    return files


def scaffold(folder: Path, package_id: str) -> dict[str, Any]:
    """A minimal valid package to start from: one table and one interactable cube.

    Returns the manifest written, so the caller can say what it chose (its 'units' are
    metres, the unit of the models written here).
    """
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty")
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    table = trimesh.creation.box(extents=(1.2, 0.05, 0.7))
    table.apply_translation((0, 0.775, 0))
    cube = trimesh.creation.box(extents=(0.08, 0.08, 0.08))
    cube.apply_translation((0, 0.04, 0))
    table.export(folder / "assets" / "table.glb")
    cube.export(folder / "assets" / "cube.stl")
    manifest = {
        "schema_version": 1,
        "id": package_id,
        "title": package_id.replace("-", " ").capitalize(),
        "description": "Describe what students do in this lab.",
        "units": "m",
        "up_axis": "y",
        "assets": [{"id": "table", "path": "assets/table.glb"}, {"id": "cube", "path": "assets/cube.stl"}],
        "objects": [
            {"id": "table", "title": "Table", "asset": "table"},
            {"id": "cube", "title": "Sample cube", "asset": "cube", "interactable": True, "transform": {"position": [0, 0.8, -0.1]}},
        ],
        "zones": [{"id": "table-top", "shape": "box", "center": [0, 0.9, 0], "size": [1.2, 0.2, 0.7]}],
        "spawn_points": [{"position": [0, 0, 1.0]}],
        "targets": ["headset", "desktop"],
    }
    (folder / "scene.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
