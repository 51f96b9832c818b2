"""Small labs that browser tests build and upload as a course designer would, and practicals opened on them."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any, Callable

import trimesh
from playwright.sync_api import Page

from tests.browser.tabs import TIMEOUT_MS


def box(extents: tuple[float, float, float], at: tuple[float, float, float], rgba: tuple[int, int, int, int]) -> trimesh.Trimesh:
    """A coloured box mesh, ``extents`` in metres, centred at ``at``."""
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(at)
    mesh.visual.vertex_colors = [rgba] * len(mesh.vertices)
    return mesh


def package(manifest: dict[str, Any], assets: dict[str, trimesh.Trimesh]) -> bytes:
    """A scene package (zip): ``scene.json`` and each asset as ``assets/<name>.glb``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("scene.json", json.dumps(manifest))
        for name, mesh in assets.items():
            archive.writestr(f"assets/{name}.glb", trimesh.Scene(mesh).export(file_type="glb"))
    return out.getvalue()


def upload(server, scene: bytes) -> None:
    with server.http() as http:
        response = http.post(
            "/api/scenes", files={"package": ("lab.zip", scene, "application/zip")}, headers={"Authorization": f"Bearer {server.designer_key}"}
        )
        assert response.status_code in (200, 201), response.text


def open_practical(server, scene: str) -> dict[str, Any]:
    with server.http() as http:
        response = http.post("/api/sessions", json={"scene": scene}, headers={"Authorization": f"Bearer {server.teacher_key}"})
        response.raise_for_status()
        return response.json()


def wait_judged(page: Page) -> dict[str, Any]:
    """Wait for the room's answer to the newest checkpoint answer: right, wrong or refused."""
    page.wait_for_function("['right', 'wrong', 'refused'].includes(window.amaliy.challenge.checkpoint?.result)", timeout=TIMEOUT_MS)
    return page.evaluate("window.amaliy.challenge.checkpoint")


def judged(page: Page, answer: Callable[[], None], ready: str = "!document.querySelector('#checkpoint button:disabled')") -> dict[str, Any]:
    """Answer (once the ``ready`` expression holds in the page), and again each time the room says
    it was too soon (after the wait it names), until it judges the answer."""
    for _ in range(5):
        page.wait_for_function(ready, timeout=TIMEOUT_MS)
        answer()
        result = wait_judged(page)
        if result["result"] != "refused":
            return result
        assert result["code"] == "rate_limited", result
        wait = float(re.search(r"wait ([\d.]+) s", result["message"]).group(1))  # type: ignore[union-attr]
        page.wait_for_function(f"performance.now() > {page.evaluate('performance.now()')} + {wait * 1000}", timeout=TIMEOUT_MS)
    raise AssertionError("the room kept refusing answers as too fast")
