"""What the live engine needs to know about a scene: its objects and spawn points.

Clients render the scene's GLB; the server needs only ids, initial transforms,
which objects can be grabbed, and where people appear. Scene nodes in the GLB
are named by object id so both sides refer to the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Transform = tuple[float, float, float, float, float, float, float]
"""Position (x, y, z) then rotation quaternion (x, y, z, w)."""


@dataclass(frozen=True)
class SceneObject:
    id: str
    title: str
    transform: Transform
    interactable: bool = True


@dataclass(frozen=True)
class Scene:
    id: str
    title: str
    objects: tuple[SceneObject, ...]
    spawn_points: tuple[tuple[float, float, float], ...]
    #: the optimized GLB clients load; node names are object ids
    glb: bytes = field(repr=False)

    def object_index(self) -> dict[str, int]:
        """Object id -> index used in binary frames."""
        return {obj.id: i for i, obj in enumerate(self.objects)}
