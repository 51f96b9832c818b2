"""REST routes for scene packages: schema, catalog, upload, GLB and phone variant download, delete.

Uploads are streamed to a private temporary file while counting bytes, so a
package over the limit is refused (413) without ever being held in memory, and
the file is removed whatever happens. Ingest runs in the node's ingest workers
(server.ingest_pool), which also write the blobs: the event loop only streams
the upload to disk and writes the catalog row.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO, Annotated, Any, Callable

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from redis.exceptions import RedisError

from realtime.roles import Action
from scenes.addresses import glb_phone_url, glb_url
from scenes.manifest import json_schema
from scenes.report import PackageRejected
from scenes.store import MAX_VERSION, SceneVersion, StaleStage
from server.auth import Principal
from server.ingest_pool import IngestBusy
from server.node import Node

Version = Annotated[int, PathParam(ge=1, le=MAX_VERSION, description="version number, from 1")]

#: seconds a client is asked to wait before trying an upload again when every worker is busy
_RETRY_AFTER = 30

def scene_routes(node: Node, principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(prefix="/api/scenes", tags=["scenes"])

    async def stored(scene_id: str, version: int | None = None) -> SceneVersion:
        row = node.scenes.get(scene_id, version)
        if row is None and await node.sync_scenes():  # uploaded through another node of the deployment
            row = node.scenes.get(scene_id, version)
        if row is None:
            which = scene_id if version is None else f"{scene_id} version {version}"
            raise HTTPException(404, f"No scene {which}.")
        return row

    @router.get("/schema")
    async def schema() -> dict[str, Any]:
        """JSON Schema of scene.json (docs/scene-package.md explains each field)."""
        return json_schema()

    @router.get("")
    async def list_scenes(who: Principal = Depends(principal)) -> list[dict[str, Any]]:
        who.keyed(Action.LIST_SCENES)
        await node.sync_scenes()
        return [row.public() for row in node.scenes.latest_all()]

    @router.get("/{scene_id}")
    async def get_scene(scene_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        who.keyed(Action.LIST_SCENES)
        row = await stored(scene_id)
        return {**row.public(), "versions": len(node.scenes.versions(scene_id)), "glb_url": glb_url(row), "glb_phone_url": glb_phone_url(row)}

    @router.get("/{scene_id}/versions")
    async def versions(scene_id: str, who: Principal = Depends(principal)) -> list[dict[str, Any]]:
        who.keyed(Action.LIST_SCENES)
        await node.sync_scenes()
        rows = node.scenes.versions(scene_id)
        if not rows:
            raise HTTPException(404, f"No scene {scene_id}.")
        in_use = node.scenes_in_use()
        return [{**row.public(), "in_use": (row.package_id, row.version) in in_use} for row in rows]

    @router.api_route("/{scene_id}/scene.glb", methods=["GET", "HEAD"])
    async def latest_glb(scene_id: str) -> Response:
        """The latest version's GLB lives at its own immutable address."""
        return RedirectResponse(glb_url(await stored(scene_id)), status_code=307)

    @router.api_route("/{scene_id}/scene.phone.glb", methods=["GET", "HEAD"])
    async def latest_phone_glb(scene_id: str) -> Response:
        """The latest version's phone variant, at its version's address."""
        row = await stored(scene_id)
        return RedirectResponse(glb_phone_url(row) or glb_url(row), status_code=307)

    @router.api_route("/{scene_id}/versions/{version}/scene.glb", methods=["GET", "HEAD"])
    async def glb(scene_id: str, version: Version, request: Request) -> Response:
        """Public: clients of a live practical load it. Versions are immutable, so it caches forever."""
        row = await stored(scene_id, version)
        return _blob(row.glb_sha, request)

    @router.api_route("/{scene_id}/versions/{version}/scene.phone.glb", methods=["GET", "HEAD"])
    async def phone_glb(scene_id: str, version: Version, request: Request) -> Response:
        """Public: the GLB for phones on weak links (scenes.phone_variant), cached forever as the GLB is.
        A version without one (stored before phone variants, or one ingest could not make) sends
        phones to its GLB; so does a node whose copy of the variant is missing (a partial restore)."""
        row = await stored(scene_id, version)
        if row.phone_sha and node.scenes.blob_path(row.phone_sha).is_file():
            return _blob(row.phone_sha, request)
        return RedirectResponse(glb_url(row), status_code=307, headers={"Cache-Control": "no-cache"})

    def _blob(sha: str, request: Request) -> Response:
        """A GLB blob by its content hash (the ETag), cached forever: its address names one immutable version."""
        etag = f'"{sha}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
        wanted = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
        if etag in wanted or "*" in wanted:
            return Response(status_code=304, headers=headers)
        return FileResponse(node.scenes.blob_path(sha), media_type="model/gltf-binary", headers=headers)

    @router.post("", status_code=201)
    async def upload(request: Request, who: Principal = Depends(principal)) -> JSONResponse:
        """Upload a package zip as multipart field ``package`` (designer key)."""
        designer = who.keyed(Action.UPLOAD_SCENE)
        with tempfile.TemporaryDirectory(prefix="amaliy-upload-") as tmp:
            package = await _receive_package(request, Path(tmp), node.config.upload_max_bytes)
            try:
                staged = await node.ingest(package)
            except PackageRejected as exc:
                return JSONResponse({"detail": str(exc), "problems": exc.report()}, status_code=422)
            except IngestBusy as exc:
                detail = f"Scene packages cannot be checked right now: {exc}. Try again in a minute."
                return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(_RETRY_AFTER)})
        try:
            row, created = node.scenes.add(staged, author=designer.name, number=node.scene_number(staged.package_id))
        except RedisError:
            raise HTTPException(503, "The deployment's Redis does not answer, so the version cannot be numbered; no version was added. Try again.",
                                headers={"Retry-After": "5"}) from None
        except StaleStage:
            raise HTTPException(409, "A version sharing this package's files was deleted while it was checked; upload it again.") from None
        await node.sync_scenes()  # every node of a deployment can now open it
        body = {
            **row.public(),
            "created_new_version": created,
            "glb_url": glb_url(row),
            "glb_phone_url": glb_phone_url(row),
            "notes": [note._asdict() for note in staged.notes],
        }
        return JSONResponse(body, status_code=201 if created else 200)

    @router.delete("/{scene_id}/versions/{version}", status_code=204)
    async def delete(scene_id: str, version: Version, who: Principal = Depends(principal)) -> Response:
        who.keyed(Action.DELETE_SCENE)
        node.delete_scene(scene_id, version)
        return Response(status_code=204)

    return router


async def _receive_package(request: Request, folder: Path, limit: int) -> Path:
    """Stream the multipart body's ``package`` file to ``folder``; 413 past ``limit`` bytes."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(415, "Send the package as multipart/form-data with a file field named 'package'.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"The package is {int(declared)} bytes; the limit is {limit}.")
    target = folder / "package.zip"
    received = 0
    with open(target, "wb") as out:
        try:
            parser = _StreamingForm(content_type, out, wanted=b"package")
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise HTTPException(413, f"The package is over the {limit} byte limit.")
                parser.write(chunk)
            parser.finalize()
        except (MultipartParseError, ValueError) as exc:
            raise HTTPException(400, f"Could not read the multipart body: {exc}") from None
    if not parser.found:
        raise HTTPException(422, "No file field named 'package' in the upload.")
    return target


#: bytes a multipart part's header name or value may have (a browser sends a few dozen)
MAX_PART_HEADER = 8192


class _StreamingForm:
    """A multipart parser that writes one named file part straight to disk."""

    def __init__(self, content_type: str, out: IO[bytes], wanted: bytes) -> None:
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "The multipart body has no boundary.")
        self.found = False
        self._out = out
        self._wanted = wanted
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""
        self._writing = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._add("_header_field", data[start:end]),
                "on_header_value": lambda data, start, end: self._add("_header_value", data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._part_end,
            },
        )

    def _add(self, name: str, data: bytes) -> None:
        value = getattr(self, name) + data
        if len(value) > MAX_PART_HEADER:
            raise ValueError(f"a part's header is longer than {MAX_PART_HEADER} bytes")
        setattr(self, name, value)

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self._writing = not self.found and params.get(b"name") == self._wanted
        self.found = self.found or self._writing

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._writing:
            self._out.write(data[start:end])

    def _part_end(self) -> None:
        self._writing = False

    def write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finalize(self) -> None:
        self._parser.finalize()
