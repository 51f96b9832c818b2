"""Files a model names (glTF buffers and images, an OBJ's MTL and textures, a PLY's texture).

A reference is distrusted like a zip entry name: it must be a relative path
that stays inside the package and names a file that is there. The checks
before loading and the resolver trimesh loads through use the one function
below, so a file trimesh reads is always one the checks have seen.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote

import trimesh


def resolve(base: str, reference: str, names: set[str], *, uri: bool) -> tuple[str | None, str]:
    """The package file ``reference`` names from the model at folder ``base``, or None and why not.

    glTF references are URIs (``uri=True``): percent-escapes such as ``%20`` are decoded.
    """
    name = unquote(reference) if uri else reference.strip()
    if not name:
        return None, "an empty file name"
    if "://" in name or name.startswith("//"):
        return None, f"{reference!r}, a web address: ingest reads only files inside the package"
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return None, f"{reference!r}, an absolute or Windows path: only relative paths inside the package work"
    target = posixpath.normpath(posixpath.join(base, name))
    if target == ".." or target.startswith("../"):
        return None, f"{reference!r}, which points outside the package"
    if target not in names:
        return None, f"{reference!r} ({target}), which is not in the package"
    return target, ""


class PackageResolver(trimesh.resolvers.Resolver):
    """Hands trimesh the files a model refers to, only from inside the package, by ``resolve``."""

    def __init__(self, root: Path, names: set[str], base: str, *, uri: bool) -> None:
        self.root, self.names, self.base, self.uri = root, names, base, uri

    def get(self, key: str) -> bytes:
        target, why = resolve(self.base, key, self.names, uri=self.uri)
        if target is None:
            raise FileNotFoundError(f"the model names {why}")
        return (self.root / target).read_bytes()

    def keys(self) -> list[str]:
        return sorted(self.names)

    def namespaced(self, namespace: str) -> PackageResolver:
        return PackageResolver(self.root, self.names, posixpath.join(self.base, namespace), uri=self.uri)

    def write(self, name: str, data: object) -> None:
        raise PermissionError("a package is read-only during ingest")
