"""How many bytes a student downloads for a sample lab: its phone variant and its full GLB.

For the bandwidth benchmark and the docs' figures: a sample lab goes through the
real ingest, packed as the server packs it when it installs the samples.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from scenes import samples
from scenes.ingest import ingest_zip
from scenes.package import pack_files


def lab_bytes(package_id: str) -> tuple[int, int]:
    """(phone_bytes, desktop_bytes) of a sample lab (a key of scenes.samples.SAMPLES);
    phone_bytes is desktop_bytes if ingest could not make the phone variant."""
    with tempfile.TemporaryDirectory(prefix="amaliy-lab-bytes-") as tmp:
        path = Path(tmp) / f"{package_id}.zip"
        path.write_bytes(pack_files(samples.SAMPLES[package_id]()))
        processed = ingest_zip(path)
    phone = processed.glb_phone if processed.glb_phone is not None else processed.glb
    return len(phone), len(processed.glb)
