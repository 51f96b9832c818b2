"""Where clients fetch a stored version's GLB and its phone variant (server.scene_routes serves them).

Each address names one version, which never changes, so what it serves is cached
for good. The phone variant sits beside the GLB, so a client that knows one
address knows the other; a version stored before phone variants were made has
none, and its phone address leads to the GLB.
"""

from __future__ import annotations

from scenes.store import SceneVersion

GLB_NAME = "scene.glb"
PHONE_NAME = "scene.phone.glb"


def glb_url(row: SceneVersion) -> str:
    return f"/api/scenes/{row.package_id}/versions/{row.version}/{GLB_NAME}"


def glb_phone_url(row: SceneVersion) -> str:
    """The phone variant's address, or "" if the version has none (clients then load the GLB)."""
    return f"/api/scenes/{row.package_id}/versions/{row.version}/{PHONE_NAME}" if row.phone_sha else ""
