"""docs/scene-package.md says what the server does: its worked challenge example is accepted, its schema is the one served."""

from __future__ import annotations

import re
from pathlib import Path

from scenes import manifest as mf

DOC = Path(__file__).resolve().parents[2] / "docs" / "scene-package.md"


def test_worked_challenge_example_parses() -> None:
    section = DOC.read_text().split("### 9.8 A complete challenge example", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert block is not None
    manifest, problems = mf.parse(block.group(1).encode())
    assert problems == []
    assert manifest is not None and manifest.schema_version == 2
    assert manifest.challenge is not None and len(manifest.challenge.steps) == 6
    assert manifest.stations is not None and manifest.stations.grid is not None and manifest.stations.grid.count == 8


def test_schema_in_the_docs_is_the_one_served() -> None:
    import json

    section = DOC.read_text().split("## 3. JSON Schema", 1)[1].split("## 4.", 1)[0]
    block = re.search(r"<details>.*?```json\n(.*?)\n```", section, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == mf.json_schema()
